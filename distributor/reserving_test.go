package distributor_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

// holdingStore is a memory store whose first assignment waits until the
// test releases it, as a slow commit would; it records every assignment
// it is asked for.
type holdingStore struct {
	*memory.Store
	held    chan store.Assignment // receives the first assignment once it waits
	release chan struct{}

	mu    sync.Mutex
	first bool
	calls []store.Assignment
}

// Contended implements store.Contended: the store stands for a shared
// database whose assignments to one manager wait for one another.
func (s *holdingStore) Contended() bool { return true }

func (s *holdingStore) Assign(ctx context.Context, a store.Assignment) error {
	s.mu.Lock()
	s.calls = append(s.calls, a)
	hold := !s.first
	s.first = true
	s.mu.Unlock()
	if hold {
		s.held <- a
		<-s.release
	}
	return s.Store.Assign(ctx, a)
}

// TestReservationInProgressIsPassedOver: two dialogs decided at the same
// moment by two workers of one process read the same loads and choose the
// same manager; the second passes that manager over while the first's
// reservation is in progress, without asking the store for them, and goes
// to the other manager at once.
func TestReservationInProgressIsPassedOver(t *testing.T) {
	ctx := context.Background()
	st := &holdingStore{Store: memory.New(), held: make(chan store.Assignment, 1), release: make(chan struct{})}
	ids := managerIDs(2)
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Domain: "https://shop.example", Settings: settingsFor(ids, 10)}); err != nil {
		t.Fatal(err)
	}
	d, err := distributor.New(acct, st, &distributortest.Gateway{}, distributor.WithWork(store.WorkOptions{Workers: 4}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if err := d.SetRoster(ctx, onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	release := sync.OnceFunc(func() { close(st.release) })
	t.Cleanup(release) // before Close, which waits for the held worker

	if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}); err != nil {
		t.Fatal(err)
	}
	first := <-st.held
	chosen, _ := first.To.Manager()
	other := ids[0]
	if other == chosen {
		other = ids[1]
	}

	// Dialog 1's reservation is still in progress.
	if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(2, 1)}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r, err := st.Responsible(ctx, acct, 2)
		if err == nil && r == bd.ManagerOf(other) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dialog 2 did not go to manager %d while manager %d was being reserved: got %v (%v), want manager %d", other, chosen, r, err, other)
		}
	}
	st.mu.Lock()
	for _, a := range st.calls {
		if a.Dialog == 2 && a.To == bd.ManagerOf(chosen) {
			t.Errorf("the store was asked to give dialog 2 to manager %d, whose reservation was in progress here", chosen)
		}
	}
	st.mu.Unlock()

	release()
	flushDistributor(t, d, "the distributor's jobs did not finish")
	r, err := st.Responsible(ctx, acct, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r != bd.ManagerOf(chosen) {
		t.Fatalf("r = %v, want %v", r, bd.ManagerOf(chosen))
	}

	trs, err := d.Recent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var passed []bd.ManagerID
	for _, tr := range trs {
		if tr.Dialog == 2 {
			passed = tr.Passed
		}
	}
	if got, want := passed, []bd.ManagerID{chosen}; !slices.Equal(got, want) {
		t.Fatalf("dialog 2's trace names the manager passed over: got %v, want %v", got, want)
	}
}
