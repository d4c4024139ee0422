package distributor_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/reply/replytest"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

const acct bd.AccountID = "shop.example"

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // a Monday

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func replies() map[bd.Situation]string {
	return map[bd.Situation]string{
		bd.DialogReceived:      "Hello {{.Customer}}, we got your message.",
		bd.ManagerAssigned:     "{{.Manager}} will answer you.",
		bd.NoManagerOnline:     "Nobody is online; we will answer soon.",
		bd.AllManagersBusy:     "All managers are busy; please wait.",
		bd.OutsideWorkingHours: "We are closed now.",
	}
}

func settingsFor(ids []bd.ManagerID, capacity int) bd.Settings {
	return bd.Settings{
		Active:          true,
		Managers:        ids,
		DefaultCapacity: capacity,
		Availability:    bd.StatusAndOnline,
		Reassign:        bd.ReassignOff,
		Replies:         replies(),
		DefaultRule:     bd.ChannelRule{Target: bd.ToManagers},
	}
}

func managerIDs(n int) []bd.ManagerID {
	ids := make([]bd.ManagerID, n)
	for i := range ids {
		ids[i] = bd.ManagerID(i + 1)
	}
	return ids
}

func onlineManagers(ids []bd.ManagerID) []bd.Manager {
	ms := make([]bd.Manager, len(ids))
	for i, id := range ids {
		ms[i] = bd.Manager{ID: id, FirstName: "Manager", LastName: id.String(), Status: bd.StatusFree, Online: true, Active: true}
	}
	return ms
}

type fixture struct {
	d     *distributor.Distributor
	st    *memory.Store
	gw    *distributortest.Gateway
	rec   *replytest.Recorder
	clock *clock
}

func newFixture(t testing.TB, s bd.Settings, roster []bd.Manager, opts ...distributor.Option) *fixture {
	t.Helper()
	return newFixtureOn(t, memory.New(), s, roster, opts...)
}

// newFixtureOn is newFixture over the given store.
func newFixtureOn(t testing.TB, st *memory.Store, s bd.Settings, roster []bd.Manager, opts ...distributor.Option) *fixture {
	t.Helper()
	f := &fixture{st: st, gw: &distributortest.Gateway{}, rec: &replytest.Recorder{}, clock: &clock{now: t0}}
	ctx := context.Background()
	if err := f.st.SaveAccount(ctx, bd.Account{ID: acct, Domain: "https://shop.example", Settings: s}); err != nil {
		t.Fatal(err)
	}
	opts = append([]distributor.Option{distributor.WithReplier(f.rec), distributor.WithClock(f.clock.Now)}, opts...)
	d, err := distributor.New(acct, f.st, f.gw, opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if err := d.SetRoster(ctx, roster); err != nil {
		t.Fatal(err)
	}
	f.flush(t)
	return f
}

// flush waits until the distributor's workers did all the work accepted so
// far.
func (f *fixture) flush(t testing.TB) {
	t.Helper()
	flushDistributor(t, f.d, "the distributor's jobs did not finish")
}

// flushDistributor waits until d's workers did all the work accepted so
// far; after 10 s it fails the test, saying why first.
func flushDistributor(t testing.TB, d *distributor.Distributor, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatalf("%s: %v", why, err)
	}
}

// handle hands ev to the distributor and waits for its work.
func (f *fixture) handle(t testing.TB, ev distributor.Event) {
	t.Helper()
	if err := f.d.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	f.flush(t)
}

func dialog(id int, channel bd.ChannelID) bd.Dialog {
	return bd.Dialog{
		Account:  acct,
		ID:       bd.DialogID(id),
		Chat:     bd.ChatID(1000 + id),
		Channel:  channel,
		Customer: bd.Customer{ID: bd.CustomerID(5000 + id), FirstName: "Customer", LastName: "No" + bd.DialogID(id).String()},
		OpenedAt: t0.Add(time.Duration(id) * time.Millisecond),
	}
}

func (f *fixture) open(t testing.TB, dl bd.Dialog) {
	t.Helper()
	f.handle(t, distributor.Event{Kind: distributor.DialogOpened, Account: dl.Account, Dialog: dl})
}

func (f *fixture) close(t testing.TB, id bd.DialogID) {
	t.Helper()
	f.handle(t, distributor.Event{Kind: distributor.DialogClosed, Account: acct, Dialog: bd.Dialog{ID: id}})
}

func (f *fixture) responsible(t testing.TB, id bd.DialogID) bd.Responsible {
	t.Helper()
	f.flush(t)
	r, err := f.st.Responsible(context.Background(), acct, id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Responsible(%d): %v, want store.ErrNotFound", id, err)
		}
	}
	return r
}

func (f *fixture) queueLen(t testing.TB) int {
	t.Helper()
	f.flush(t)
	n, err := f.st.QueueLen(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkInvariants asserts that no manager holds more than capacity, that
// the store's loads equal the dialogs each manager holds, and that MG (the
// fake gateway) agrees with the store on every held dialog.
func (f *fixture) checkInvariants(t testing.TB, ids []bd.ManagerID, capacity int) (held int) {
	t.Helper()
	f.flush(t)
	ctx := context.Background()
	loads, err := f.st.Loads(ctx, acct, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[bd.DialogID]bd.ManagerID{}
	for i, m := range ids {
		ds, err := f.st.DialogsOf(ctx, acct, m)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(ds); got > capacity {
			t.Fatalf("manager %d over capacity: got %v, want <= %v", m, got, capacity)
		}
		if got, want := loads[i].Open, len(ds); got != want {
			t.Fatalf("load of manager %d: got %v, want %v", m, got, want)
		}
		for _, dl := range ds {
			other, dup := seen[dl]
			if dup {
				t.Fatalf("dialog %d held by managers %d and %d", dl, other, m)
			}
			seen[dl] = m
			if got, want := f.gw.Responsible(dl), bd.ManagerOf(m); got != want {
				t.Fatalf("MG responsible of dialog %d: got %v, want %v", dl, got, want)
			}
		}
		held += len(ds)
	}
	return held
}
