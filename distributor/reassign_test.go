package distributor_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

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
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
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
	if got, want := f.responsible(t, 1), bd.ManagerOf(2); got != want {
		t.Fatalf("the customer wrote last in dialog 1: it moves: got %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
		t.Fatalf("dialog 2 was answered last by its manager: it stays: got %v, want %v", got, want)
	}
	if got, want := f.gw.Responsible(1), bd.ManagerOf(2); got != want {
		t.Fatalf("f.gw.Responsible(1) = %v, want %v", got, want)
	}
	f.checkInvariants(t, managerIDs(2), 3)

	tr, err := f.d.Recent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr[0].Outcome, distributor.OutcomeReassigned; got != want {
		t.Fatalf("tr[0].Outcome = %v, want %v", got, want)
	}
	if got, want := tr[0].Reassigned, bd.ManagerID(1); got != want {
		t.Fatalf("tr[0].Reassigned = %v, want %v", got, want)
	}
	if got := tr[0].String(); !strings.Contains(got, "reassigned from manager 1 to manager 2") {
		t.Fatalf("tr[0].String() = %q, want it to contain %q", got, "reassigned from manager 1 to manager 2")
	}
}

func TestReassignOnlyNew(t *testing.T) {
	f := reassignFixture(t, bd.ReassignNew, 2, nil)
	f.message(t, 2, false, 11)
	f.message(t, 2, true, 12) // the customer wrote again: uncompleted, but not new
	busy := onlineManagers(managerIDs(2))[0]
	busy.Status = bd.StatusBusy // leaving "free" counts like going offline
	f.managerChanged(t, busy)
	if got, want := f.responsible(t, 1), bd.ManagerOf(2); got != want {
		t.Fatalf("nobody answered dialog 1: it moves: got %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
		t.Fatalf("dialog 2 was answered: it stays: got %v, want %v", got, want)
	}
}

func TestReassignOffKeepsDialogs(t *testing.T) {
	f := reassignFixture(t, bd.ReassignOff, 2, nil)
	off := onlineManagers(managerIDs(2))[0]
	off.Online = false
	f.managerChanged(t, off)
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
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
	if moved != 1 {
		t.Fatalf("moved = %v, want 1", moved)
	}
	if stayed != 1 {
		t.Fatalf("stayed = %v, want 1", stayed)
	}
	f.checkInvariants(t, managerIDs(2), 3)
	tr, err := f.d.Recent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The two moves are jobs of their own, worked in either order: the
	// latest trace of each dialog says which moved and which stayed.
	outcomes := map[distributor.Outcome]int{}
	seen := map[bd.DialogID]bool{}
	for _, x := range tr {
		if (x.Dialog == 1 || x.Dialog == 2) && !seen[x.Dialog] {
			seen[x.Dialog] = true
			outcomes[x.Outcome]++
		}
	}
	if outcomes[distributor.OutcomeStays] != 1 || outcomes[distributor.OutcomeReassigned] != 1 {
		t.Fatalf("latest outcomes of dialogs 1 and 2: %v, want one %s and one %s", outcomes, distributor.OutcomeStays, distributor.OutcomeReassigned)
	}

	// Manager 1 is back; manager 2 leaves: its dialog may not go back to 1.
	ms[0].Online = true
	f.managerChanged(t, ms[0])
	ms[1].Online = false
	f.managerChanged(t, ms[1])
	for _, id := range []bd.DialogID{1, 2} {
		if r := f.responsible(t, id); r == bd.ManagerOf(2) {
			tr, err := f.d.Recent(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tr[0].Outcome, distributor.OutcomeStays; got != want {
				t.Fatalf("tr[0].Outcome = %v, want %v", got, want)
			}
			if got, want := tr[0].RemovedBy(distributor.FilterLeft), []bd.ManagerID{1}; !slices.Equal(got, want) {
				t.Fatalf("tr[0].RemovedBy(distributor.FilterLeft) = %v, want %v", got, want)
			}
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
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("a short flap reassigns nothing: got %v, want %v", got, want)
	}

	m.Online = false
	f.managerChanged(t, m)
	f.clock.Add(time.Minute)
	f.d.Sweep(ctx)
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("still within the grace: got %v, want %v", got, want)
	}
	f.clock.Add(90 * time.Second)
	f.d.Sweep(ctx)
	if got, want := f.responsible(t, 1), bd.ManagerOf(2); got != want {
		t.Fatalf("the grace is over: got %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 2), bd.ManagerOf(2); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
}

func TestReassignWhenNobodyAnswers(t *testing.T) {
	f := reassignFixture(t, bd.ReassignUncompleted, 2, func(s *bd.Settings) { s.ReassignAfter = 5 * time.Minute })
	ctx := context.Background()
	f.message(t, 2, false, 21) // answered in time
	f.clock.Add(4 * time.Minute)
	f.d.Sweep(ctx)
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	f.clock.Add(2 * time.Minute)
	f.d.Sweep(ctx)
	if got, want := f.responsible(t, 1), bd.ManagerOf(2); got != want {
		t.Fatalf("no answer within 5 minutes: dialog 1 moves: got %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
		t.Fatalf("dialog 2 was answered: got %v, want %v", got, want)
	}
	tr, err := f.d.Recent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := tr[0].Why; !strings.Contains(got, "no answer within 5m0s") {
		t.Fatalf("tr[0].Why = %q, want it to contain %q", got, "no answer within 5m0s")
	}
}

func TestRosterRefreshReassignsManagersWhoLeft(t *testing.T) {
	f := reassignFixture(t, bd.ReassignUncompleted, 2, nil)
	roster := onlineManagers(managerIDs(2))
	roster[0].Online = false // learnt from a re-read after a reconnect, not from an event
	if err := f.d.SetRoster(context.Background(), roster); err != nil {
		t.Fatal(err)
	}
	if got, want := f.responsible(t, 1), bd.ManagerOf(2); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 2), bd.ManagerOf(2); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
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
	if got, want := f.responsible(t, 1), bd.ManagerOf(2); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 2), bd.ManagerOf(2); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
	if got, want := f.checkInvariants(t, managerIDs(2), 3), 2; got != want {
		t.Fatalf("f.checkInvariants(t, managerIDs(2), 3) = %v, want %v", got, want)
	}
	tr, err := f.d.Recent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, x := range tr {
		if x.Outcome == distributor.OutcomeQueued {
			t.Fatalf("a refused move queued dialog %d although its manager had room", x.Dialog)
		}
		if x.Outcome == distributor.OutcomeReassigned {
			moved++
		}
	}
	if moved != 2 {
		t.Fatalf("moved = %v, want 2", moved)
	}
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
	// On synctest's fake clock the retry a second after MG's refusal takes no
	// real time.
	synctest.Test(t, func(t *testing.T) {
		ids := managerIDs(2)
		s := settingsFor(ids, 3)
		s.Reassign = bd.ReassignUncompleted
		st := memory.New()
		gw := &fillingGateway{st: st}
		if err := st.SaveAccount(context.Background(), bd.Account{ID: acct, Settings: s}); err != nil {
			t.Fatal(err)
		}
		d, err := distributor.New(acct, st, gw, distributor.WithWork(store.WorkOptions{Workers: 1}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		ctx := context.Background()
		roster := onlineManagers(ids)
		roster[1].Online = false
		if err := d.SetRoster(ctx, roster); err != nil {
			t.Fatal(err)
		}
		// Dialog 1 is reserved for manager 1, and MG refuses: nobody holds
		// it; record it to manager 1 as MG would have it.
		_, err = st.Record(ctx, store.Assignment{Account: acct, Dialog: 1, To: bd.ManagerOf(1), At: t0})
		if err != nil {
			t.Fatal(err)
		}
		roster[1].Online = true
		if err := d.SetRoster(ctx, roster); err != nil {
			t.Fatal(err)
		}
		roster[0].Online = false
		if err := d.Handle(ctx, distributor.Event{Kind: distributor.ManagerChanged, Account: acct, Manager: roster[0]}); err != nil {
			t.Fatal(err)
		}
		flushDistributor(t, d, "the distributor's jobs did not finish")
		loads, err := st.Loads(ctx, acct, []bd.ManagerID{1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := loads[0].Open; got > 3 {
			t.Fatalf("manager 1 over capacity: got %v, want <= 3", got)
		}
		tr, err := d.Recent(ctx)
		if err != nil {
			t.Fatal(err)
		}
		queued := false
		for _, x := range tr {
			if x.Dialog == 1 && x.Outcome == distributor.OutcomeQueued && x.Reassigned == 1 {
				queued = true
			}
		}
		if !queued {
			t.Fatalf("the refused move of dialog 1 was queued: %v", tr)
		}
		r, err := st.Responsible(ctx, acct, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r != bd.ManagerOf(2) {
			t.Fatalf("the queued dialog went to the manager with room: got %v, want %v", r, bd.ManagerOf(2))
		}
	})
}
