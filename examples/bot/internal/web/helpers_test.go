package web_test

import (
	"context"
	"errors"
	bd "github.com/botdistributor/botdistributor"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
	"github.com/botdistributor/botdistributor/examples/bot/internal/web"
)

const (
	adminUser     = "root"
	adminPassword = "correct horse battery"
)

// harness is the settings pages over a running supervisor and the sandbox,
// and a browser-like client with a cookie jar that does not follow
// redirects.
type harness struct {
	t       *testing.T
	env     *bottest.Env
	sup     *bot.Supervisor
	srv     *httptest.Server
	client  *http.Client
	metrics *bot.Metrics
	health  atomic.Pointer[error]
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith is newHarness with the pages over backend(supervisor)
// instead of the supervisor itself; nil means the supervisor.
func newHarnessWith(t *testing.T, backend func(*bot.Supervisor) web.Backend) *harness {
	t.Helper()
	h := &harness{t: t, env: bottest.NewEnv(t), metrics: bot.NewMetrics()}
	storage, err := bot.OpenStorage(context.Background(), "memory:")
	if err != nil {
		t.Fatal(err)
	}
	opts := bottest.Options(storage.Store)
	activity := bot.NewActivity(nil)
	opts.Hooks = bot.CombineHooks(h.metrics.Hooks(), activity.Hooks())
	opts.Activity = activity
	opts.Started = h.metrics.Touch
	h.sup, err = bot.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.metrics.Watch(h.sup.States)
	bottest.Start(t, h.sup)
	var b web.Backend = h.sup
	if backend != nil {
		b = backend(h.sup)
	}
	s, err := web.New(web.Config{
		Backend: b, AdminUser: adminUser, AdminPassword: adminPassword,
		Metrics: h.metrics.Handler(),
		Health: func(context.Context) error {
			if p := h.health.Load(); p != nil {
				return *p
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(s.Handler())
	t.Cleanup(h.srv.Close)
	h.client = newClient(t)
	return h
}

func newClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// response is an answer with its body read.
type response struct {
	status   int
	body     string
	location string
}

func (h *harness) do(c *http.Client, req *http.Request) response {
	h.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

func (h *harness) get(path string) response {
	h.t.Helper()
	return h.getWith(h.client, path)
}

func (h *harness) getWith(c *http.Client, path string) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(c, req)
}

func (h *harness) post(path string, form url.Values) response {
	h.t.Helper()
	return h.postWith(h.client, path, form)
}

func (h *harness) postWith(c *http.Client, path string, form url.Values) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.do(c, req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the form on the page at path.
func (h *harness) csrf(path string) string {
	h.t.Helper()
	r := h.get(path)
	m := csrfField.FindStringSubmatch(r.body)
	if m == nil {
		h.t.Fatalf("GET %s (%d): no CSRF field in the page", path, r.status)
	}
	return m[1]
}

// login logs the harness's client in.
func (h *harness) login() {
	h.t.Helper()
	token := h.csrf("/login")
	r := h.post("/login", url.Values{"csrf": {token}, "user": {adminUser}, "password": {adminPassword}})
	if r.status != http.StatusSeeOther || r.location != "/" {
		h.t.Fatalf("login: %d to %q\n%s", r.status, r.location, r.body)
	}
}

// connect connects the sandbox account through the Connect form and
// returns the account page's path.
func (h *harness) connect() string {
	h.t.Helper()
	r := h.post("/connect", url.Values{"csrf": {h.csrf("/")}, "domain": {h.env.CRM.URL()}, "api_key": {bottest.FullKey}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/accounts/") {
		h.t.Fatalf("connect: %d to %q\n%s", r.status, r.location, r.body)
	}
	path, _, _ := strings.Cut(r.location, "?")
	id, err := url.PathUnescape(strings.TrimPrefix(path, "/accounts/"))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.sup.Ready(ctx, bd.AccountID(id)); err != nil {
		h.t.Fatal(err)
	}
	return path
}

func (h *harness) setHealth(err error) {
	if err == nil {
		h.health.Store(nil)
		return
	}
	h.health.Store(&err)
}

var errStoreDown = errors.New("store down")
