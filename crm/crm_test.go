package crm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/sandbox"
)

// secretKey is distinctive so a leak is easy to find.
const secretKey = "k3y-SHOULD-NEVER-LEAK-4242"

// newCRM starts a sandbox CRM without rate limit that accepts secretKey
// only, then applies opts.
func newCRM(t *testing.T, opts ...sandbox.CRMOption) *sandbox.CRM {
	t.Helper()
	base := []sandbox.CRMOption{sandbox.WithRateLimit(-1), sandbox.WithKeys(map[string]sandbox.CRMKey{secretKey: sandbox.CRMFullAccess()})}
	s, err := sandbox.NewCRM(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fast returns the client option of a private, unlimited rate limiter.
func fast() crm.Option {
	return crm.WithLimiters(crm.NewLimiters(math.Inf(1), 1))
}

// newClient returns a client of domain with the test key, a private
// unlimited rate limiter and opts.
func newClient(t *testing.T, domain string, opts ...crm.Option) *crm.Client {
	t.Helper()
	c, err := crm.New(domain, secretKey, append([]crm.Option{fast()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var module = crm.Module{BaseURL: "https://bot.example.com"}

func wantIs(t *testing.T, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("error %q is not %v", err, target)
		}
	}
	if strings.Contains(err.Error(), secretKey) {
		t.Fatalf("error %q contains the API key", err)
	}
}

func TestParseDomain(t *testing.T) {
	ok := []struct{ in, want string }{
		{"https://Shop.RetailCRM.ru", "https://shop.retailcrm.ru"},
		{"https://shop.retailcrm.ru/", "https://shop.retailcrm.ru"},
		{"  shop.retailcrm.ru ", "https://shop.retailcrm.ru"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"HTTPS://shop.simla.com", "https://shop.simla.com"},
	}
	for _, tc := range ok {
		got, err := crm.ParseDomain(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, mention string }{
		{"", "empty"},
		{"ftp://shop.retailcrm.ru", "scheme"},
		{"https://shop.retailcrm.ru/admin", "path"},
		{"https://shop.retailcrm.ru/?a=1", "query"},
		{"https://shop.retailcrm.ru#top", "fragment"},
		{"https://user:pw@shop.retailcrm.ru", "user name"},
		{"https://", "no host"},
		{"https://shop.retailcrm.ru:http", "URL"},
	}
	for _, tc := range bad {
		_, err := crm.ParseDomain(tc.in)
		if !errors.Is(err, crm.ErrBadDomain) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ParseDomain(%q) error = %v; want ErrBadDomain mentioning %q", tc.in, err, tc.mention)
		}
	}
}

func TestNewRejectsBadInputBeforeAnyRequest(t *testing.T) {
	s := newCRM(t)
	_, err := crm.Connect(context.Background(), s.URL()+"/api", secretKey, module, fast())
	wantIs(t, err, crm.ErrBadDomain)
	_, err = crm.Connect(context.Background(), s.URL(), "", module, fast())
	wantIs(t, err, crm.ErrInvalidKey)
	_, err = crm.Connect(context.Background(), s.URL(), secretKey, crm.Module{}, fast())
	if err == nil || !strings.Contains(err.Error(), "base URL is required") {
		t.Fatalf("Connect without base URL: %v", err)
	}
	if n := s.Requests(secretKey); n != 0 {
		t.Fatalf("sandbox got %d requests, want 0", n)
	}
}

func TestConnect(t *testing.T) {
	s := newCRM(t, sandbox.WithMGBot("https://mg.example.com/", "mg-token-1"))
	conn, err := crm.Connect(context.Background(), s.URL(), secretKey, module, fast())
	if err != nil {
		t.Fatal(err)
	}
	if conn.MGEndpoint != "https://mg.example.com" || conn.MGToken.Reveal() != "mg-token-1" {
		t.Fatalf("MG endpoint %q, token %q", conn.MGEndpoint, conn.MGToken.Reveal())
	}
	if conn.Domain != s.URL() || conn.Module != "bot-distributor" || conn.Credentials.SiteAccess != crm.SiteAccessFull {
		t.Fatalf("connection %+v", conn)
	}
	m, ok := s.Module("bot-distributor")
	if !ok || !m.MGBot || !m.Active || m.BaseURL != "https://bot.example.com" ||
		m.Actions["activity"] != "/actions/activity" || m.Name != "Bot Distributor" || m.ClientID == "" {
		t.Fatalf("registered module %+v", m)
	}
	acc := conn.Account("shop")
	if acc.APIKey.Reveal() != secretKey || acc.MGToken.Reveal() != "mg-token-1" || acc.Domain != s.URL() {
		t.Fatalf("account %+v", acc)
	}

	// Running it again is an idempotent edit of the same module.
	again, err := crm.Connect(context.Background(), s.URL(), secretKey, module, fast())
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := s.Module("bot-distributor")
	if m2.Edits != 2 || m2.ClientID != m.ClientID || again.MGEndpoint != conn.MGEndpoint {
		t.Fatalf("second registration: %+v (first %+v)", m2, m)
	}
}

func TestConnectCustomModule(t *testing.T) {
	s := newCRM(t)
	mod := crm.Module{Code: "my-distributor", Name: "Mine", BaseURL: "https://b.example/", ActivityPath: "/hooks/activity", ClientID: "c-1"}
	conn, err := crm.Connect(context.Background(), s.URL(), secretKey, mod, fast())
	if err != nil {
		t.Fatal(err)
	}
	m, ok := s.Module("my-distributor")
	if !ok || conn.Module != "my-distributor" || m.Name != "Mine" || m.ClientID != "c-1" ||
		m.BaseURL != "https://b.example" || m.Actions["activity"] != "/hooks/activity" {
		t.Fatalf("module %+v, connection module %q", m, conn.Module)
	}
}

func TestConnectWrongKey(t *testing.T) {
	s := newCRM(t, sandbox.WithKeys(map[string]sandbox.CRMKey{"another-key": sandbox.CRMFullAccess()}))
	_, err := crm.Connect(context.Background(), s.URL(), secretKey, module, fast())
	wantIs(t, err, crm.ErrInvalidKey)
	if crm.Temporary(err) {
		t.Fatal("a wrong key is not temporary")
	}
	if !strings.Contains(err.Error(), "wrong API key") {
		t.Fatalf("message %q", err)
	}
}

func TestConnectMissingScopes(t *testing.T) {
	s := newCRM(t, sandbox.WithKeys(map[string]sandbox.CRMKey{secretKey: {
		Scopes:     []string{"integration_read", "integration_write", "customer_read", "reference_read"},
		SiteAccess: crm.SiteAccessFull,
	}}))
	_, err := crm.Connect(context.Background(), s.URL(), secretKey, module, fast())
	wantIs(t, err, crm.ErrMissingScopes)
	var se *crm.ScopeError
	if !errors.As(err, &se) {
		t.Fatalf("%v is not a *ScopeError", err)
	}
	want := []crm.Section{{Name: "Customers", Scopes: []string{"customer_write"}}, {Name: "Users", Scopes: []string{"user_read"}}}
	if fmt.Sprint(se.Missing) != fmt.Sprint(want) {
		t.Fatalf("missing %v, want %v", se.Missing, want)
	}
	if !slices.Equal(se.Sections(), []string{"Customers", "Users"}) {
		t.Fatalf("sections %v", se.Sections())
	}
	for _, part := range []string{"Customers (customer_write)", "Users (user_read)"} {
		if !strings.Contains(err.Error(), part) {
			t.Fatalf("message %q lacks %q", err, part)
		}
	}
	if _, ok := s.Module("bot-distributor"); ok {
		t.Fatal("module registered despite missing scopes")
	}
}

func TestConnectSiteAccess(t *testing.T) {
	key := sandbox.CRMFullAccess()
	key.SiteAccess = "access_selective"
	key.Sites = []string{"shop-a"}
	s := newCRM(t, sandbox.WithKeys(map[string]sandbox.CRMKey{secretKey: key}), sandbox.WithSites([]sandbox.CRMSite{{Code: "shop-a"}, {Code: "shop-b"}}...))
	_, err := crm.Connect(context.Background(), s.URL(), secretKey, module, fast())
	wantIs(t, err, crm.ErrSiteAccess)
	if errors.Is(err, crm.ErrMissingScopes) {
		t.Fatal("scopes were complete")
	}
	for _, part := range []string{"all stores", "shop-a"} {
		if !strings.Contains(err.Error(), part) {
			t.Fatalf("message %q lacks %q", err, part)
		}
	}

	// Both problems at once are both reported.
	key.Scopes = []string{"integration_read", "integration_write"}
	s.SetKey(secretKey, key)
	_, err = crm.Connect(context.Background(), s.URL(), secretKey, module, fast())
	wantIs(t, err, crm.ErrSiteAccess, crm.ErrMissingScopes)
	var se *crm.ScopeError
	if !errors.As(err, &se) || !slices.Equal(se.Sections(), []string{"Customers", "Users", "Data books"}) {
		t.Fatalf("scope error %v", err)
	}
}

func TestConnectNotRetailCRM(t *testing.T) {
	t.Run("html page", func(t *testing.T) {
		s := newCRM(t, sandbox.WithNotRetailCRM())
		_, err := crm.Connect(context.Background(), s.URL(), secretKey, module, fast())
		wantIs(t, err, crm.ErrNotRetailCRM)
	})
	t.Run("html 404", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, "<html><body>Not found</body></html>")
		}))
		defer srv.Close()
		_, err := crm.Connect(context.Background(), srv.URL, secretKey, module, fast())
		wantIs(t, err, crm.ErrNotRetailCRM)
	})
	t.Run("json 404", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"no such route"}`)
		}))
		defer srv.Close()
		_, err := crm.Connect(context.Background(), srv.URL, secretKey, module, fast())
		wantIs(t, err, crm.ErrNotRetailCRM)
	})
	t.Run("other json api", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"status":"ok"}`)
		}))
		defer srv.Close()
		_, err := crm.Connect(context.Background(), srv.URL, secretKey, module, fast())
		wantIs(t, err, crm.ErrNotRetailCRM)
	})
	t.Run("account does not exist", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"success":false,"errorMsg":"Account does not exist."}`)
		}))
		defer srv.Close()
		_, err := crm.Connect(context.Background(), srv.URL, secretKey, module, fast())
		wantIs(t, err, crm.ErrNotRetailCRM)
	})
}

func TestConnectUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = crm.Connect(context.Background(), "http://"+addr, secretKey, module, fast())
	wantIs(t, err, crm.ErrUnreachable)
	if !crm.Temporary(err) {
		t.Fatal("an unreachable host is temporary")
	}

	s := newCRM(t)
	s.SetFaults(sandbox.CRMFaults{Down: true})
	_, err = crm.Connect(context.Background(), s.URL(), secretKey, module, fast())
	wantIs(t, err, crm.ErrUnreachable)
}

func TestConnectNoMGBotInAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/credentials" {
			scopes, _ := json.Marshal(sandbox.CRMAllScopes())
			fmt.Fprintf(w, `{"success":true,"siteAccess":"access_full","scopes":%s}`, scopes)
			return
		}
		fmt.Fprint(w, `{"success":true,"info":{}}`)
	}))
	defer srv.Close()
	_, err := crm.Connect(context.Background(), srv.URL, secretKey, module, fast())
	wantIs(t, err, crm.ErrBadResponse)
	if !strings.Contains(err.Error(), "no MessageGateway endpoint") {
		t.Fatalf("message %q", err)
	}
}

// recordingSleep records the waits asked for and returns at once, calling
// each hook (if any) on the matching call.
type recordingSleep struct {
	waits []time.Duration
	hooks map[int]func()
}

func (r *recordingSleep) sleep(ctx context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	if h := r.hooks[len(r.waits)]; h != nil {
		h()
	}
	return ctx.Err()
}

func TestThrottledRetriesWithCappedBackoff(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			s := newCRM(t)
			s.SetFaults(sandbox.CRMFaults{ErrorRatio: 1, ErrorStatus: status})
			rec := &recordingSleep{}
			c := newClient(t, s.URL(), crm.WithSleep(rec.sleep), crm.WithMaxAttempts(5),
				crm.WithBackoff(100*time.Millisecond, 300*time.Millisecond))
			_, err := c.Sites(context.Background())
			wantIs(t, err, crm.ErrThrottled)
			if !crm.Temporary(err) {
				t.Fatal("throttling is temporary")
			}
			if n := s.Requests(secretKey); n != 5 {
				t.Fatalf("sent %d requests, want 5 attempts", n)
			}
			want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}
			if !slices.Equal(rec.waits, want) {
				t.Fatalf("waits %v, want %v", rec.waits, want)
			}
		})
	}
}

func TestThrottledThenRecovers(t *testing.T) {
	s := newCRM(t)
	s.SetFaults(sandbox.CRMFaults{ErrorRatio: 1, ErrorStatus: http.StatusServiceUnavailable})
	rec := &recordingSleep{hooks: map[int]func(){2: func() { s.SetFaults(sandbox.CRMFaults{}) }}}
	c := newClient(t, s.URL(), crm.WithSleep(rec.sleep))
	sites, err := c.Sites(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(sites) != 1 || sites[0].Code != "sandbox" || !sites[0].Default {
		t.Fatalf("sites %+v", sites)
	}
	if n := s.Requests(secretKey); n != 3 {
		t.Fatalf("sent %d requests, want 3", n)
	}
}

func TestServerErrorIsNotRetried(t *testing.T) {
	s := newCRM(t)
	s.SetFaults(sandbox.CRMFaults{ErrorRatio: 1})
	c := newClient(t, s.URL())
	_, err := c.Managers(context.Background())
	wantIs(t, err, crm.ErrUnavailable)
	var e *crm.Error
	if !errors.As(err, &e) || e.Status != http.StatusInternalServerError || e.Op != "users list (page 1)" {
		t.Fatalf("error %#v", err)
	}
	if !crm.Temporary(err) || s.Requests(secretKey) != 1 {
		t.Fatalf("temporary %v, requests %d", crm.Temporary(err), s.Requests(secretKey))
	}
}

func TestSandboxRateLimitIsRetriedThrough(t *testing.T) {
	// A strict sandbox (2 requests in any second) and a client that does
	// not limit itself: the client must ride out the 503s by retrying.
	s := newCRM(t, sandbox.WithRateLimit(2), sandbox.WithSlidingWindow())
	c := newClient(t, s.URL(), crm.WithBackoff(100*time.Millisecond, 400*time.Millisecond), crm.WithMaxAttempts(20))
	for i := range 4 {
		if _, err := c.Sites(context.Background()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if s.Throttled(secretKey) == 0 {
		t.Fatal("the sandbox never throttled; the test proves nothing")
	}
	t.Logf("4 calls: %d requests, %d answered 503 and retried", s.Requests(secretKey), s.Throttled(secretKey))
}

func TestContextCancelReturnsWhileRequestRuns(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c := newClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Credentials(ctx)
		done <- err
	}()
	<-started
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestContextDoneBeforeCallSendsNothing(t *testing.T) {
	s := newCRM(t)
	c := newClient(t, s.URL())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Sites(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	if n := s.Requests(secretKey); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestLimiterIsSharedPerDomainAndKey(t *testing.T) {
	s := newCRM(t, sandbox.WithKeys(map[string]sandbox.CRMKey{
		secretKey: sandbox.CRMFullAccess(), "other": sandbox.CRMFullAccess(),
	}))
	now := time.Unix(1_700_000_000, 0)
	reg := crm.NewLimiters(2, 1)
	rec := &recordingSleep{}
	opts := []crm.Option{crm.WithLimiters(reg), crm.WithClock(func() time.Time { return now }), crm.WithSleep(rec.sleep)}
	a, b := newClient(t, s.URL(), opts...), newClient(t, s.URL(), opts...)
	other, err := crm.New(s.URL(), "other", opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []*crm.Client{a, other} {
		if _, err := c.Sites(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.waits) != 0 {
		t.Fatalf("first call of each key waited %v", rec.waits)
	}
	// The clock stands still: a second client of the same key must wait
	// for the shared bucket, half a second at 2 requests/s.
	if _, err := b.Sites(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.waits, []time.Duration{500 * time.Millisecond}) {
		t.Fatalf("waits %v, want [500ms]", rec.waits)
	}
	if reg.Limit() != 2 || crm.SharedLimiters().Limit() != crm.DefaultRate || crm.DefaultRate != 10 {
		t.Fatal("limits")
	}
}

func TestKeyNeverLeaks(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"success":false,"errorMsg":"bad request for %s","errors":{"key":"%s"}}`, r.Header.Get("X-API-KEY"), r.Header.Get("X-API-KEY"))
	}))
	defer echo.Close()
	throttled := newCRM(t)
	throttled.SetFaults(sandbox.CRMFaults{ErrorRatio: 1, ErrorStatus: http.StatusServiceUnavailable})
	wrong := newCRM(t, sandbox.WithKeys(map[string]sandbox.CRMKey{"x": sandbox.CRMFullAccess()}))
	html := newCRM(t, sandbox.WithNotRetailCRM())

	var errs []error
	for _, domain := range []string{echo.URL, throttled.URL(), wrong.URL(), html.URL(), "http://127.0.0.1:1"} {
		c := newClient(t, domain, crm.WithLogger(logger), crm.WithSleep((&recordingSleep{}).sleep), crm.WithMaxAttempts(3))
		_, err := c.FindCustomers(context.Background(), crm.CustomerFilter{Email: "a@b.c"})
		errs = append(errs, err)
		conn := crm.Connection{Client: c, MGToken: "mg-TOKEN-leak"}
		for _, s := range []string{
			fmt.Sprintf("%v %+v %#v %s %d %x", c, c, c, c, c, c),
			fmt.Sprintf("%v %+v %#v", conn, conn, conn),
		} {
			if strings.Contains(s, secretKey) || strings.Contains(s, "mg-TOKEN-leak") {
				t.Fatalf("formatted client leaks: %s", s)
			}
		}
		logger.Info("client", "client", c)
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		walkErrors(err, func(e error) {
			if strings.Contains(e.Error(), secretKey) || strings.Contains(fmt.Sprintf("%+v", e), secretKey) {
				t.Fatalf("error (or one it wraps) leaks the key: %v", e)
			}
		})
		var e *crm.Error
		if errors.As(err, &e) {
			for k, v := range e.Fields {
				if strings.Contains(k+v, secretKey) {
					t.Fatalf("error fields leak the key: %v", e.Fields)
				}
			}
		}
	}
	if !strings.Contains(errs[0].Error(), "[secret]") {
		t.Fatalf("echoed key not masked: %v", errs[0])
	}
	if !strings.Contains(logs.String(), "throttled") {
		t.Fatalf("retries were not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), secretKey) {
		t.Fatalf("logs leak the key: %s", logs.String())
	}
}

func TestManagersAllPages(t *testing.T) {
	s := newCRM(t)
	for i := range 130 {
		s.AddUser(sandbox.CRMUser{FirstName: fmt.Sprint("M", i), Active: true, IsManager: true, Status: "free", MGUserID: int64(1000 + i)})
	}
	s.AddUser(sandbox.CRMUser{FirstName: "Gone", Active: false, IsManager: true, MGUserID: 5000})
	s.AddUser(sandbox.CRMUser{FirstName: "Clerk", Active: true, IsManager: false, MGUserID: 5001})
	c := newClient(t, s.URL())
	users, err := c.Managers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 130 {
		t.Fatalf("got %d managers, want 130", len(users))
	}
	for _, u := range users {
		if !u.Active || !u.IsManager || u.MGUserID < 1000 || u.MGUserID >= 1130 || u.Status != "free" {
			t.Fatalf("unexpected user %+v", u)
		}
	}
	if n := s.Requests(secretKey); n != 2 {
		t.Fatalf("%d requests, want 2 pages", n)
	}
}

func TestRosterFromSandbox(t *testing.T) {
	s := newCRM(t)
	s.AddUser(sandbox.CRMUser{ID: 1, FirstName: "Ann", Active: true, IsManager: true, Status: "free", MGUserID: 11})
	s.AddUser(sandbox.CRMUser{ID: 2, FirstName: "Bob", Active: true, IsManager: true, Status: "busy", MGUserID: 12})
	s.AddUser(sandbox.CRMUser{ID: 3, FirstName: "NoChat", Active: true, IsManager: true, Status: "free"})
	c := newClient(t, s.URL())
	r, err := c.Roster(context.Background(), []crm.MGUser{
		{ID: 11, Online: true, Available: true, Active: true},
		{ID: 12, Online: false, Available: true, Active: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []bd.Manager{
		{ID: 11, FirstName: "Ann", Status: bd.StatusFree, Online: true, Active: true},
		{ID: 12, FirstName: "Bob", Status: bd.StatusBusy, Online: false, Active: true},
	}
	if !slices.Equal(r.Managers, want) {
		t.Fatalf("managers %+v, want %+v", r.Managers, want)
	}
	if len(r.Notes) != 1 || r.Notes[0].Reason != crm.NoMGUser || r.Notes[0].CRMUser != 3 {
		t.Fatalf("notes %v", r.Notes)
	}
	if err := s.SetStatus(1, "dinner"); err != nil {
		t.Fatal(err)
	}
	r, err = c.Roster(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Managers[0].Status != bd.StatusDinner || r.Managers[0].Active {
		t.Fatalf("after status change: %+v", r.Managers[0])
	}
}

func TestCustomers(t *testing.T) {
	s := newCRM(t)
	id := s.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", LastName: "Lee", Email: "Ann@Example.com", Phones: []string{"+7 (916) 123-45-67"}})
	c := newClient(t, s.URL())
	ctx := context.Background()

	byPhone, err := c.FindCustomers(ctx, crm.CustomerFilter{Name: "9161234567"})
	if err != nil || len(byPhone) != 1 || byPhone[0].ID != id || byPhone[0].Phones[0] != "+7 (916) 123-45-67" || byPhone[0].Site != "sandbox" {
		t.Fatalf("by phone: %+v, %v", byPhone, err)
	}
	byName, err := c.FindCustomers(ctx, crm.CustomerFilter{Name: "ann lee"})
	if err != nil || len(byName) != 1 {
		t.Fatalf("by name: %+v, %v", byName, err)
	}
	if none, err := c.FindCustomers(ctx, crm.CustomerFilter{MGCustomerID: "77"}); err != nil || len(none) != 0 {
		t.Fatalf("by link before linking: %+v, %v", none, err)
	}
	if err := c.LinkCustomer(ctx, id, "sandbox", "77"); err != nil {
		t.Fatal(err)
	}
	linked, err := c.FindCustomers(ctx, crm.CustomerFilter{MGCustomerID: "77"})
	if err != nil || len(linked) != 1 || linked[0].ID != id || linked[0].MGCustomerID != "77" || linked[0].Email != "Ann@Example.com" {
		t.Fatalf("by link: %+v, %v", linked, err)
	}
	newID, err := c.CreateCustomer(ctx, crm.NewCustomer{MGCustomerID: "78", FirstName: "Bo", Phone: "+79990000000", Email: "bo@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s.Customer(newID)
	if !ok || got.MGCustomerID != "78" || got.FirstName != "Bo" || !slices.Equal(got.Phones, []string{"+79990000000"}) || got.Email != "bo@example.com" || s.Created() != 1 {
		t.Fatalf("created %+v", got)
	}
	if _, err := c.FindCustomers(ctx, crm.CustomerFilter{}); !errors.Is(err, crm.ErrRejected) {
		t.Fatalf("empty filter: %v", err)
	}
	err = c.LinkCustomer(ctx, 999, "", "1")
	wantIs(t, err, crm.ErrNotFound)
}

func TestMissingScopeAtCallTime(t *testing.T) {
	s := newCRM(t, sandbox.WithKeys(map[string]sandbox.CRMKey{secretKey: {Scopes: []string{"user_read"}, SiteAccess: crm.SiteAccessFull}}))
	c := newClient(t, s.URL())
	_, err := c.FindCustomers(context.Background(), crm.CustomerFilter{Email: "a@b.c"})
	wantIs(t, err, crm.ErrAccessDenied)
}

func TestCustomerIDsDecodedLeniently(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"success":true,"customers":[{"id":5,"externalId":42,"mgCustomerId":123456,"phones":[{"number":"1"}]},{"id":6,"mgCustomerId":null}]}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL)
	got, err := c.FindCustomers(context.Background(), crm.CustomerFilter{MGCustomerID: "123456"})
	if err != nil || len(got) != 2 || got[0].MGCustomerID != "123456" || got[0].ExternalID != "42" || got[1].MGCustomerID != "" {
		t.Fatalf("%+v, %v", got, err)
	}
}

// walkErrors calls f on err and every error it wraps.
func walkErrors(err error, f func(error)) {
	if err == nil {
		return
	}
	f(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, f)
		}
	}
}

func TestBadOptionIsRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  crm.Option
		want string
	}{
		{"negative attempts", crm.WithMaxAttempts(-1), "crm: WithMaxAttempts: negative count -1"},
		{"negative first backoff", crm.WithBackoff(-time.Second, 0), "crm: WithBackoff: negative first wait -1s"},
		{"negative max backoff", crm.WithBackoff(0, -time.Second), "crm: WithBackoff: negative max wait -1s"},
		{"nil option", nil, "crm: nil option"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := crm.New("shop.retailcrm.ru", secretKey, tt.opt); err == nil || err.Error() != tt.want {
				t.Errorf("New: %v, want %q", err, tt.want)
			}
			_, err := crm.Connect(context.Background(), "shop.retailcrm.ru", secretKey, module, tt.opt)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Connect: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDefaultOptionArguments(t *testing.T) {
	c, err := crm.New("shop.retailcrm.ru", secretKey, crm.WithLimiters(nil), crm.WithMaxAttempts(0),
		crm.WithBackoff(0, 0), crm.WithClock(nil), crm.WithSleep(nil), crm.WithLogger(nil))
	if err != nil || c == nil {
		t.Fatalf("New with nil and zero arguments: %v", err)
	}
	if l := crm.NewLimiters(0, 0).Limit(); l != crm.DefaultRate {
		t.Errorf("NewLimiters(0, 0).Limit() = %v, want %v", l, crm.DefaultRate)
	}
	if l := crm.NewLimiters(math.Inf(1), 1).Limit(); !math.IsInf(l, 1) {
		t.Errorf("NewLimiters(+Inf, 1).Limit() = %v, want +Inf", l)
	}
}
