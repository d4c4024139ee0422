package sandbox

import (
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	retailcrm "github.com/retailcrm/api-client-go/v2"
)

func crmStart(t *testing.T, opts ...CRMOption) *CRM {
	t.Helper()
	c, err := NewCRM(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// crmClock is a settable clock for the rate limit.
type crmClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *crmClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *crmClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func crmGet(t *testing.T, rawURL, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCRMRateLimitTokenBucket(t *testing.T) {
	clock := &crmClock{t: time.Unix(1_700_000_000, 0)}
	c := crmStart(t, WithClock(clock.now))
	api := c.URL() + "/api/v5/reference/sites"
	for i := range 10 {
		if st, body := crmGet(t, api, CRMDefaultKey); st != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, st, body)
		}
	}
	if st, _ := crmGet(t, api, CRMDefaultKey); st != http.StatusServiceUnavailable {
		t.Fatalf("11th request in the same instant: %d, want 503", st)
	}
	clock.add(100 * time.Millisecond) // one token back
	if st, _ := crmGet(t, api, CRMDefaultKey); st != http.StatusOK {
		t.Fatalf("after 100ms: %d, want 200", st)
	}
	if st, _ := crmGet(t, api, CRMDefaultKey); st != http.StatusServiceUnavailable {
		t.Fatalf("second request after 100ms: %d, want 503", st)
	}
	if c.Requests(CRMDefaultKey) != 13 || c.Throttled(CRMDefaultKey) != 2 {
		t.Fatalf("requests %d, throttled %d", c.Requests(CRMDefaultKey), c.Throttled(CRMDefaultKey))
	}
}

func TestCRMRateLimitSlidingWindowPerKey(t *testing.T) {
	clock := &crmClock{t: time.Unix(1_700_000_000, 0)}
	c := crmStart(t, WithClock(clock.now), WithSlidingWindow(), WithKeys(map[string]CRMKey{"a": CRMFullAccess(), "b": CRMFullAccess()}))
	api := c.URL() + "/api/v5/reference/sites"
	for i := range 10 {
		clock.add(10 * time.Millisecond)
		if st, _ := crmGet(t, api, "a"); st != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, st)
		}
	}
	if st, _ := crmGet(t, api, "a"); st != http.StatusServiceUnavailable {
		t.Fatalf("11th request within a second: %d, want 503", st)
	}
	if st, _ := crmGet(t, api, "b"); st != http.StatusOK {
		t.Fatalf("another key has its own limit: %d", st)
	}
	clock.add(910 * time.Millisecond) // the first request is now 1s old
	if st, _ := crmGet(t, api, "a"); st != http.StatusOK {
		t.Fatalf("after the window moved: %d, want 200", st)
	}
	if st, _ := crmGet(t, api, "a"); st != http.StatusServiceUnavailable {
		t.Fatalf("window full again: %d, want 503", st)
	}
}

func TestCRMKeys(t *testing.T) {
	c := crmStart(t, WithRateLimit(-1))
	st, body := crmGet(t, c.URL()+"/api/credentials", "nope")
	if st != http.StatusForbidden || body != `{"errorMsg":"Wrong \"apiKey\" value.","success":false}`+"\n" {
		t.Fatalf("wrong key: %d %s", st, body)
	}
	st, body = crmGet(t, c.URL()+"/api/credentials", "")
	if st != http.StatusForbidden || !strings.Contains(body, `\"apiKey\" is missing.`) {
		t.Fatalf("no key: %d %s", st, body)
	}
	st, body = crmGet(t, c.URL()+"/api/credentials?apiKey="+CRMDefaultKey, "")
	if st != http.StatusOK || !strings.Contains(body, `"siteAccess":"access_full"`) {
		t.Fatalf("key in query: %d %s", st, body)
	}

	// The real client classifies the answers.
	_, _, err := retailcrm.New(c.URL(), "nope").APICredentials()
	if !errors.Is(err, retailcrm.ErrInvalidCredentials) {
		t.Fatalf("client error %v", err)
	}
	c.SetKey("weak", CRMKey{Scopes: []string{"user_read"}, SiteAccess: "access_full"})
	_, _, err = retailcrm.New(c.URL(), "weak").Sites()
	if !errors.Is(err, retailcrm.ErrAccessDenied) {
		t.Fatalf("missing scope: %v", err)
	}
	cred, _, err := retailcrm.New(c.URL(), "weak").APICredentials()
	if err != nil || !slices.Equal(cred.Scopes, []string{"user_read"}) || cred.SiteAccess != "access_full" || !slices.Equal(cred.SitesAvailable, []string{"sandbox"}) {
		t.Fatalf("credentials %+v %v", cred, err)
	}
	c.RemoveKey("weak")
	if _, _, err = retailcrm.New(c.URL(), "weak").APICredentials(); !errors.Is(err, retailcrm.ErrInvalidCredentials) {
		t.Fatalf("removed key: %v", err)
	}
}

func TestCRMNotRetailCRM(t *testing.T) {
	c := crmStart(t, WithRateLimit(-1))
	st, body := crmGet(t, c.URL()+"/no/such/page", CRMDefaultKey)
	if st != http.StatusNotFound || !strings.HasPrefix(body, "<!DOCTYPE html>") {
		t.Fatalf("unknown path: %d %s", st, body)
	}
	if _, _, err := retailcrm.New(c.URL(), CRMDefaultKey).GetRequest("/nothing-here"); !errors.Is(err, retailcrm.ErrAccountDoesNotExist) {
		t.Fatalf("client on unknown path: %v", err)
	}
	c.SetNotRetailCRM(true)
	st, body = crmGet(t, c.URL()+"/api/credentials", CRMDefaultKey)
	if st != http.StatusOK || !strings.Contains(body, "<html>") {
		t.Fatalf("html everything: %d %s", st, body)
	}
}

func TestCRMFaults(t *testing.T) {
	c := crmStart(t, WithRateLimit(-1), WithSeed(7))
	api := retailcrm.New(c.URL(), CRMDefaultKey)
	c.SetFaults(CRMFaults{ErrorRatio: 1, ErrorStatus: http.StatusBadGateway})
	if _, st, err := api.Sites(); st != http.StatusBadGateway || !errors.Is(err, retailcrm.ErrGeneric) {
		t.Fatalf("injected: %d %v", st, err)
	}
	c.SetFaults(CRMFaults{ErrorRatio: 0.5})
	failed := 0
	for range 200 {
		if _, _, err := api.Sites(); err != nil {
			failed++
		}
	}
	if failed < 60 || failed > 140 || c.Injected() != failed+1 {
		t.Fatalf("ratio 0.5 failed %d of 200 (injected %d)", failed, c.Injected())
	}
	c.SetFaults(CRMFaults{Down: true})
	_, st, err := api.Sites()
	var ue *url.Error
	if st != 0 || !errors.As(err, &ue) {
		t.Fatalf("down: %d %v", st, err)
	}
	c.SetFaults(CRMFaults{})
	if _, _, err := api.Sites(); err != nil {
		t.Fatalf("back up: %v", err)
	}
}

func TestCRMModuleEdit(t *testing.T) {
	c := crmStart(t, WithRateLimit(-1), WithMGBot("http://127.0.0.1:9", "tok"))
	api := retailcrm.New(c.URL(), CRMDefaultKey)
	active := true
	m := retailcrm.IntegrationModule{
		Code: "bd", IntegrationCode: "bd", Active: &active, Name: "Bot", ClientID: "cid", BaseURL: "https://bot.example",
		Actions: retailcrm.StringMap{"activity": "/actions/activity"}, Integrations: &retailcrm.Integrations{MgBot: &retailcrm.MgBot{}},
	}
	resp, st, err := api.IntegrationModuleEdit(m)
	if err != nil || st != http.StatusCreated || resp.Info.MgBotInfo.EndpointURL != "http://127.0.0.1:9" || resp.Info.MgBotInfo.Token != "tok" {
		t.Fatalf("edit: %+v %d %v", resp, st, err)
	}
	if _, st, err = api.IntegrationModuleEdit(m); err != nil || st != http.StatusOK {
		t.Fatalf("second edit: %d %v", st, err)
	}
	got, ok := c.Module("bd")
	if !ok || got.Edits != 2 || !got.MGBot || got.BaseURL != "https://bot.example" || got.Actions["activity"] != "/actions/activity" {
		t.Fatalf("module %+v", got)
	}
	// A new module without its required fields is rejected with the list.
	_, st, err = api.IntegrationModuleEdit(retailcrm.IntegrationModule{Code: "other"})
	apiErr, _ := retailcrm.AsAPIError(err)
	if st != http.StatusBadRequest || apiErr == nil || len(apiErr.Errors()) != 3 {
		t.Fatalf("invalid module: %d %v", st, err)
	}
	// A form without the field is answered like retailCRM.
	_, st, err = api.PostRequest("/integration-modules/bd/edit", url.Values{})
	if st != http.StatusBadRequest || !errors.Is(err, retailcrm.ErrMissingParameter) {
		t.Fatalf("missing parameter: %d %v", st, err)
	}
}

func TestCRMUsers(t *testing.T) {
	c := crmStart(t, WithRateLimit(-1))
	for i := range 25 {
		c.AddUser(CRMUser{FirstName: "M", Active: true, IsManager: true, Status: "free", MGUserID: int64(100 + i)})
	}
	c.AddUser(CRMUser{ID: 500, Active: false, IsManager: true})
	c.AddUser(CRMUser{ID: 501, Active: true, IsManager: false})
	api := retailcrm.New(c.URL(), CRMDefaultKey)
	req := retailcrm.UsersRequest{Filter: retailcrm.UsersFilter{Active: 1, IsManager: 1}, Limit: 20, Page: 2}
	resp, _, err := api.Users(req)
	if err != nil || len(resp.Users) != 5 || resp.Pagination.TotalCount != 25 || resp.Pagination.TotalPageCount != 2 || resp.Pagination.CurrentPage != 2 {
		t.Fatalf("page 2: %+v %v", resp.Pagination, err)
	}
	if resp.Users[0].MGUserID != 120 || resp.Users[0].Status != "free" {
		t.Fatalf("user %+v", resp.Users[0])
	}
	if err := c.SetStatus(1, "break"); err != nil {
		t.Fatal(err)
	}
	one, _, err := api.User(1)
	if err != nil || one.User.Status != "break" {
		t.Fatalf("user 1: %+v %v", one.User, err)
	}
	if err := c.SetStatus(999, "free"); err == nil {
		t.Fatal("status of a missing user")
	}
	_, st, err := api.Users(retailcrm.UsersRequest{Limit: 30})
	if st != http.StatusBadRequest || err == nil {
		t.Fatalf("limit 30: %d %v", st, err)
	}
}

func TestCRMCustomersAsTheClientSendsThem(t *testing.T) {
	selective := CRMFullAccess()
	selective.SiteAccess, selective.Sites = "access_selective", []string{"b"}
	c := crmStart(t, WithRateLimit(-1), WithSites([]CRMSite{{Code: "a", DefaultForCRM: true}, {Code: "b"}}...), WithKeys(map[string]CRMKey{CRMDefaultKey: CRMFullAccess(), "sel": selective}))
	api := retailcrm.New(c.URL(), CRMDefaultKey)
	created, st, err := api.CustomerCreate(retailcrm.Customer{
		FirstName: "Ann", LastName: "Lee", Email: "Ann@Example.com",
		Phones: []retailcrm.Phone{{Number: "+7 (916) 123-45-67"}}, MgCustomerID: "55",
	})
	if err != nil || st != http.StatusCreated || created.ID == 0 || c.Created() != 1 {
		t.Fatalf("create: %+v %d %v", created, st, err)
	}
	cu, _ := c.Customer(int64(created.ID))
	want := CRMCustomer{ID: int64(created.ID), FirstName: "Ann", LastName: "Lee", Email: "Ann@Example.com",
		Phones: []string{"+7 (916) 123-45-67"}, Site: "a", MGCustomerID: "55"}
	if cu.ID != want.ID || cu.FirstName != want.FirstName || cu.Email != want.Email || !slices.Equal(cu.Phones, want.Phones) || cu.Site != "a" || cu.MGCustomerID != "55" {
		t.Fatalf("stored %+v", cu)
	}
	bID := c.AddCustomer(CRMCustomer{FirstName: "Bo", Site: "b", Email: "bo@x.org", Phones: []string{"8 916 000 00 01"}})

	find := func(key string, f retailcrm.CustomersFilter) []int {
		t.Helper()
		resp, _, err := retailcrm.New(c.URL(), key).Customers(retailcrm.CustomersRequest{Filter: f, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, x := range resp.Customers {
			ids = append(ids, x.ID)
		}
		return ids
	}
	cases := []struct {
		name string
		key  string
		f    retailcrm.CustomersFilter
		want []int
	}{
		{"phone digits", CRMDefaultKey, retailcrm.CustomersFilter{Name: "9161234567"}, []int{created.ID}},
		{"formatted phone", CRMDefaultKey, retailcrm.CustomersFilter{Name: "+7 916 000-00-01"}, nil},
		{"national phone", CRMDefaultKey, retailcrm.CustomersFilter{Name: "9160000001"}, []int{int(bID)}},
		{"name", CRMDefaultKey, retailcrm.CustomersFilter{Name: "LEE"}, []int{created.ID}},
		{"email part", CRMDefaultKey, retailcrm.CustomersFilter{Email: "example.com"}, []int{created.ID}},
		{"mg link", CRMDefaultKey, retailcrm.CustomersFilter{MgCustomerID: "55"}, []int{created.ID}},
		{"mg link none", CRMDefaultKey, retailcrm.CustomersFilter{MgCustomerID: "5"}, nil},
		{"selective key", "sel", retailcrm.CustomersFilter{Email: "o"}, []int{int(bID)}},
	}
	for _, tc := range cases {
		if got := find(tc.key, tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}

	// Edit links an existing customer by id, keeping what is not sent.
	_, st, err = api.CustomerEdit(retailcrm.Customer{ID: int(bID), MgCustomerID: "77"}, retailcrm.ByID, "b")
	if err != nil || st != http.StatusOK {
		t.Fatalf("edit: %d %v", st, err)
	}
	b, _ := c.Customer(bID)
	if b.MGCustomerID != "77" || b.Email != "bo@x.org" || b.FirstName != "Bo" || c.CustomerEdits() != 1 {
		t.Fatalf("edited %+v", b)
	}
	if _, st, err = api.CustomerEdit(retailcrm.Customer{ID: 999}, retailcrm.ByID); st != http.StatusNotFound || err == nil {
		t.Fatalf("edit missing: %d %v", st, err)
	}
	// A selective key must name an allowed store.
	sel := retailcrm.New(c.URL(), "sel")
	if _, st, err = sel.CustomerCreate(retailcrm.Customer{FirstName: "X"}); st != http.StatusBadRequest || !errors.Is(err, retailcrm.ErrMissingParameter) {
		t.Fatalf("selective without site: %d %v", st, err)
	}
	if _, st, err = sel.CustomerCreate(retailcrm.Customer{FirstName: "X"}, "a"); st != http.StatusForbidden || !errors.Is(err, retailcrm.ErrAccessDenied) {
		t.Fatalf("selective other site: %d %v", st, err)
	}
	if _, st, err = sel.CustomerCreate(retailcrm.Customer{FirstName: "X"}, "nope"); st != http.StatusBadRequest {
		t.Fatalf("unknown site: %d %v", st, err)
	}
	if len(c.Customers()) != 2 {
		t.Fatalf("customers %+v", c.Customers())
	}
}

func TestCRMSites(t *testing.T) {
	c := crmStart(t, WithRateLimit(-1), WithSites([]CRMSite{{Code: "a", Name: "A", DefaultForCRM: true}, {Code: "b", Name: "B"}}...))
	resp, _, err := retailcrm.New(c.URL(), CRMDefaultKey).Sites()
	if err != nil || len(resp.Sites) != 2 || resp.Sites["a"].Name != "A" || !resp.Sites["a"].DefaultForCRM {
		t.Fatalf("%+v %v", resp, err)
	}
	for _, tt := range []struct {
		name string
		opt  CRMOption
		want string
	}{
		{"empty key", WithKeys(map[string]CRMKey{"": {}}), "sandbox: crm: WithKeys: an API key must not be empty"},
		{"site without code", WithSites(CRMSite{Name: "A"}), "sandbox: crm: WithSites: a site needs a code"},
		{"NaN rate", WithRateLimit(math.NaN()), "sandbox: crm: WithRateLimit: NaN requests per second"},
		{"nil option", nil, "sandbox: crm: nil option"},
	} {
		if _, err := NewCRM(tt.opt); err == nil || err.Error() != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.want)
		}
	}
}
