package distributor_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

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

	require.Equal(t, managers*capacity, f.checkInvariants(t, ids, capacity), "assigned dialogs")
	require.Equal(t, dialogs-managers*capacity, f.queueLen(t), "waiting dialogs")
	require.Len(t, f.gw.Calls(), managers*capacity, "assignments sent to MG")

	var assigned, waiting []bd.DialogID
	for i := 1; i <= dialogs; i++ {
		id := bd.DialogID(i)
		require.Equal(t, 1, f.rec.Count(id, bd.DialogReceived), "received reply of dialog %d", i)
		if f.responsible(t, id).IsZero() {
			waiting = append(waiting, id)
			require.Equal(t, 1, f.rec.Count(id, bd.AllManagersBusy), "busy reply of waiting dialog %d", i)
			require.Zero(t, f.rec.Count(id, bd.ManagerAssigned))
		} else {
			assigned = append(assigned, id)
			require.Equal(t, 1, f.rec.Count(id, bd.ManagerAssigned), "assigned reply of dialog %d", i)
			require.Zero(t, f.rec.Count(id, bd.AllManagersBusy), "assigned dialog %d got the busy reply", i)
		}
	}
	require.Zero(t, f.rec.BySituation(bd.NoManagerOnline))
	require.Len(t, waiting, dialogs-managers*capacity)

	// Closing each assigned dialog gives its slot to the oldest waiting one.
	for k, id := range assigned {
		f.close(t, id)
		next := waiting[k]
		require.False(t, f.responsible(t, next).IsZero(), "after %d closes, dialog %d (oldest waiting) must be assigned", k+1, next)
		if k+1 < len(waiting) {
			require.True(t, f.responsible(t, waiting[k+1]).IsZero(), "dialog %d must still wait", waiting[k+1])
		}
	}
	require.Equal(t, managers*capacity, f.checkInvariants(t, ids, capacity))

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
	require.Len(t, calls, dialogs, "every dialog assigned exactly once")
	for k, c := range calls[managers*capacity:] {
		require.Equal(t, waiting[k], c.Dialog, "queue must drain oldest first")
	}
	require.Zero(t, f.queueLen(t))
	for i := 1; i <= dialogs; i++ {
		require.Equal(t, 1, f.rec.Count(bd.DialogID(i), bd.ManagerAssigned), "assigned reply of dialog %d", i)
	}
}
