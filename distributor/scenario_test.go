package distributor_test

import (
	"context"
	"sync"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
)

// TestScenarioThousandDialogs opens 1,000 dialogs at once on 10 managers
// with capacity 5: exactly 50 are assigned, 950 wait with one "all busy"
// reply each, and closing dialogs hands the slots to the oldest waiting ones.
func TestScenarioThousandDialogs(t *testing.T) {
	const managers, capacity, dialogs = 10, 5, 1000
	ids := managerIDs(managers)
	f := newFixture(t, settingsFor(ids, capacity), onlineManagers(ids))
	ctx := context.Background()

	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				dl := dialog(i, 1)
				if err := f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dl}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := 1; i <= dialogs; i++ {
		work <- i
	}
	close(work)
	wg.Wait()

	if got, want := f.checkInvariants(t, ids, capacity), managers*capacity; got != want {
		t.Fatalf("assigned dialogs: got %v, want %v", got, want)
	}
	if got, want := f.queueLen(t), dialogs-managers*capacity; got != want {
		t.Fatalf("waiting dialogs: got %v, want %v", got, want)
	}
	if got := len(f.gw.Calls()); got != managers*capacity {
		t.Fatalf("assignments sent to MG: got %d, want %d", got, managers*capacity)
	}

	var assigned, waiting []bd.DialogID
	for i := 1; i <= dialogs; i++ {
		id := bd.DialogID(i)
		if got, want := f.rec.Count(id, bd.DialogReceived), 1; got != want {
			t.Fatalf("received reply of dialog %d: got %v, want %v", i, got, want)
		}
		if f.responsible(t, id).IsZero() {
			waiting = append(waiting, id)
			if got, want := f.rec.Count(id, bd.AllManagersBusy), 1; got != want {
				t.Fatalf("busy reply of waiting dialog %d: got %v, want %v", i, got, want)
			}
			if got := f.rec.Count(id, bd.ManagerAssigned); got != 0 {
				t.Fatalf("f.rec.Count(id, bd.ManagerAssigned) = %v, want 0", got)
			}
		} else {
			assigned = append(assigned, id)
			if got, want := f.rec.Count(id, bd.ManagerAssigned), 1; got != want {
				t.Fatalf("assigned reply of dialog %d: got %v, want %v", i, got, want)
			}
			if got := f.rec.Count(id, bd.AllManagersBusy); got != 0 {
				t.Fatalf("assigned dialog %d got the busy reply: got %v, want 0", i, got)
			}
		}
	}
	if got := f.rec.BySituation(bd.NoManagerOnline); got != 0 {
		t.Fatalf("f.rec.BySituation(bd.NoManagerOnline) = %v, want 0", got)
	}
	if len(waiting) != dialogs-managers*capacity {
		t.Fatalf("len(waiting) = %d, want %d", len(waiting), dialogs-managers*capacity)
	}

	// Closing each assigned dialog gives its slot to the oldest waiting one.
	for k, id := range assigned {
		f.close(t, id)
		next := waiting[k]
		if f.responsible(t, next).IsZero() {
			t.Fatalf("after %d closes, dialog %d (oldest waiting) must be assigned", k+1, next)
		}
		if k+1 < len(waiting) {
			if !f.responsible(t, waiting[k+1]).IsZero() {
				t.Fatalf("dialog %d must still wait", waiting[k+1])
			}
		}
	}
	if got, want := f.checkInvariants(t, ids, capacity), managers*capacity; got != want {
		t.Fatalf("f.checkInvariants(t, ids, capacity) = %v, want %v", got, want)
	}

	// Closing the held dialogs one by one drains the whole queue.
	held := []bd.DialogID{}
	for _, c := range f.gw.Calls()[managers*capacity:] {
		held = append(held, c.Dialog)
	}
	for len(held) > 0 {
		before := len(f.gw.Calls())
		f.close(t, held[0])
		held = held[1:]
		for _, c := range f.gw.Calls()[before:] {
			held = append(held, c.Dialog)
		}
	}
	calls := f.gw.Calls()
	if len(calls) != dialogs {
		t.Fatalf("every dialog assigned exactly once: got %d, want %d", len(calls), dialogs)
	}
	for k, c := range calls[managers*capacity:] {
		if got, want := c.Dialog, waiting[k]; got != want {
			t.Fatalf("queue must drain oldest first: got %v, want %v", got, want)
		}
	}
	if got := f.queueLen(t); got != 0 {
		t.Fatalf("f.queueLen(t) = %v, want 0", got)
	}
	for i := 1; i <= dialogs; i++ {
		if got, want := f.rec.Count(bd.DialogID(i), bd.ManagerAssigned), 1; got != want {
			t.Fatalf("assigned reply of dialog %d: got %v, want %v", i, got, want)
		}
	}
}
