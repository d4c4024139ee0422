package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
	"github.com/botdistributor/botdistributor/internal/leakcheck"
)

// testApp builds the bot in real mode over a SQLite file, with the
// sandbox's fast client settings, listening on a free port.
func testApp(t *testing.T, ctx context.Context) (*app, net.Listener, config) {
	t.Helper()
	cfg := config{
		adminUser: "admin", adminPassword: "test password",
		dsn: filepath.Join(t.TempDir(), "bot.db"), moduleCode: "bot-distributor",
		rosterPoll: time.Second, logLevel: slog.LevelWarn,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.baseURL = "http://" + ln.Addr().String()
	a, err := newApp(ctx, cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: cfg.logLevel})), func(o *bot.Options) {
		fast := bottest.Options(o.Store)
		o.CRM, o.MGRate, o.MGBurst, o.RosterPoll, o.Sweep, o.Stream = fast.CRM, fast.MGRate, fast.MGBurst, fast.RosterPoll, fast.Sweep, fast.Stream
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return a, ln, cfg
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// loggedIn returns a client logged in to the bot at base, and the CSRF
// token of its session.
func loggedIn(t *testing.T, base string, cfg config) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	m := csrfField.FindStringSubmatch(page(c.Get(base + "/login")))
	if m == nil {
		t.Fatal("no CSRF token on the login page")
	}
	page(c.PostForm(base+"/login", url.Values{"csrf": {m[1]}, "user": {cfg.adminUser}, "password": {cfg.adminPassword}}))
	m = csrfField.FindStringSubmatch(page(c.Get(base + "/")))
	if m == nil {
		t.Fatal("not logged in")
	}
	return c, m[1]
}

// On a stop signal the bot stops accepting connections, lets a request in
// flight finish (here a Connect waiting on retailCRM, which still starts
// the account), then stops the accounts (their websockets close) and
// closes the database.
func TestServeShutsDownGracefully(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := bottest.NewEnv(t)
	a, ln, cfg := testApp(t, ctx)
	base := "http://" + ln.Addr().String()
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.serve(serveCtx, ln) }()

	client, token := loggedIn(t, base, cfg)
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}

	// retailCRM, behind a proxy that holds the first request until told.
	target, _ := url.Parse(env.CRM.URL())
	arrived, release := make(chan struct{}), make(chan struct{})
	var hold sync.Once
	forward := httputil.NewSingleHostReverseProxy(target)
	forwardTransport := &http.Transport{}
	defer forwardTransport.CloseIdleConnections()
	forward.Transport = forwardTransport
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hold.Do(func() {
			close(arrived)
			<-release
		})
		forward.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := client.PostForm(base+"/connect", url.Values{"csrf": {token}, "domain": {proxy.URL}, "api_key": {bottest.FullKey}})
		if err != nil {
			t.Errorf("the request in flight failed: %v", err)
			resp = nil
		}
		answered <- resp
	}()
	<-arrived
	stop()
	// New connections are refused once the shutdown began...
	bottest.Eventually(t, 10*time.Second, "the listener to close", func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// ...while the request in flight completes.
	close(release)
	resp = <-answered
	if resp == nil {
		t.FailNow()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/accounts/") {
		t.Fatalf("the request in flight answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if err := env.MG.Await(ctx, func() bool { return env.MG.Subscribers() == 0 }); err != nil {
		t.Fatalf("the account's websocket stays open: %v", err)
	}
	if err := a.storage.Ping(ctx); err == nil {
		t.Fatal("the database is still open")
	}
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
