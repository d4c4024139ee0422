package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botdistributor/botdistributor/internal/leakcheck"
)

// The demo command runs for a short while in-process and its summary
// shows no capacity violation and every dialog assigned or waiting (run
// returns an error otherwise).
func TestDemo(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"--demo", "--demo-duration", "2500ms"}, envOf(nil), &out, io.Discard); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	number := func(pattern string) int {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("the summary lacks %q", pattern)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	opened := number(`dialogs opened\s+(\d+)`)
	assigned := number(`\n  assigned\s+(\d+)`)
	if opened == 0 || assigned == 0 {
		t.Fatalf("opened %d, assigned %d: the demo did nothing", opened, assigned)
	}
	if v := number(`capacity violations\s+(\d+)`); v != 0 {
		t.Fatalf("%d capacity violations", v)
	}
	if u := number(`neither assigned nor waiting\s+(\d+)`); u != 0 {
		t.Fatalf("%d dialogs neither assigned nor waiting", u)
	}
	if n := number(`\[\s*(\d+)\.\d+s\] opened`); n < 1 {
		t.Fatal("no progress line")
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// With --serve the page stays up after the demo, at the printed address,
// with the printed login, showing the demo account's dashboard. The demo
// mostly waits, so the test runs beside the browser tests.
func TestDemoServe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--demo", "--serve", "--demo-duration", "1s", "--listen", "127.0.0.1:0"}, envOf(nil), out, io.Discard)
	}()
	login := regexp.MustCompile(`Open (http://\S+)/ and log in as "(\w+)" with the password (\S+)`)
	var m []string
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for m == nil {
		select {
		case err := <-done:
			t.Fatalf("the demo ended: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("no address printed:\n%s", out.String())
		case <-tick.C:
			m = login.FindStringSubmatch(out.String())
		}
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	page := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s\n%s", resp.Request.URL, resp.Status, b)
		}
		return string(b)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page(c.Get(m[1] + "/login")))
	home := page(c.PostForm(m[1]+"/login", url.Values{"csrf": {csrf[1]}, "user": {m[2]}, "password": {m[3]}}))
	acct := regexp.MustCompile(`href="/accounts/([^"/]+)"`).FindStringSubmatch(home)
	if acct == nil {
		t.Fatalf("no account on the home page:\n%s", home)
	}
	dash := page(c.Get(m[1] + "/accounts/" + acct[1] + "/dashboard"))
	if !strings.Contains(dash, `id="managers"`) || !strings.Contains(dash, "<meter") {
		t.Fatalf("the dashboard shows no managers:\n%s", dash)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("after Ctrl-C: %v", err)
	}
}
