package distributor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
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

	tr, err := f.d.Recent(context.Background(), acct)
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
	tr, err := f.d.Recent(context.Background(), acct)
	require.NoError(t, err)
	require.Equal(t, distributor.OutcomeStays, tr[0].Outcome)

	// Manager 1 is back; manager 2 leaves: its dialog may not go back to 1.
	ms[0].Online = true
	f.managerChanged(t, ms[0])
	ms[1].Online = false
	f.managerChanged(t, ms[1])
	for _, id := range []bd.DialogID{1, 2} {
		if r := f.responsible(t, id); r == bd.ManagerOf(2) {
			tr, err := f.d.Recent(context.Background(), acct)
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
	tr, err := f.d.Recent(context.Background(), acct)
	require.NoError(t, err)
	require.Contains(t, tr[0].Why, "no answer within 5m0s")
}

func TestRosterRefreshReassignsManagersWhoLeft(t *testing.T) {
	f := reassignFixture(t, bd.ReassignUncompleted, 2, nil)
	roster := onlineManagers(managerIDs(2))
	roster[0].Online = false // learnt from a re-read after a reconnect, not from an event
	require.NoError(t, f.d.SetRoster(context.Background(), acct, roster))
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 1))
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 2))
}
