package distributor_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/alert"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/store"
)

// alertLog records what the distributor's hooks saw of wait alerts.
type alertLog struct {
	mu     sync.Mutex
	alerts []distributor.WaitAlert
	failed []error
}

func (l *alertLog) hooks() distributor.Hooks {
	return distributor.Hooks{
		WaitAlert: func(account bd.AccountID, a distributor.WaitAlert) {
			if account != acct {
				panic("wait alert of account " + string(account))
			}
			l.mu.Lock()
			l.alerts = append(l.alerts, a)
			l.mu.Unlock()
		},
		Failed: func(_ bd.AccountID, op string, err error) {
			if op == "alert webhook" {
				l.mu.Lock()
				l.failed = append(l.failed, err)
				l.mu.Unlock()
			}
		},
	}
}

func (l *alertLog) got() []distributor.WaitAlert {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]distributor.WaitAlert(nil), l.alerts...)
}

func (l *alertLog) failures() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.failed...)
}

// newAlertFixture is an account whose only manager is offline, so every
// dialog waits, with a wait alert after bound.
func newAlertFixture(t *testing.T, bound time.Duration, edit func(*bd.Settings), opts ...distributor.Option) (*fixture, *alertLog) {
	t.Helper()
	s := settingsFor(managerIDs(1), 1)
	s.WaitAlert = bound
	if edit != nil {
		edit(&s)
	}
	roster := onlineManagers(managerIDs(1))
	roster[0].Online = false
	l := &alertLog{}
	f := newFixture(t, s, roster, append([]distributor.Option{distributor.WithHooks(l.hooks())}, opts...)...)
	return f, l
}

// sweeps runs n sweeps and waits for their work.
func (f *fixture) sweeps(t *testing.T, n int) {
	t.Helper()
	for range n {
		f.d.Sweep(context.Background())
	}
	f.flush(t)
}

func TestWaitAlertOncePerBreach(t *testing.T) {
	var logs bytes.Buffer
	f, l := newAlertFixture(t, 5*time.Minute, nil,
		distributor.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	d1 := dialog(1, 1) // opened at t0+1ms
	f.open(t, d1)
	if n := f.queueLen(t); n != 1 {
		t.Fatalf("queue length %d, want 1", n)
	}
	f.sweeps(t, 3)
	f.clock.Set(d1.OpenedAt.Add(5 * time.Minute)) // at the bound, not over it
	f.sweeps(t, 3)
	if got := l.got(); len(got) != 0 {
		t.Fatalf("alerts %+v before the wait passed the bound", got)
	}

	f.clock.Add(time.Second)
	f.sweeps(t, 1)
	want := distributor.WaitAlert{Dialog: 1, Waited: 5*time.Minute + time.Second, Threshold: 5 * time.Minute, At: f.clock.Now()}
	if got := l.got(); len(got) != 1 || got[0] != want {
		t.Fatalf("alerts %+v, want one: %+v", got, want)
	}
	for range 20 { // the breach lasts: no new alert
		f.clock.Add(time.Minute)
		f.sweeps(t, 1)
	}
	if got := l.got(); len(got) != 1 {
		t.Fatalf("%d alerts during one breach, want 1: %+v", len(got), got)
	}
	if n := strings.Count(logs.String(), "longest wait over the alert threshold"); n != 1 {
		t.Errorf("%d warnings logged, want 1:\n%s", n, logs.String())
	}
	for _, attr := range []string{"account=" + string(acct), "dialog=1", "wait=5m1s", "threshold=5m0s"} {
		if !strings.Contains(logs.String(), attr) {
			t.Errorf("the warning lacks %s:\n%s", attr, logs.String())
		}
	}

	// A newer dialog waits too; the oldest closes: the longest wait drops
	// below the bound, the breach is over.
	d2 := dialog(2, 1)
	d2.OpenedAt = f.clock.Now()
	f.open(t, d2)
	f.clock.Add(time.Minute)
	f.sweeps(t, 1)
	f.close(t, 1)
	f.sweeps(t, 3)
	if got := l.got(); len(got) != 1 {
		t.Fatalf("alerts %+v after the breach ended, want still 1", got)
	}
	// A new breach: one new alert, of the dialog now waiting longest.
	f.clock.Add(4*time.Minute + time.Second)
	f.sweeps(t, 5)
	got := l.got()
	if len(got) != 2 || got[1].Dialog != 2 || got[1].Waited != 5*time.Minute+time.Second {
		t.Fatalf("alerts %+v, want a second one for dialog 2 after 5m1s", got)
	}

	// The queue empties, then a breach again.
	f.close(t, 2)
	f.sweeps(t, 1)
	d3 := dialog(3, 1)
	d3.OpenedAt = f.clock.Now()
	f.open(t, d3)
	f.sweeps(t, 1)
	f.clock.Add(6 * time.Minute)
	f.sweeps(t, 3)
	if got := l.got(); len(got) != 3 || got[2].Dialog != 3 {
		t.Fatalf("alerts %+v, want a third one for dialog 3", got)
	}
}

func TestWaitAlertOldestWhateverItsPriority(t *testing.T) {
	f, l := newAlertFixture(t, 5*time.Minute, nil)
	ctx := context.Background()
	old, urgent := dialog(11, 1), dialog(10, 1)
	old.OpenedAt, urgent.OpenedAt = t0, t0.Add(4*time.Minute)
	// The urgent dialog is first in the queue, the old one waits longer.
	for _, w := range []store.Waiting{
		{Dialog: urgent, Reason: bd.NoManagerOnline, Priority: 5, Since: urgent.OpenedAt},
		{Dialog: old, Reason: bd.NoManagerOnline, Since: old.OpenedAt},
	} {
		if _, err := f.st.Enqueue(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	ws, err := f.st.Waiting(ctx, acct, 1)
	if err != nil || len(ws) != 1 || ws[0].Dialog.ID != urgent.ID {
		t.Fatalf("queue head %+v (%v), want the urgent dialog first", ws, err)
	}
	f.clock.Set(t0.Add(6 * time.Minute))
	f.sweeps(t, 1)
	got := l.got()
	if len(got) != 1 || got[0].Dialog != old.ID || got[0].Waited != 6*time.Minute {
		t.Fatalf("alerts %+v, want one for dialog %d after 6m", got, old.ID)
	}
}

func TestWaitAlertOffWhenZero(t *testing.T) {
	posts := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		posts++
		mu.Unlock()
	}))
	defer srv.Close()
	f, l := newAlertFixture(t, 0, func(s *bd.Settings) { s.AlertWebhook, s.AlertSecret = srv.URL, "secret" })
	f.open(t, dialog(1, 1))
	for range 10 {
		f.clock.Add(time.Hour)
		f.sweeps(t, 1)
	}
	if err := f.d.Close(); err != nil { // waits for any post
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := l.got(); len(got) != 0 || posts != 0 {
		t.Fatalf("alerts %+v and %d posts with WaitAlert 0, want none", got, posts)
	}
}

func TestWaitAlertInactiveAccountEndsBreach(t *testing.T) {
	f, l := newAlertFixture(t, time.Minute, nil)
	f.open(t, dialog(1, 1))
	f.clock.Add(2 * time.Minute)
	f.sweeps(t, 1)
	ctx := context.Background()
	s, err := f.d.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Active = false
	if err := f.d.SaveSettings(ctx, s); err != nil {
		t.Fatal(err)
	}
	f.sweeps(t, 2)
	if got := l.got(); len(got) != 1 {
		t.Fatalf("alerts %+v while switched off, want the first one only", got)
	}
	s.Active = true
	if err := f.d.SaveSettings(ctx, s); err != nil {
		t.Fatal(err)
	}
	f.sweeps(t, 2)
	if got := l.got(); len(got) != 2 {
		t.Fatalf("alerts %+v, want a second one once switched on again", got)
	}
}

func TestWaitAlertWebhook(t *testing.T) {
	type post struct {
		body []byte
		sig  string
	}
	posts := make(chan post, 10)
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		posts <- post{body, r.Header.Get(alert.SignatureHeader)}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	f, l := newAlertFixture(t, 5*time.Minute, func(s *bd.Settings) { s.AlertWebhook, s.AlertSecret = srv.URL+"/alerts", "s3cret" })
	d1 := dialog(1, 1)
	d1.OpenedAt = t0
	f.open(t, d1)
	f.clock.Set(t0.Add(7*time.Minute + 500*time.Millisecond))
	f.sweeps(t, 3)
	if err := f.d.Close(); err != nil { // waits for the post
		t.Fatal(err)
	}
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	p := <-posts
	if !alert.Verify("s3cret", p.body, p.sig) {
		t.Errorf("signature %q of %s does not verify", p.sig, p.body)
	}
	want := `{"account":"shop.example","dialog":1,"waited_seconds":420.5,"threshold_seconds":300,"at":"2026-03-02T10:07:00Z"}`
	if string(p.body) != want {
		t.Errorf("body\n%s\nwant\n%s", p.body, want)
	}
	if len(l.got()) != 1 || len(l.failures()) != 0 {
		t.Errorf("alerts %+v, failures %v; want one alert, no failure", l.got(), l.failures())
	}
}

func TestWaitAlertWebhookFailureReported(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such hook", http.StatusBadRequest)
	}))
	defer srv.Close()
	f, l := newAlertFixture(t, time.Minute, func(s *bd.Settings) { s.AlertWebhook, s.AlertSecret = srv.URL, "s3cret" })
	f.open(t, dialog(1, 1))
	f.clock.Add(2 * time.Minute)
	f.sweeps(t, 1)
	if err := f.d.Close(); err != nil {
		t.Fatal(err)
	}
	fails := l.failures()
	var se *alert.StatusError
	if len(fails) != 1 || !errors.As(fails[0], &se) || se.Status != http.StatusBadRequest || se.Attempts != 1 {
		t.Fatalf("failures %v, want one 400 after one attempt", fails)
	}
	if !strings.Contains(fails[0].Error(), srv.URL) {
		t.Errorf("failure %q does not name the webhook", fails[0])
	}
}

// A webhook that does not answer delays neither the sweep nor the next
// ones; Close waits for the post in flight.
func TestWaitAlertWebhookDoesNotBlockSweep(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	answered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		answered <- struct{}{}
	}))
	defer srv.Close()
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock() // before srv.Close, also when the test fails
	f, l := newAlertFixture(t, time.Minute, func(s *bd.Settings) { s.AlertWebhook, s.AlertSecret = srv.URL, "s3cret" })
	f.open(t, dialog(1, 1))
	f.clock.Add(2 * time.Minute)
	swept := make(chan struct{})
	go func() {
		for range 3 {
			f.d.Sweep(context.Background())
		}
		close(swept)
	}()
	const guard = 10 * time.Second // only a guard against a hang
	for _, c := range []struct {
		ch   <-chan struct{}
		what string
	}{{swept, "the sweeps waited for the webhook"}, {entered, "the webhook was never called"}} {
		select {
		case <-c.ch:
		case <-time.After(guard):
			t.Fatal(c.what)
		}
	}
	unblock()
	if err := f.d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-answered:
	default:
		t.Fatal("Close returned before the post in flight ended")
	}
	if len(l.got()) != 1 || len(l.failures()) != 0 {
		t.Fatalf("alerts %+v, failures %v; want one alert, no failure", l.got(), l.failures())
	}
}
