package distributor_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	require.NoError(t, f.st.SaveAccount(ctx, bd.Account{ID: acct, Domain: "https://shop.example", Settings: s}))
	opts = append([]distributor.Option{distributor.WithReplier(f.rec), distributor.WithClock(f.clock.Now)}, opts...)
	d, err := distributor.New(acct, f.st, f.gw, opts...)
	require.NoError(t, err)
	f.d = d
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	require.NoError(t, d.SetRoster(ctx, roster))
	f.flush(t)
	return f
}

// flush waits until the distributor's workers did all the work accepted so
// far.
func (f *fixture) flush(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, f.d.Flush(ctx), "the distributor's jobs did not finish")
}

// handle hands ev to the distributor and waits for its work.
func (f *fixture) handle(t testing.TB, ev distributor.Event) {
	t.Helper()
	require.NoError(t, f.d.Handle(context.Background(), ev))
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
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	return r
}

func (f *fixture) queueLen(t testing.TB) int {
	t.Helper()
	f.flush(t)
	n, err := f.st.QueueLen(context.Background(), acct)
	require.NoError(t, err)
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
	require.NoError(t, err)
	seen := map[bd.DialogID]bd.ManagerID{}
	for i, m := range ids {
		ds, err := f.st.DialogsOf(ctx, acct, m)
		require.NoError(t, err)
		require.LessOrEqual(t, len(ds), capacity, "manager %d over capacity", m)
		require.Equal(t, len(ds), loads[i].Open, "load of manager %d", m)
		for _, dl := range ds {
			other, dup := seen[dl]
			require.False(t, dup, "dialog %d held by managers %d and %d", dl, other, m)
			seen[dl] = m
			require.Equal(t, bd.ManagerOf(m), f.gw.Responsible(dl), "MG responsible of dialog %d", dl)
		}
		held += len(ds)
	}
	return held
}
