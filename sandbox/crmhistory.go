package sandbox

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// History field names of the profile setters. "manager" is the name
// retailCRM's integration modules read for a customer's manager;
// "segments" and "tags" are unverified.
const (
	crmHistoryManager  = "manager"
	crmHistorySegments = "segments"
	crmHistoryTags     = "tags"
)

// crmHistoryLayout is how history dates are written and read, in the local
// time zone (the sandbox account's zone).
const crmHistoryLayout = "2006-01-02 15:04:05"

// CRMCustomerChange is a record of the sandbox's customers history (GET
// /api/v5/customers/history). Creating a customer, through the API or
// [CRM.AddCustomer], records field "id" with Created set; a change made by
// [CRM.SetCustomerManager], [CRM.SetCustomerSegments] or
// [CRM.SetCustomerTags] records "manager", "segments" or "tags". Setting a
// value the card already has records nothing, and neither does an edit
// through the API.
type CRMCustomerChange struct {
	// ID grows by one with every record, from 1.
	ID       int
	Customer int64
	// Site is the customer's store.
	Site    string
	Field   string
	Created bool
	// At is the sandbox clock's time of the change (see [WithClock]).
	At time.Time
	// Old and New are the values as the API lists them: {"id": n} or nil
	// for the manager, lists of codes or names for segments and tags, the
	// customer's id on creation.
	Old, New any
}

// CustomerHistory returns the customers history, oldest first.
func (c *CRM) CustomerHistory() []CRMCustomerChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.history)
}

// record appends a history record; the caller holds c.mu.
func (c *CRM) record(cu CRMCustomer, field string, created bool, was, now any) {
	c.history = append(c.history, CRMCustomerChange{
		ID: len(c.history) + 1, Customer: cu.ID, Site: cu.Site, Field: field, Created: created,
		At: c.now(), Old: was, New: now,
	})
}

// crmManagerValue is a manager as history values list it: {"id": n}, or
// nil for none.
func crmManagerValue(id int) any {
	if id == 0 {
		return nil
	}
	return map[string]any{"id": id}
}

// crmCustomerHistory answers GET /customers/history: the records with an
// id above filter[sinceId], at or after filter[startDate] and at or before
// filter[endDate] ("2006-01-02 15:04:05", local time), of
// filter[customerId] when given, oldest first, one page of them. A
// selective key sees only the records of its stores' customers.
func (c *CRM) crmCustomerHistory(w http.ResponseWriter, r *http.Request, k CRMKey) {
	q := r.URL.Query()
	limit, page, ok := crmPaging(w, q)
	if !ok {
		return
	}
	bad := map[string]string{}
	number := func(name string) int64 {
		v := strings.TrimSpace(q.Get("filter[" + name + "]"))
		if v == "" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			bad["filter["+name+"]"] = "This value is not valid."
		}
		return n
	}
	date := func(name string) time.Time {
		v := strings.TrimSpace(q.Get("filter[" + name + "]"))
		if v == "" {
			return time.Time{}
		}
		t, err := time.ParseInLocation(crmHistoryLayout, v, time.Local)
		if err != nil {
			bad["filter["+name+"]"] = "This value is not a valid datetime."
		}
		return t
	}
	since, customer := number("sinceId"), number("customerId")
	start, end := date("startDate"), date("endDate")
	if len(bad) > 0 {
		crmFail(w, http.StatusBadRequest, "Errors in the input parameters", bad)
		return
	}
	match := func(h CRMCustomerChange) bool {
		at := h.At.Truncate(time.Second)
		return int64(h.ID) > since && (customer == 0 || h.Customer == customer) &&
			(start.IsZero() || !at.Before(start)) && (end.IsZero() || !at.After(end)) &&
			k.siteAllowed(h.Site)
	}
	c.mu.Lock()
	var all []map[string]any
	for _, h := range c.history {
		if !match(h) {
			continue
		}
		rec := map[string]any{
			"id": h.ID, "createdAt": h.At.Local().Format(crmHistoryLayout), "source": "api",
			"field": h.Field, "oldValue": h.Old, "newValue": h.New,
			"customer": map[string]any{"id": h.Customer, "site": h.Site},
		}
		if h.Created {
			rec["created"] = true
		}
		all = append(all, rec)
	}
	generated := c.now().Local().Format(crmHistoryLayout)
	c.mu.Unlock()
	out, pagination := crmPage(all, limit, page)
	crmJSON(w, http.StatusOK, map[string]any{"success": true, "generatedAt": generated, "pagination": pagination, "history": out})
}
