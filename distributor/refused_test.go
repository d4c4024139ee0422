package distributor_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/botdistributor/botdistributor/distributor"
)

// A dialog MG refused waits for MG, not for a free manager: a new dialog
// that finds a manager free is assigned at once, not queued behind it.
func TestNewDialogIsNotHeldBehindARefusedOne(t *testing.T) {
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
}
