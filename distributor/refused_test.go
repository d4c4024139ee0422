package distributor_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
)

// A dialog MG refused waits for MG, not for a free manager: a new dialog
// that finds a manager free is assigned at once, not queued behind it.
func TestNewDialogIsNotHeldBehindARefusedOne(t *testing.T) {
	// On synctest's fake clock the retry a second after MG's refusal takes no
	// real time.
	synctest.Test(t, func(t *testing.T) {
		ids := managerIDs(2)
		decided := make(chan distributor.Trace, 16)
		f := newFixture(t, settingsFor(ids, 5), onlineManagers(ids), distributor.WithHooks(distributor.Hooks{
			Decision: func(tr distributor.Trace) { decided <- tr },
		}))
		ctx := context.Background()
		f.gw.FailNext(1, errors.New("mg: 500 internal server error"))
		if err := f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}); err != nil {
			t.Fatal(err)
		}
		next := func() distributor.Trace {
			t.Helper()
			select {
			case tr := <-decided:
				return tr
			case <-time.After(10 * time.Second):
				t.Fatal("no decision")
				return distributor.Trace{}
			}
		}
		if tr := next(); tr.Dialog != 1 || tr.Outcome != distributor.OutcomeQueued {
			t.Fatalf("first decision: dialog %d %s, want dialog 1 queued after MG's refusal\n%s", tr.Dialog, tr.Outcome, tr)
		}
		// Dialog 1 waits for its retry (a drain a second later).
		if err := f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(2, 1)}); err != nil {
			t.Fatal(err)
		}
		if tr := next(); tr.Dialog != 2 || tr.Outcome != distributor.OutcomeAssigned || tr.FromQueue {
			t.Fatalf("dialog %d %s (from the queue %v), want dialog 2 assigned at once\n%s", tr.Dialog, tr.Outcome, tr.FromQueue, tr)
		}
		if r := f.responsible(t, 1); r.IsZero() {
			t.Fatal("dialog 1 never assigned after MG's refusal")
		}
	})
}

// Dialogs waiting for room hold a new dialog back only when there is not
// room for them all: a channel whose manager is full does not keep another
// channel's free manager from a new dialog.
func TestNewDialogTakesRoomNobodyWaitsFor(t *testing.T) {
	ids := managerIDs(2)
	s := settingsFor(ids, 1)
	s.Capacity = map[bd.ManagerID]int{2: 5}
	s.Channels = map[bd.ChannelID]bd.ChannelRule{
		1: {Target: bd.ToManagers, Managers: []bd.ManagerID{1}},
		2: {Target: bd.ToManagers, Managers: []bd.ManagerID{2}},
	}
	f := newFixture(t, s, onlineManagers(ids))
	f.open(t, dialog(1, 1))
	f.open(t, dialog(2, 1)) // manager 1 is full: it waits
	f.open(t, dialog(3, 2))
	if r := f.responsible(t, 3); r != bd.ManagerOf(2) {
		t.Fatalf("dialog 3 (channel 2): responsible %v, want manager 2 at once\n%s", r, f.traceOf(t, 3))
	}
	if tr := f.traceOf(t, 3); tr.FromQueue {
		t.Fatalf("dialog 3 went through the queue\n%s", tr)
	}
	// Room for one, one waiting: the newcomer waits its turn.
	f.close(t, 1)
	if r := f.responsible(t, 2); r != bd.ManagerOf(1) {
		t.Fatalf("dialog 2: responsible %v, want manager 1", r)
	}
}
