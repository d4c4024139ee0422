package mgsource_test

import (
	"context"
	"errors"
	"github.com/botdistributor/botdistributor/internal/changes"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
)

func newMG(t *testing.T) *sandbox.MG {
	t.Helper()
	m, err := sandbox.NewMG(sandbox.WithSeed(11))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func newClient(t *testing.T, m *sandbox.MG) *mg.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := mg.New(m.URL(), m.BotToken(),
		mg.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}),
		mg.WithRetry(mg.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}),
		mg.WithLimiter(rate.NewLimiter(rate.Inf, 0)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func channel(t *testing.T, m *sandbox.MG, typ, name string) bd.ChannelID {
	t.Helper()
	id, err := m.AddChannel(testCtx(t), typ, name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func customer(t *testing.T, m *sandbox.MG, ch bd.ChannelID, ext, text string) sandbox.MGWritten {
	t.Helper()
	w, err := m.CustomerWrites(testCtx(t), sandbox.MGCustomerMessage{
		Channel: ch, CustomerExternalID: ext, FirstName: "Customer", LastName: ext, Phone: "+7900" + ext, Text: text,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// watch lets test callbacks report that something changed.
type watch = changes.Watch

func newWatch() *watch { return changes.NewWatch() }

// waitUntil fails the test unless cond becomes true; it re-checks cond
// whenever the sandbox or the watch reports a change (either may be nil).
func waitUntil(t *testing.T, what string, m *sandbox.MG, w *watch, cond func() bool) {
	t.Helper()
	var sources []changes.Source
	if m != nil {
		sources = append(sources, m)
	}
	if w != nil {
		sources = append(sources, w)
	}
	changes.Await(t, what, 60*time.Second, cond, sources...)
}

// fakeTarget records what a Source feeds it.
type fakeTarget struct {
	mu      sync.Mutex
	refuse  int // Handle calls still to refuse, as a target whose store is down
	refused int
	events  []distributor.Event
	rosters [][]bd.Manager
	resyncs [][]distributor.OpenDialog
	w       *watch
}

func newFakeTarget() *fakeTarget { return &fakeTarget{w: newWatch()} }

func (f *fakeTarget) Handle(_ context.Context, ev distributor.Event) error {
	f.mu.Lock()
	if f.refuse > 0 {
		f.refuse--
		f.refused++
		f.mu.Unlock()
		return errors.New("store: connection refused")
	}
	f.events = append(f.events, ev)
	f.mu.Unlock()
	f.w.Poke()
	return nil
}

func (f *fakeTarget) SetRoster(_ context.Context, ms []bd.Manager) error {
	f.mu.Lock()
	f.rosters = append(f.rosters, ms)
	f.mu.Unlock()
	f.w.Poke()
	return nil
}

func (f *fakeTarget) Resync(_ context.Context, open []distributor.OpenDialog) error {
	f.mu.Lock()
	f.resyncs = append(f.resyncs, open)
	f.mu.Unlock()
	f.w.Poke()
	return nil
}

func (f *fakeTarget) snapshot() (events []distributor.Event, rosters [][]bd.Manager, resyncs [][]distributor.OpenDialog) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]distributor.Event(nil), f.events...), append([][]bd.Manager(nil), f.rosters...), append([][]distributor.OpenDialog(nil), f.resyncs...)
}

// runSource runs src until the test ends, and returns a stop function
// that returns Run's error.
func runSource(t *testing.T, run func(context.Context) error) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after its context was cancelled")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}
