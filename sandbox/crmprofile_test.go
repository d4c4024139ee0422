package sandbox

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCRMCustomerCardPersonalManagerSegmentsTags(t *testing.T) {
	c := crmStart(t, WithRateLimit(-1))
	mgr := c.AddUser(CRMUser{FirstName: "Mia", Active: true, MGUserID: 501})
	id := c.AddCustomer(CRMCustomer{FirstName: "Ann", ExternalID: "ext-1", ManagerID: mgr,
		Segments: []string{"vip", "b2b"}, Tags: []string{"wholesale"}})
	plain := c.AddCustomer(CRMCustomer{FirstName: "Bo"})
	if err := c.SetCustomerTags(id, "wholesale", "Early bird"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{c.SetCustomerManager(999, 1), c.SetCustomerSegments(999, "x"), c.SetCustomerTags(999)} {
		if err == nil || !strings.Contains(err.Error(), "no customer 999") {
			t.Fatalf("setting a missing customer's profile: %v, want an error naming it", err)
		}
	}

	type card struct {
		ID        int64 `json:"id"`
		ManagerID int   `json:"managerId"`
		Segments  []struct {
			ID   int    `json:"id"`
			Code string `json:"code"`
		} `json:"segments"`
		Tags []struct {
			Name string `json:"name"`
		} `json:"tags"`
	}
	get := func(path string) (int, card) {
		t.Helper()
		st, body := crmGet(t, c.URL()+path, CRMDefaultKey)
		var resp struct {
			Customer  card   `json:"customer"`
			Customers []card `json:"customers"`
		}
		if st == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &resp); err != nil {
				t.Fatalf("GET %s: %v in %s", path, err, body)
			}
			if len(resp.Customers) == 1 {
				resp.Customer = resp.Customers[0]
			}
		}
		return st, resp.Customer
	}
	for _, path := range []string{
		"/api/v5/customers/" + strconv.FormatInt(id, 10) + "?by=id",
		"/api/v5/customers/ext-1",
		"/api/v5/customers/ext-1?by=externalId&site=sandbox",
		"/api/v5/customers?filter[name]=Ann",
	} {
		st, got := get(path)
		if st != http.StatusOK || got.ID != id || got.ManagerID != mgr || len(got.Segments) != 2 ||
			got.Segments[0].Code != "vip" || got.Segments[1].Code != "b2b" || got.Segments[0].ID == got.Segments[1].ID ||
			len(got.Tags) != 2 || got.Tags[0].Name != "wholesale" || got.Tags[1].Name != "Early bird" {
			t.Fatalf("GET %s: %d %+v", path, st, got)
		}
	}
	if st, got := get("/api/v5/customers/" + strconv.FormatInt(plain, 10) + "?by=id"); st != http.StatusOK || got.ManagerID != 0 ||
		len(got.Segments) != 0 || len(got.Tags) != 0 {
		t.Fatalf("customer without manager, segments or tags: %d %+v", st, got)
	}
	for _, path := range []string{"/api/v5/customers/999?by=id", "/api/v5/customers/ext-1?site=other", "/api/v5/customers/nope"} {
		if st, _ := get(path); st != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 404", path, st)
		}
	}
}

func TestCRMThrottleStatus(t *testing.T) {
	clock := &crmClock{t: time.Unix(1_700_000_000, 0)}
	c := crmStart(t, WithClock(clock.now), WithRateLimit(1), WithThrottleStatus(http.StatusTooManyRequests))
	api := c.URL() + "/api/v5/reference/sites"
	if st, body := crmGet(t, api, CRMDefaultKey); st != http.StatusOK {
		t.Fatalf("first request: %d %s", st, body)
	}
	if st, _ := crmGet(t, api, CRMDefaultKey); st != http.StatusTooManyRequests {
		t.Fatalf("second request in the same instant: %d, want 429", st)
	}
	if _, err := NewCRM(WithThrottleStatus(http.StatusTeapot)); err == nil || !strings.Contains(err.Error(), "WithThrottleStatus: status 418") {
		t.Fatalf("WithThrottleStatus(418): %v, want a refusal naming the option", err)
	}
}
