package distributor_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/reply/replytest"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

// busyStore is a memory store that behaves as a shared database does while
// other processes assign dialogs too: a new assignment asked not to wait
// (Assignment.NoWait) to a manager in busy is refused with store.ErrBusy,
// once per manager, and a manager in fill gets a dialog of another process
// just before their next assignment (which then finds them full). It
// records every assignment it is asked for.
type busyStore struct {
	*memory.Store
	mu    sync.Mutex
	busy  map[bd.ManagerID]bool
	fill  map[bd.ManagerID]bool
	calls []store.Assignment
}

func newBusyStore() *busyStore {
	return &busyStore{Store: memory.New(), busy: map[bd.ManagerID]bool{}, fill: map[bd.ManagerID]bool{}}
}

func (s *busyStore) Assign(ctx context.Context, a store.Assignment) error {
	m, _ := a.To.Manager()
	s.mu.Lock()
	s.calls = append(s.calls, a)
	refuse := a.NoWait && s.busy[m]
	delete(s.busy, m)
	fill := !refuse && s.fill[m]
	delete(s.fill, m)
	s.mu.Unlock()
	if refuse {
		return fmt.Errorf("assign dialog %d: %w: %s", a.Dialog, store.ErrBusy, a.To)
	}
	if fill {
		for i := range a.Capacity {
			other := store.Assignment{Account: a.Account, Dialog: bd.DialogID(900 + i), To: a.To, Capacity: a.Capacity, At: a.At}
			if err := s.Store.Assign(ctx, other); err != nil {
				return err
			}
		}
	}
	return s.Store.Assign(ctx, a)
}

func (s *busyStore) setBusy(ms ...bd.ManagerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		s.busy[m] = true
	}
}

func (s *busyStore) setFill(ms ...bd.ManagerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range ms {
		s.fill[m] = true
	}
}

// assignmentsOf returns who the store was asked to give the dialog to, and
// whether each time without waiting.
func (s *busyStore) assignmentsOf(dl bd.DialogID) (to []bd.Responsible, noWait []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.calls {
		if a.Dialog == dl {
			to, noWait = append(to, a.To), append(noWait, a.NoWait)
		}
	}
	return to, noWait
}

// newBusyFixture is newFixture over a busyStore.
func newBusyFixture(t *testing.T, st *busyStore, s bd.Settings, roster []bd.Manager) *fixture {
	t.Helper()
	f := &fixture{st: st.Store, gw: &distributortest.Gateway{}, rec: &replytest.Recorder{}, clock: &clock{now: t0}}
	ctx := context.Background()
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Domain: "https://shop.example", Settings: s}); err != nil {
		t.Fatal(err)
	}
	d, err := distributor.New(acct, st, f.gw, distributor.WithReplier(f.rec), distributor.WithClock(f.clock.Now))
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

// traceOf returns the newest trace of the dialog.
func (f *fixture) traceOf(t *testing.T, dl bd.DialogID) distributor.Trace {
	t.Helper()
	f.flush(t)
	trs, err := f.d.Recent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trs {
		if tr.Dialog == dl {
			return tr
		}
	}
	t.Fatalf("no trace of dialog %d among %d", dl, len(trs))
	return distributor.Trace{}
}

// A manager another assignment is being made to at that instant is passed
// over: the dialog goes to the next choice at once, and the trace says so.
func TestBusyManagerIsPassedOver(t *testing.T) {
	ids := managerIDs(3)
	st := newBusyStore()
	f := newBusyFixture(t, st, settingsFor(ids, 5), onlineManagers(ids))
	st.setBusy(1) // round robin's first choice: never assigned, lowest id
	f.open(t, dialog(1, 1))

	if got, want := f.responsible(t, 1), bd.ManagerOf(2); got != want {
		t.Fatalf("the next in turn gets the dialog: got %v, want %v", got, want)
	}
	to, noWait := st.assignmentsOf(1)
	if got, want := to, []bd.Responsible{bd.ManagerOf(1), bd.ManagerOf(2)}; !slices.Equal(got, want) {
		t.Fatalf("to = %v, want %v", got, want)
	}
	if got, want := noWait, []bool{true, true}; !slices.Equal(got, want) {
		t.Fatalf("a new assignment with others to choose from does not wait: got %v, want %v", got, want)
	}
	tr := f.traceOf(t, 1)
	if got, want := tr.Outcome, distributor.OutcomeAssigned; got != want {
		t.Fatalf("tr.Outcome = %v, want %v", got, want)
	}
	if got, want := tr.Passed, []bd.ManagerID{1}; !slices.Equal(got, want) {
		t.Fatalf("tr.Passed = %v, want %v", got, want)
	}
	if got := tr.Retries; got != 0 {
		t.Fatalf("a busy manager is no candidate lost to capacity: got %v, want 0", got)
	}
	if got := tr.String(); !strings.Contains(got, "passed over [1]: another dialog was being assigned to them at that instant") {
		t.Fatalf("tr.String() = %q, want it to contain %q", got, "passed over [1]: another dialog was being assigned to them at that instant")
	}
	if got, want := f.checkInvariants(t, ids, 5), 1; got != want {
		t.Fatalf("the busy manager got nothing: got %v, want %v", got, want)
	}
	if got := f.queueLen(t); got != 0 {
		t.Fatalf("f.queueLen(t) = %v, want 0", got)
	}

	// Free again, manager 1 is the next in turn.
	f.open(t, dialog(2, 1))
	if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
	if got := f.traceOf(t, 2).Passed; len(got) != 0 {
		t.Fatalf("f.traceOf(t, 2).Passed = %v, want empty", got)
	}
}

// When the managers passed over are the only ones left, the dialog does not
// wait in the queue: it is assigned to one of them, waiting for the other
// assignment to finish.
func TestOnlyBusyManagersLeftAreWaitedFor(t *testing.T) {
	t.Run("alone", func(t *testing.T) {
		ids := managerIDs(1)
		st := newBusyStore()
		f := newBusyFixture(t, st, settingsFor(ids, 1), onlineManagers(ids))
		st.setBusy(1)
		f.open(t, dialog(1, 1))
		if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
			t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
		}
		_, noWait := st.assignmentsOf(1)
		if got, want := noWait, []bool{false}; !slices.Equal(got, want) {
			t.Fatalf("the only candidate is waited for: got %v, want %v", got, want)
		}
		if got := f.traceOf(t, 1).Passed; len(got) != 0 {
			t.Fatalf("f.traceOf(t, 1).Passed = %v, want empty", got)
		}
		if got := f.queueLen(t); got != 0 {
			t.Fatalf("f.queueLen(t) = %v, want 0", got)
		}
	})
	t.Run("the others filled up", func(t *testing.T) {
		ids := managerIDs(2)
		st := newBusyStore()
		f := newBusyFixture(t, st, settingsFor(ids, 1), onlineManagers(ids))
		st.setBusy(1)
		st.setFill(2) // another process gives manager 2 their last free slot
		f.open(t, dialog(1, 1))

		if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
			t.Fatalf("the busy manager is waited for rather than the dialog queued: got %v, want %v", got, want)
		}
		to, noWait := st.assignmentsOf(1)
		if got, want := to, []bd.Responsible{bd.ManagerOf(1), bd.ManagerOf(2), bd.ManagerOf(1)}; !slices.Equal(got, want) {
			t.Fatalf("to = %v, want %v", got, want)
		}
		if got, want := noWait, []bool{true, false, false}; !slices.Equal(got, want) {
			t.Fatalf("noWait = %v, want %v", got, want)
		}
		tr := f.traceOf(t, 1)
		if got, want := tr.Outcome, distributor.OutcomeAssigned; got != want {
			t.Fatalf("tr.Outcome = %v, want %v", got, want)
		}
		if got, want := tr.Passed, []bd.ManagerID{1}; !slices.Equal(got, want) {
			t.Fatalf("tr.Passed = %v, want %v", got, want)
		}
		if got, want := tr.Retries, 1; got != want {
			t.Fatalf("tr.Retries = %v, want %v", got, want)
		}
		if got, want := tr.RemovedBy(distributor.FilterCapacity), []bd.ManagerID{2}; !slices.Equal(got, want) {
			t.Fatalf("tr.RemovedBy(distributor.FilterCapacity) = %v, want %v", got, want)
		}
		if got := f.queueLen(t); got != 0 {
			t.Fatalf("f.queueLen(t) = %v, want 0", got)
		}
		if got, want := f.rec.Count(1, bd.ManagerAssigned), 1; got != want {
			t.Fatalf("f.rec.Count(1, bd.ManagerAssigned) = %v, want %v", got, want)
		}
		if got := f.rec.Count(1, bd.AllManagersBusy); got != 0 {
			t.Fatalf("f.rec.Count(1, bd.AllManagersBusy) = %v, want 0", got)
		}
	})
}

// A returning customer's last manager is waited for, not passed over.
func TestLastManagerIsNotPassedOver(t *testing.T) {
	ids := managerIDs(2)
	s := settingsFor(ids, 5)
	s.Sticky = true
	st := newBusyStore()
	f := newBusyFixture(t, st, s, onlineManagers(ids))
	first := dialog(1, 1)
	f.open(t, first)
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	f.close(t, 1)

	st.setBusy(1, 2)
	again := dialog(2, 1)
	again.Customer = first.Customer
	f.open(t, again)
	if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
	to, noWait := st.assignmentsOf(2)
	if got, want := to, []bd.Responsible{bd.ManagerOf(1)}; !slices.Equal(got, want) {
		t.Fatalf("to = %v, want %v", got, want)
	}
	if got, want := noWait, []bool{false}; !slices.Equal(got, want) {
		t.Fatalf("noWait = %v, want %v", got, want)
	}
	tr := f.traceOf(t, 2)
	if got, want := tr.LastManager, bd.ManagerID(1); got != want {
		t.Fatalf("tr.LastManager = %v, want %v", got, want)
	}
	if got := tr.Passed; len(got) != 0 {
		t.Fatalf("tr.Passed = %v, want empty", got)
	}
}
