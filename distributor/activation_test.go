package distributor_test

import (
	"context"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
)

// activate saves the fixture's account settings with Active set to on.
func (f *fixture) activate(t *testing.T, s bd.Settings, on bool) {
	t.Helper()
	s.Active = on
	if err := f.d.SaveSettings(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	f.flush(t)
}

func TestNoRepliesBeforeActivation(t *testing.T) {
	ids := managerIDs(2)
	s := settingsFor(ids, 1)
	s.Active = false
	f := newFixture(t, s, onlineManagers(ids))

	// Three dialogs open and customers write while the account is off:
	// nobody is assigned, nobody gets a reply, the dialogs wait.
	for i := 1; i <= 3; i++ {
		f.open(t, dialog(i, 1))
		f.handle(t, distributor.Event{Kind: distributor.CustomerMessage, Account: acct, Dialog: dialog(i, 1), MessageID: int64(i)})
	}
	if got := f.gw.Calls(); len(got) != 0 {
		t.Fatalf("assignments before activation: got %v, want empty", got)
	}
	if got := f.rec.Len(); got != 0 {
		t.Fatalf("replies before activation: got %v, want 0", got)
	}
	if got, want := f.queueLen(t), 3; got != want {
		t.Fatalf("f.queueLen(t) = %v, want %v", got, want)
	}
	// A manager coming back does not start anything either.
	if err := f.d.SetRoster(context.Background(), onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	f.flush(t)
	if got := f.gw.Calls(); len(got) != 0 {
		t.Fatalf("f.gw.Calls() = %v, want empty", got)
	}
	// A dialog that closes meanwhile is forgotten.
	f.close(t, 2)
	if got, want := f.queueLen(t), 2; got != want {
		t.Fatalf("f.queueLen(t) = %v, want %v", got, want)
	}

	// Switched on: the dialogs that opened meanwhile are distributed, oldest
	// first, greeted and told who answers, once each.
	f.activate(t, s, true)
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 3), bd.ManagerOf(2); got != want {
		t.Fatalf("f.responsible(t, 3) = %v, want %v", got, want)
	}
	if got := f.queueLen(t); got != 0 {
		t.Fatalf("f.queueLen(t) = %v, want 0", got)
	}
	for _, id := range []bd.DialogID{1, 3} {
		if got, want := f.rec.Count(id, bd.DialogReceived), 1; got != want {
			t.Fatalf("greeting of dialog %d: got %v, want %v", id, got, want)
		}
		if got, want := f.rec.Count(id, bd.ManagerAssigned), 1; got != want {
			t.Fatalf("manager reply of dialog %d: got %v, want %v", id, got, want)
		}
	}
	if got := f.rec.Count(2, bd.DialogReceived); got != 0 {
		t.Fatalf("the closed dialog got a reply: got %v, want 0", got)
	}
	if got := f.rec.BySituation(bd.NoManagerOnline) + f.rec.BySituation(bd.AllManagersBusy); got != 0 {
		t.Fatalf("a waiting reply although managers were free: got %v, want 0", got)
	}

	// From now on the account works as usual: both managers are full.
	f.open(t, dialog(4, 1))
	if got, want := f.queueLen(t), 1; got != want {
		t.Fatalf("f.queueLen(t) = %v, want %v", got, want)
	}
	if got, want := f.rec.Count(4, bd.AllManagersBusy), 1; got != want {
		t.Fatalf("f.rec.Count(4, bd.AllManagersBusy) = %v, want %v", got, want)
	}
	if got, want := f.checkInvariants(t, ids, 1), 2; got != want {
		t.Fatalf("f.checkInvariants(t, ids, 1) = %v, want %v", got, want)
	}
}

func TestParkedDialogsThatMustWaitAreToldOnce(t *testing.T) {
	ids := managerIDs(1)
	s := settingsFor(ids, 1)
	s.Active = false
	f := newFixture(t, s, onlineManagers(ids))
	for i := 1; i <= 3; i++ {
		f.open(t, dialog(i, 1))
	}
	f.activate(t, s, true)
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got, want := f.queueLen(t), 2; got != want {
		t.Fatalf("f.queueLen(t) = %v, want %v", got, want)
	}
	for _, id := range []bd.DialogID{2, 3} {
		if got, want := f.rec.Count(id, bd.DialogReceived), 1; got != want {
			t.Fatalf("greeting of waiting dialog %d: got %v, want %v", id, got, want)
		}
		if got, want := f.rec.Count(id, bd.AllManagersBusy), 1; got != want {
			t.Fatalf("why dialog %d waits: got %v, want %v", id, got, want)
		}
	}
	// More drains tell nobody again.
	if err := f.d.SetRoster(context.Background(), onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	f.flush(t)
	if got, want := f.rec.Count(2, bd.AllManagersBusy), 1; got != want {
		t.Fatalf("f.rec.Count(2, bd.AllManagersBusy) = %v, want %v", got, want)
	}
	sent := f.rec.Len()

	// Switched off, a freed slot is not handed out and no reply is sent;
	// the waiting dialogs are kept.
	f.activate(t, s, false)
	f.close(t, 1)
	f.open(t, dialog(4, 1))
	if got, want := f.queueLen(t), 3; got != want {
		t.Fatalf("f.queueLen(t) = %v, want %v", got, want)
	}
	if got, want := f.rec.Len(), sent; got != want {
		t.Fatalf("replies while switched off: got %v, want %v", got, want)
	}
	if got := len(f.gw.Calls()); got != 1 {
		t.Fatalf("len(f.gw.Calls()) = %d, want 1", got)
	}

	// Switched on again: the oldest waiting dialog gets the manager, the
	// others wait; the dialog that opened while off is greeted now.
	f.activate(t, s, true)
	if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
	if got, want := f.rec.Count(2, bd.ManagerAssigned), 1; got != want {
		t.Fatalf("f.rec.Count(2, bd.ManagerAssigned) = %v, want %v", got, want)
	}
	if got, want := f.rec.Count(2, bd.DialogReceived), 1; got != want {
		t.Fatalf("greeted twice: got %v, want %v", got, want)
	}
	if got, want := f.rec.Count(4, bd.DialogReceived), 1; got != want {
		t.Fatalf("f.rec.Count(4, bd.DialogReceived) = %v, want %v", got, want)
	}
	if got, want := f.rec.Count(4, bd.AllManagersBusy), 1; got != want {
		t.Fatalf("f.rec.Count(4, bd.AllManagersBusy) = %v, want %v", got, want)
	}
	if got, want := f.queueLen(t), 2; got != want {
		t.Fatalf("f.queueLen(t) = %v, want %v", got, want)
	}
}
