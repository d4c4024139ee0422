package distributor_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

func (f *fixture) managerChanged(t testing.TB, m bd.Manager) {
	t.Helper()
	f.handle(t, distributor.Event{Kind: distributor.ManagerChanged, Account: acct, Manager: m})
}

func (f *fixture) message(t testing.TB, dl bd.DialogID, fromCustomer bool, id int64) {
	t.Helper()
	kind := distributor.ManagerMessage
	if fromCustomer {
		kind = distributor.CustomerMessage
	}
	f.handle(t, distributor.Event{Kind: kind, Account: acct, Dialog: bd.Dialog{ID: dl}, MessageID: id})
}

// reassignFixture: managers 1..n, capacity 3; dialogs 1 and 2 go to manager 1.
func reassignFixture(t *testing.T, mode bd.ReassignMode, n int, tune func(*bd.Settings)) *fixture {
	ids := managerIDs(n)
	s := settingsFor(ids, 3)
	s.Reassign = mode
	if tune != nil {
		tune(&s)
	}
	roster := onlineManagers(ids)
	for i := range roster[1:] {
		roster[i+1].Online = false
	}
	f := newFixture(t, s, roster)
	f.open(t, dialog(1, 1))
	f.open(t, dialog(2, 1))
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1))
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 2))
	for _, m := range roster[1:] {
		m.Online = true
		f.managerChanged(t, m)
	}
	return f
}

func TestReassignUncompletedWhenManagerGoesOffline(t *testing.T) {
	f := reassignFixture(t, bd.ReassignUncompleted, 2, nil)
	f.message(t, 2, false, 11) // manager 1 answered dialog 2: its last message is the manager's
	off := onlineManagers(managerIDs(2))[0]
	off.Online = false
	f.managerChanged(t, off)
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 1), "the customer wrote last in dialog 1: it moves")
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 2), "dialog 2 was answered last by its manager: it stays")
	require.Equal(t, bd.ManagerOf(2), f.gw.Responsible(1))
	f.checkInvariants(t, managerIDs(2), 3)

	tr, err := f.d.Recent(context.Background())
	require.NoError(t, err)
	require.Equal(t, distributor.OutcomeReassigned, tr[0].Outcome)
	require.Equal(t, bd.ManagerID(1), tr[0].Reassigned)
	require.Contains(t, tr[0].String(), "reassigned from manager 1 to manager 2")
}

func TestReassignOnlyNew(t *testing.T) {
	f := reassignFixture(t, bd.ReassignNew, 2, nil)
	f.message(t, 2, false, 11)
	f.message(t, 2, true, 12) // the customer wrote again: uncompleted, but not new
	busy := onlineManagers(managerIDs(2))[0]
	busy.Status = bd.StatusBusy // leaving "free" counts like going offline
	f.managerChanged(t, busy)
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 1), "nobody answered dialog 1: it moves")
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 2), "dialog 2 was answered: it stays")
}

func TestReassignOffKeepsDialogs(t *testing.T) {
	f := reassignFixture(t, bd.ReassignOff, 2, nil)
	off := onlineManagers(managerIDs(2))[0]
	off.Online = false
	f.managerChanged(t, off)
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1))
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 2))
}

func TestReassignRespectsCapacityAndNeverBouncesBack(t *testing.T) {
	f := reassignFixture(t, bd.ReassignUncompleted, 2, func(s *bd.Settings) { s.Capacity = map[bd.ManagerID]int{2: 1} })
	ms := onlineManagers(managerIDs(2))
	ms[0].Online = false
	f.managerChanged(t, ms[0])
	// Manager 2 takes one dialog (capacity 1); the other stays with manager 1.
	moved, stayed := 0, 0
	for _, id := range []bd.DialogID{1, 2} {
		switch f.responsible(t, id) {
		case bd.ManagerOf(2):
			moved++
		case bd.ManagerOf(1):
			stayed++
		}
	}
	require.Equal(t, 1, moved)
	require.Equal(t, 1, stayed)
	f.checkInvariants(t, managerIDs(2), 3)
	tr, err := f.d.Recent(context.Background())
	require.NoError(t, err)
	require.Equal(t, distributor.OutcomeStays, tr[0].Outcome)

	// Manager 1 is back; manager 2 leaves: its dialog may not go back to 1.
	ms[0].Online = true
	f.managerChanged(t, ms[0])
	ms[1].Online = false
	f.managerChanged(t, ms[1])
	for _, id := range []bd.DialogID{1, 2} {
		if r := f.responsible(t, id); r == bd.ManagerOf(2) {
			tr, err := f.d.Recent(context.Background())
			require.NoError(t, err)
			require.Equal(t, distributor.OutcomeStays, tr[0].Outcome)
			require.Equal(t, []bd.ManagerID{1}, tr[0].RemovedBy(distributor.FilterLeft))
			return
		}
	}
	t.Fatal("the dialog on manager 2 bounced back to manager 1")
}

func TestPresenceGrace(t *testing.T) {
	f := reassignFixture(t, bd.ReassignUncompleted, 2, func(s *bd.Settings) { s.PresenceGrace = 2 * time.Minute })
	ctx := context.Background()
	m := onlineManagers(managerIDs(2))[0]

	m.Online = false
	f.managerChanged(t, m)
	f.clock.Add(time.Minute)
	m.Online = true
	f.managerChanged(t, m) // a flap shorter than the grace
	f.clock.Add(5 * time.Minute)
	f.d.Sweep(ctx)
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1), "a short flap reassigns nothing")

	m.Online = false
	f.managerChanged(t, m)
	f.clock.Add(time.Minute)
	f.d.Sweep(ctx)
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1), "still within the grace")
	f.clock.Add(90 * time.Second)
	f.d.Sweep(ctx)
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 1), "the grace is over")
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 2))
}

func TestReassignWhenNobodyAnswers(t *testing.T) {
	f := reassignFixture(t, bd.ReassignUncompleted, 2, func(s *bd.Settings) { s.ReassignAfter = 5 * time.Minute })
	ctx := context.Background()
	f.message(t, 2, false, 21) // answered in time
	f.clock.Add(4 * time.Minute)
	f.d.Sweep(ctx)
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1))
	f.clock.Add(2 * time.Minute)
	f.d.Sweep(ctx)
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 1), "no answer within 5 minutes: dialog 1 moves")
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 2), "dialog 2 was answered")
	tr, err := f.d.Recent(context.Background())
	require.NoError(t, err)
	require.Contains(t, tr[0].Why, "no answer within 5m0s")
}

func TestRosterRefreshReassignsManagersWhoLeft(t *testing.T) {
	f := reassignFixture(t, bd.ReassignUncompleted, 2, nil)
	roster := onlineManagers(managerIDs(2))
	roster[0].Online = false // learnt from a re-read after a reconnect, not from an event
	require.NoError(t, f.d.SetRoster(context.Background(), roster))
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 1))
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 2))
}

// A move MG refuses leaves the dialog with its manager (who still has room),
// and the move is tried again.
func TestRefusedMoveGoesBackToTheManager(t *testing.T) {
	f := reassignFixture(t, bd.ReassignUncompleted, 2, nil)
	f.gw.FailNext(1, errors.New("mg: 409 conflict"))
	off := onlineManagers(managerIDs(2))[0]
	off.Online = false
	f.managerChanged(t, off)
	// The first move of a dialog was refused and given back; its retry went through.
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 1))
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 2))
	require.Equal(t, 2, f.checkInvariants(t, managerIDs(2), 3))
	tr, err := f.d.Recent(context.Background())
	require.NoError(t, err)
	moved := 0
	for _, x := range tr {
		if x.Outcome == distributor.OutcomeQueued {
			t.Fatalf("a refused move queued dialog %d although its manager had room", x.Dialog)
		}
		if x.Outcome == distributor.OutcomeReassigned {
			moved++
		}
	}
	require.Equal(t, 2, moved)
}

// fillingGateway refuses the first assignment it sees, after filling
// manager 1 up behind the distributor's back (as a person would in MG).
type fillingGateway struct {
	distributortest.Gateway
	st   store.Store
	once sync.Once
}

func (g *fillingGateway) Assign(ctx context.Context, acc bd.AccountID, d bd.DialogID, to bd.Responsible) error {
	refused := false
	g.once.Do(func() {
		for id := bd.DialogID(90); id < 93; id++ {
			if _, err := g.st.Record(ctx, store.Assignment{Account: acc, Dialog: id, To: bd.ManagerOf(1), At: t0}); err != nil {
				panic(err)
			}
		}
		refused = true
	})
	if refused {
		return errors.New("mg: 409 conflict")
	}
	return g.Gateway.Assign(ctx, acc, d, to)
}

// A move MG refuses while the old manager filled up puts the dialog in the
// queue instead of over the manager's capacity.
func TestRefusedMoveQueuesWhenTheManagerIsFull(t *testing.T) {
	ids := managerIDs(2)
	s := settingsFor(ids, 3)
	s.Reassign = bd.ReassignUncompleted
	st := memory.New()
	gw := &fillingGateway{st: st}
	require.NoError(t, st.SaveAccount(context.Background(), bd.Account{ID: acct, Settings: s}))
	d, err := distributor.New(acct, st, gw, distributor.WithWork(store.WorkOptions{Workers: 1}))
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	ctx := context.Background()
	roster := onlineManagers(ids)
	roster[1].Online = false
	require.NoError(t, d.SetRoster(ctx, roster))
	// Dialog 1 is reserved for manager 1, and MG refuses: nobody holds
	// it; record it to manager 1 as MG would have it.
	_, err = st.Record(ctx, store.Assignment{Account: acct, Dialog: 1, To: bd.ManagerOf(1), At: t0})
	require.NoError(t, err)
	roster[1].Online = true
	require.NoError(t, d.SetRoster(ctx, roster))
	roster[0].Online = false
	require.NoError(t, d.Handle(ctx, distributor.Event{Kind: distributor.ManagerChanged, Account: acct, Manager: roster[0]}))
	flush, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, d.Flush(flush))
	loads, err := st.Loads(ctx, acct, []bd.ManagerID{1}, nil)
	require.NoError(t, err)
	require.LessOrEqual(t, loads[0].Open, 3, "manager 1 over capacity")
	tr, err := d.Recent(ctx)
	require.NoError(t, err)
	queued := false
	for _, x := range tr {
		if x.Dialog == 1 && x.Outcome == distributor.OutcomeQueued && x.Reassigned == 1 {
			queued = true
		}
	}
	require.True(t, queued, "the refused move of dialog 1 was queued: %v", tr)
	r, err := st.Responsible(ctx, acct, 1)
	require.NoError(t, err)
	require.Equal(t, bd.ManagerOf(2), r, "the queued dialog went to the manager with room")
}
