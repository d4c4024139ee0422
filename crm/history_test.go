package crm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/sandbox"
)

// settable is a clock the test moves.
type settable struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settable) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *settable) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var historyNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.Local)

func TestCustomerChangesFirstCallOnlyFindsTheStart(t *testing.T) {
	clock := &settable{t: historyNow.Add(-72 * time.Hour)}
	s := newCRM(t, sandbox.WithClock(clock.now))
	ann := s.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann"})
	if err := s.SetCustomerManager(ann, 3); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s.URL(), crm.WithClock(func() time.Time { return historyNow }))
	ctx := context.Background()

	// Only old records: nothing in the last day, the newest of all.
	changes, last, err := c.CustomerChanges(ctx, 0)
	if err != nil || len(changes) != 0 || last != 2 {
		t.Fatalf("first call over an old history: %+v, %d, %v; want none, start 2", changes, last, err)
	}

	clock.set(historyNow.Add(-time.Hour))
	if err := s.SetCustomerTags(ann, "vip"); err != nil {
		t.Fatal(err)
	}
	before := s.Requests(secretKey)
	changes, last, err = c.CustomerChanges(ctx, 0)
	if err != nil || len(changes) != 0 || last != 3 {
		t.Fatalf("first call: %+v, %d, %v; want no changes and start 3", changes, last, err)
	}
	if n := s.Requests(secretKey) - before; n != 1 {
		t.Fatalf("first call over one page made %d requests, want 1", n)
	}

	// The start is found on the last page, without reading the others.
	for i := range 230 {
		if err := s.SetCustomerManager(ann, 10+i); err != nil {
			t.Fatal(err)
		}
	}
	before = s.Requests(secretKey)
	changes, last, err = c.CustomerChanges(ctx, 0)
	if err != nil || len(changes) != 0 || last != 233 {
		t.Fatalf("first call over three pages: %d changes, %d, %v; want none and start 233", len(changes), last, err)
	}
	if n := s.Requests(secretKey) - before; n != 2 {
		t.Fatalf("first call over three pages made %d requests, want 2 (first and last page)", n)
	}
}

func TestCustomerChangesSinceAcrossPages(t *testing.T) {
	clock := &settable{t: historyNow}
	s := newCRM(t, sandbox.WithClock(clock.now))
	ann := s.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann"})
	c := newClient(t, s.URL(), crm.WithClock(func() time.Time { return historyNow }))
	ctx := context.Background()
	_, start, err := c.CustomerChanges(ctx, 0)
	if err != nil || start != 1 {
		t.Fatalf("start: %d, %v; want 1", start, err)
	}
	changes, last, err := c.CustomerChanges(ctx, start)
	if err != nil || len(changes) != 0 || last != start {
		t.Fatalf("nothing new: %+v, %d, %v; want none and %d", changes, last, err, start)
	}

	bo := s.AddCustomer(sandbox.CRMCustomer{FirstName: "Bo"})
	clock.set(historyNow.Add(90 * time.Second))
	if err := s.SetCustomerManager(ann, 4); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCustomerSegments(bo, "vip"); err != nil {
		t.Fatal(err)
	}
	for i := range 247 {
		if err := s.SetCustomerTags(ann, fmt.Sprint("t", i)); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Requests(secretKey)
	changes, last, err = c.CustomerChanges(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 250 || last != 251 {
		t.Fatalf("got %d changes up to %d, want 250 up to 251", len(changes), last)
	}
	if n := s.Requests(secretKey) - before; n != 3 {
		t.Fatalf("250 changes took %d requests, want 3 pages", n)
	}
	want := []crm.CustomerChange{
		{ID: 2, Customer: bo, Field: "id", At: historyNow},
		{ID: 3, Customer: ann, Field: "manager", At: historyNow.Add(90 * time.Second)},
		{ID: 4, Customer: bo, Field: "segments", At: historyNow.Add(90 * time.Second)},
		{ID: 5, Customer: ann, Field: "tags", At: historyNow.Add(90 * time.Second)},
	}
	for i, w := range want {
		if g := changes[i]; g.ID != w.ID || g.Customer != w.Customer || g.Field != w.Field || !g.At.Equal(w.At) {
			t.Fatalf("change %d: %+v, want %+v", i, g, w)
		}
	}
	for i, ch := range changes {
		if ch.ID != start+1+i {
			t.Fatalf("change %d has id %d, want %d: records skipped or repeated across pages", i, ch.ID, start+1+i)
		}
	}
	if !crm.ProfileField(changes[1].Field) || !crm.ProfileField(changes[2].Field) || !crm.ProfileField(changes[3].Field) || crm.ProfileField(changes[0].Field) {
		t.Fatalf("ProfileField of %q, %q, %q, %q", changes[0].Field, changes[1].Field, changes[2].Field, changes[3].Field)
	}

	changes, last2, err := c.CustomerChanges(ctx, last)
	if err != nil || len(changes) != 0 || last2 != last {
		t.Fatalf("after the last: %+v, %d, %v; want none and %d", changes, last2, err, last)
	}
}

func TestProfileField(t *testing.T) {
	for field, want := range map[string]bool{
		"manager": true, "manager_id": true, "segments": true, "tags": true,
		"id": false, "first_name": false, "email": false, "": false, "Manager": false,
	} {
		if got := crm.ProfileField(field); got != want {
			t.Errorf("ProfileField(%q) = %v, want %v", field, got, want)
		}
	}
}

func TestCustomerChangesErrors(t *testing.T) {
	s := newCRM(t)
	s.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann"})
	ctx := context.Background()
	c := newClient(t, s.URL())

	_, last, err := c.CustomerChanges(ctx, -1)
	wantIs(t, err, crm.ErrRejected)
	if last != 0 || s.Requests(secretKey) != 0 {
		t.Fatalf("negative since: last %d after %d requests, want 0 and none", last, s.Requests(secretKey))
	}

	s.SetFaults(sandbox.CRMFaults{ErrorRatio: 1, ErrorStatus: http.StatusInternalServerError})
	for _, since := range []int{0, 5} {
		changes, last, err := c.CustomerChanges(ctx, since)
		wantIs(t, err, crm.ErrUnavailable)
		if !crm.Temporary(err) || changes != nil || last != since {
			t.Fatalf("server error from %d: %+v, %d, temporary %v", since, changes, last, crm.Temporary(err))
		}
	}
	s.SetFaults(sandbox.CRMFaults{})

	s.SetKey("no-customers", sandbox.CRMKey{Scopes: []string{"user_read"}, SiteAccess: crm.SiteAccessFull})
	weak, err := crm.New(s.URL(), "no-customers", fast())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = weak.CustomerChanges(ctx, 1)
	wantIs(t, err, crm.ErrAccessDenied)
	if crm.Temporary(err) {
		t.Fatalf("access denied is temporary: %v", err)
	}

	wrong, err := crm.New(s.URL(), "wrong-key", fast())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = wrong.CustomerChanges(ctx, 0)
	wantIs(t, err, crm.ErrInvalidKey)
}

func TestCustomerChangesDecodedLeniently(t *testing.T) {
	var (
		mu      sync.Mutex
		queries []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		if r.URL.Query().Get("filter[sinceId]") == "9" {
			fmt.Fprint(w, `{"success":false}`)
			return
		}
		fmt.Fprint(w, `{"success":true,"pagination":{"limit":100,"totalCount":4,"currentPage":1,"totalPageCount":1},"history":[
			{"id":11,"createdAt":"2026-03-10 12:30:05","field":"manager","oldValue":null,"newValue":{"id":3},
			 "customer":{"id":501,"mgCustomerId":123456,"customFields":{"age":42,"kids":["a"]},"tags":[{"name":"x"}]}},
			{"id":12,"createdAt":"2026-03-10T12:30:06+03:00","field":"segments","customer":{"id":"7"}},
			{"id":13,"field":"tags","customer":{"id":502}},
			{"id":14,"createdAt":"not a date","created":true,"field":"id"}]}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL)
	changes, last, err := c.CustomerChanges(context.Background(), 10)
	if err != nil || last != 14 || len(changes) != 4 {
		t.Fatalf("%+v, %d, %v; want 4 changes up to 14", changes, last, err)
	}
	want := []crm.CustomerChange{
		{ID: 11, Customer: 501, Field: "manager", At: time.Date(2026, 3, 10, 12, 30, 5, 0, time.Local)},
		{ID: 12, Customer: 7, Field: "segments", At: time.Date(2026, 3, 10, 9, 30, 6, 0, time.UTC)},
		{ID: 13, Customer: 502, Field: "tags"},
		{ID: 14, Field: "id"},
	}
	for i, w := range want {
		if g := changes[i]; g.ID != w.ID || g.Customer != w.Customer || g.Field != w.Field || !g.At.Equal(w.At) {
			t.Fatalf("change %d: %+v, want %+v", i, g, w)
		}
	}
	mu.Lock()
	q := queries[0]
	mu.Unlock()
	if !strings.HasPrefix(q, "/api/v5/customers/history?") || !strings.Contains(q, "filter%5BsinceId%5D=10") ||
		!strings.Contains(q, "limit=100") || !strings.Contains(q, "page=1") || strings.Contains(q, "startDate") {
		t.Fatalf("request %s", q)
	}

	_, last, err = c.CustomerChanges(context.Background(), 9)
	wantIs(t, err, crm.ErrBadResponse)
	if last != 9 {
		t.Fatalf("failed call returned last %d, want since 9", last)
	}
}

func TestCustomerChangesFirstCallAsksFromADayAgo(t *testing.T) {
	var (
		mu      sync.Mutex
		queries []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		fmt.Fprint(w, `{"success":true,"pagination":{"limit":100,"totalCount":2,"currentPage":1,"totalPageCount":1},"history":[{"id":40,"field":"id"},{"id":41,"field":"email"}]}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, crm.WithClock(func() time.Time { return historyNow }))
	changes, last, err := c.CustomerChanges(context.Background(), 0)
	if err != nil || changes != nil || last != 41 {
		t.Fatalf("%+v, %d, %v; want no changes and start 41", changes, last, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) != 1 || !strings.Contains(queries[0], "filter%5BstartDate%5D=2026-03-09+12%3A00%3A00") || strings.Contains(queries[0], "sinceId") {
		t.Fatalf("requests %q, want one from 2026-03-09 12:00:00 without sinceId", queries)
	}
}
