package crm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	retailcrm "github.com/retailcrm/api-client-go/v2"
)

// CustomerChange is one record of the customers' history (GET
// /api/v5/customers/history): a field of a customer's card changed, or a
// customer was created (field "id" in the sandbox; what a live account
// records for a creation is unverified).
type CustomerChange struct {
	// ID is the history record's id; ids grow with time.
	ID int
	// Customer is the retailCRM id of the customer whose card changed
	// (the record's customer.id, a number or a string of digits); 0 when
	// the record names none.
	Customer int64
	// Field is the history field name as retailCRM sends it, e.g.
	// "manager", "first_name" (see [ProfileField]).
	Field string
	// At is when the change was made (createdAt), read in the process's
	// local time zone; zero when the record has no date or an unreadable
	// one.
	At time.Time
}

// History field names that concern routing, see [ProfileField].
const (
	// HistoryFieldManager is the customer's personal manager. retailCRM's
	// own integration modules map the customers history field "manager" to
	// the card's manager.
	HistoryFieldManager = "manager"
	// HistoryFieldSegments is the customer's segments (unverified name).
	HistoryFieldSegments = "segments"
	// HistoryFieldTags is the customer's tags (unverified name).
	HistoryFieldTags = "tags"
)

// ProfileField reports whether a customers history field concerns routing,
// that is the part of the card [CustomerCard] reads: the personal manager
// ("manager", and "manager_id" in case an account names it so), the
// segments ("segments") and the tags ("tags"). Only "manager" is
// confirmed; the names of the segments and tags fields are unverified
// against a live account.
func ProfileField(field string) bool {
	switch field {
	case HistoryFieldManager, "manager_id", HistoryFieldSegments, HistoryFieldTags:
		return true
	}
	return false
}

// historyPageLimit is the page size of history requests.
const historyPageLimit = 100

// historyTimeLayout is how retailCRM writes and reads history dates, in
// the account's time zone.
const historyTimeLayout = "2006-01-02 15:04:05"

// historyStartMargin is how far before now the first call looks for the
// newest record: the account's time zone is unknown to the client, and a
// start date ahead of the account's clock would find nothing for hours.
const historyStartMargin = 24 * time.Hour

// CustomerChanges returns the customers' history records after the one
// with id since, oldest first, and last, the highest record id seen (since
// itself when there are none): pass last as since to the next call. It
// asks for every page (GET /api/v5/customers/history, filter[sinceId],
// 100 records a page), each page one request under the key's rate limit.
//
// The first call only finds where to start: with since 0 it does not read
// the history from its beginning but asks for the records of the last day
// (filter[startDate]), reads only the last page of them and returns the
// highest record id as last, with no changes; when that day has none, the
// newest record of the whole history (its first and last pages) is the
// start, and last is 0 only for an empty history (the next call with 0
// looks again). Changes made before the first call are never returned.
//
// The records are decoded here rather than by the underlying client's
// CustomersHistory, whose customer type fails a whole page on card values
// it does not expect (custom fields that are not strings, a numeric
// mgCustomerId); only a record's id, createdAt, field and customer.id are
// read. Errors are [*Error] values, as for the other methods ([Temporary]
// tells the ones worth retrying); a negative since is rejected before any
// request. A call that fails returns no changes and since as last, even
// when some pages were read: call again with the same since.
func (c *Client) CustomerChanges(ctx context.Context, since int) (changes []CustomerChange, last int, err error) {
	if since < 0 {
		return nil, 0, &Error{Op: "customers history", Kind: ErrRejected, Detail: fmt.Sprintf("since must not be negative, got %d", since)}
	}
	if since == 0 {
		last, err := c.historyStart(ctx)
		return nil, last, err
	}
	last = since
	for page := 1; page <= maxPages; page++ {
		q := url.Values{}
		q.Set("filter[sinceId]", strconv.Itoa(since))
		resp, err := c.historyPage(ctx, q, page)
		if err != nil {
			return nil, since, err
		}
		for _, r := range resp.History {
			changes = append(changes, r.change())
			last = max(last, r.ID)
		}
		if resp.lastPage(page) {
			break
		}
	}
	return changes, last, nil
}

// historyStart returns the highest history record id: of the last day,
// or, when that has none, of the whole history (0 when it is empty). The
// first page says how many pages there are, and the last page holds the
// newest records (retailCRM lists the history oldest first). The date is
// written in the process's local time zone.
func (c *Client) historyStart(ctx context.Context) (int, error) {
	q := url.Values{}
	q.Set("filter[startDate]", c.now().Add(-historyStartMargin).Local().Format(historyTimeLayout))
	last, err := c.newestRecord(ctx, q)
	if err != nil || last > 0 {
		return last, err
	}
	// Nothing in the last day: the newest of all, so that the next call
	// does not start over (and miss what changed in between).
	return c.newestRecord(ctx, url.Values{})
}

// newestRecord returns the highest id of the history records filters q
// select, reading the first page and the last.
func (c *Client) newestRecord(ctx context.Context, q url.Values) (int, error) {
	resp, err := c.historyPage(ctx, q, 1)
	if err != nil {
		return 0, err
	}
	if !resp.lastPage(1) {
		first := resp
		if resp, err = c.historyPage(ctx, q, min(resp.Pagination.TotalPageCount, maxPages)); err != nil {
			return 0, err
		}
		if len(resp.History) == 0 { // the history shrank in between
			resp = first
		}
	}
	last := 0
	for _, r := range resp.History {
		last = max(last, r.ID)
	}
	return last, nil
}

// historyPage asks for one page of the history with filters q.
func (c *Client) historyPage(ctx context.Context, q url.Values, page int) (historyResponse, error) {
	op := fmt.Sprintf("customers history (page %d)", page)
	q.Set("limit", strconv.Itoa(historyPageLimit))
	q.Set("page", strconv.Itoa(page))
	path := "/customers/history?" + q.Encode()
	body, err := call(ctx, c, op, func(api *retailcrm.Client) ([]byte, int, error) {
		return api.GetRequest(path)
	})
	if err != nil {
		return historyResponse{}, err
	}
	var resp historyResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return historyResponse{}, classify(op, 200, err, c.key)
	}
	if !resp.Success {
		return historyResponse{}, &Error{Op: op, Kind: ErrBadResponse, Detail: `the answer has no "success": true`}
	}
	return resp, nil
}

type historyResponse struct {
	Success    bool                  `json:"success"`
	History    []historyRecord       `json:"history"`
	Pagination *retailcrm.Pagination `json:"pagination"`
}

// lastPage reports whether page is the last one of the answer.
func (r historyResponse) lastPage(page int) bool {
	p := r.Pagination
	return p == nil || page >= p.TotalPageCount || len(r.History) == 0
}

type historyRecord struct {
	ID        int    `json:"id"`
	CreatedAt string `json:"createdAt"`
	Field     string `json:"field"`
	Customer  *struct {
		ID flexString `json:"id"`
	} `json:"customer"`
}

func (r historyRecord) change() CustomerChange {
	ch := CustomerChange{ID: r.ID, Field: r.Field, At: parseHistoryTime(r.CreatedAt)}
	if r.Customer != nil {
		ch.Customer, _ = strconv.ParseInt(string(r.Customer.ID), 10, 64)
	}
	return ch
}

// parseHistoryTime reads a history date: retailCRM's "2006-01-02
// 15:04:05" in the local zone, or the same with a "T", fractional seconds
// or a zone offset; zero for anything else.
func parseHistoryTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t
		}
	}
	return time.Time{}
}
