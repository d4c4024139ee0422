package sandbox

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

type crmHistoryAnswer struct {
	Success    bool `json:"success"`
	Pagination struct {
		Limit          int `json:"limit"`
		TotalCount     int `json:"totalCount"`
		CurrentPage    int `json:"currentPage"`
		TotalPageCount int `json:"totalPageCount"`
	} `json:"pagination"`
	History []struct {
		ID        int             `json:"id"`
		CreatedAt string          `json:"createdAt"`
		Created   bool            `json:"created"`
		Field     string          `json:"field"`
		OldValue  json.RawMessage `json:"oldValue"`
		NewValue  json.RawMessage `json:"newValue"`
		Customer  struct {
			ID   int64  `json:"id"`
			Site string `json:"site"`
		} `json:"customer"`
	} `json:"history"`
}

func crmHistoryGet(t *testing.T, c *CRM, key, query string) (int, crmHistoryAnswer, string) {
	t.Helper()
	st, body := crmGet(t, c.URL()+"/api/v5/customers/history?"+query, key)
	var a crmHistoryAnswer
	if st == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("history?%s: %v in %s", query, err, body)
		}
	}
	return st, a, body
}

func TestCRMCustomerHistoryRecordsCreationAndProfileChanges(t *testing.T) {
	clock := &crmClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.Local)}
	c := crmStart(t, WithRateLimit(-1), WithClock(clock.now))
	ann := c.AddCustomer(CRMCustomer{FirstName: "Ann"})
	clock.add(time.Minute)
	if err := c.SetCustomerManager(ann, 7); err != nil {
		t.Fatal(err)
	}
	if err := c.SetCustomerManager(ann, 7); err != nil { // no change, no record
		t.Fatal(err)
	}
	clock.add(time.Minute)
	if err := c.SetCustomerSegments(ann, "vip"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetCustomerTags(ann, "wholesale", "late"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetCustomerManager(ann, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.SetCustomerTags(999); err == nil {
		t.Fatal("changing a missing customer's tags: no error")
	}

	hist := c.CustomerHistory()
	wantFields := []string{"id", "manager", "segments", "tags", "manager"}
	if len(hist) != len(wantFields) {
		t.Fatalf("history %+v, want fields %v", hist, wantFields)
	}
	for i, h := range hist {
		if h.ID != i+1 || h.Field != wantFields[i] || h.Customer != ann || h.Site != "sandbox" || h.Created != (i == 0) {
			t.Fatalf("record %d: %+v, want id %d field %q of customer %d", i, h, i+1, wantFields[i], ann)
		}
	}

	st, a, body := crmHistoryGet(t, c, CRMDefaultKey, "")
	if st != http.StatusOK || !a.Success || len(a.History) != 5 || a.Pagination.TotalCount != 5 || a.Pagination.Limit != 20 {
		t.Fatalf("whole history: %d %s", st, body)
	}
	first, mgr := a.History[0], a.History[1]
	if !first.Created || first.Field != "id" || first.CreatedAt != "2026-03-01 10:00:00" || first.Customer.ID != ann {
		t.Fatalf("creation record: %+v", first)
	}
	if mgr.Created || mgr.Field != "manager" || mgr.CreatedAt != "2026-03-01 10:01:00" ||
		string(mgr.OldValue) != "null" || string(mgr.NewValue) != `{"id":7}` {
		t.Fatalf("manager record: %+v (old %s new %s)", mgr, mgr.OldValue, mgr.NewValue)
	}
	if tags := a.History[3]; string(tags.OldValue) != "[]" || string(tags.NewValue) != `["wholesale","late"]` {
		t.Fatalf("tags record: old %s new %s", tags.OldValue, tags.NewValue)
	}
	if unset := a.History[4]; string(unset.OldValue) != `{"id":7}` || string(unset.NewValue) != "null" {
		t.Fatalf("manager removal record: old %s new %s", unset.OldValue, unset.NewValue)
	}

	_, a, _ = crmHistoryGet(t, c, CRMDefaultKey, "filter[sinceId]=3")
	if len(a.History) != 2 || a.History[0].ID != 4 || a.History[1].ID != 5 {
		t.Fatalf("since 3: %+v", a.History)
	}
	_, a, _ = crmHistoryGet(t, c, CRMDefaultKey, "filter[startDate]=2026-03-01+10:02:00")
	if len(a.History) != 3 || a.History[0].ID != 3 {
		t.Fatalf("from 10:02: %+v", a.History)
	}
	_, a, _ = crmHistoryGet(t, c, CRMDefaultKey, "filter[startDate]=2026-03-01+10:00:30&filter[endDate]=2026-03-01+10:01:00&filter[sinceId]=1")
	if len(a.History) != 1 || a.History[0].ID != 2 {
		t.Fatalf("between 10:00:30 and 10:01 after 1: %+v", a.History)
	}
	_, a, _ = crmHistoryGet(t, c, CRMDefaultKey, "filter[sinceId]=5")
	if len(a.History) != 0 || a.Pagination.TotalCount != 0 || a.Pagination.TotalPageCount != 1 {
		t.Fatalf("since the last: %+v", a)
	}
}

func TestCRMCustomerHistoryPages(t *testing.T) {
	c := crmStart(t, WithRateLimit(-1))
	id := c.AddCustomer(CRMCustomer{FirstName: "Ann"})
	for i := range 44 {
		if err := c.SetCustomerTags(id, "t"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	var ids []int
	for page := 1; page <= 3; page++ {
		st, a, body := crmHistoryGet(t, c, CRMDefaultKey, "filter[sinceId]=2&limit=20&page="+strconv.Itoa(page))
		if st != http.StatusOK || a.Pagination.TotalCount != 43 || a.Pagination.TotalPageCount != 3 || a.Pagination.CurrentPage != page {
			t.Fatalf("page %d: %d %s", page, st, body)
		}
		for _, h := range a.History {
			ids = append(ids, h.ID)
		}
	}
	if len(ids) != 43 || ids[0] != 3 || ids[42] != 45 {
		t.Fatalf("ids over the pages: %v", ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("ids over the pages are not in order: %v", ids)
		}
	}
}

func TestCRMCustomerHistoryKeysScopesAndBadFilters(t *testing.T) {
	clock := &crmClock{t: time.Unix(1_700_000_000, 0)}
	c := crmStart(t, WithClock(clock.now), WithRateLimit(1), WithSites(
		CRMSite{Code: "a", DefaultForCRM: true}, CRMSite{Code: "b"}))
	c.AddCustomer(CRMCustomer{FirstName: "Ann", Site: "a"})
	c.AddCustomer(CRMCustomer{FirstName: "Bo", Site: "b"})
	c.SetKey("orders", CRMKey{Scopes: []string{"order_read"}, SiteAccess: "access_full"})
	c.SetKey("only-b", CRMKey{Scopes: []string{"customer_read"}, SiteAccess: "access_selective", Sites: []string{"b"}})

	if st, _, body := crmHistoryGet(t, c, "", ""); st != http.StatusForbidden || !strings.Contains(body, "is missing") {
		t.Fatalf("no key: %d %s", st, body)
	}
	if st, _, body := crmHistoryGet(t, c, "nope", ""); st != http.StatusForbidden || !strings.Contains(body, "Wrong") {
		t.Fatalf("wrong key: %d %s", st, body)
	}
	if st, _, body := crmHistoryGet(t, c, "orders", ""); st != http.StatusForbidden || !strings.Contains(body, "Access denied.") {
		t.Fatalf("without customer_read: %d %s", st, body)
	}
	st, a, body := crmHistoryGet(t, c, "only-b", "")
	if st != http.StatusOK || len(a.History) != 1 || a.History[0].Customer.Site != "b" {
		t.Fatalf("a key of store b: %d %s", st, body)
	}
	if st, _, body := crmHistoryGet(t, c, "only-b", ""); st != http.StatusServiceUnavailable {
		t.Fatalf("second request in the same instant: %d %s, want 503", st, body)
	}
	for _, q := range []string{"filter[sinceId]=x", "filter[sinceId]=-1", "filter[startDate]=yesterday", "limit=7", "page=0"} {
		clock.add(time.Second)
		if st, _, body := crmHistoryGet(t, c, "only-b", q); st != http.StatusBadRequest || !strings.Contains(body, "Errors in the input parameters") {
			t.Fatalf("history?%s: %d %s, want 400", q, st, body)
		}
	}
}
