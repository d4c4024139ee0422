package distributor_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
)

// activate saves the fixture's account settings with Active set to on.
func (f *fixture) activate(t *testing.T, s bd.Settings, on bool) {
	t.Helper()
	s.Active = on
	require.NoError(t, f.d.SaveSettings(context.Background(), s))
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
	require.Empty(t, f.gw.Calls(), "assignments before activation")
	require.Zero(t, f.rec.Len(), "replies before activation")
	require.Equal(t, 3, f.queueLen(t))
	// A manager coming back does not start anything either.
	require.NoError(t, f.d.SetRoster(context.Background(), onlineManagers(ids)))
	f.flush(t)
	require.Empty(t, f.gw.Calls())
	// A dialog that closes meanwhile is forgotten.
	f.close(t, 2)
	require.Equal(t, 2, f.queueLen(t))

	// Switched on: the dialogs that opened meanwhile are distributed, oldest
	// first, greeted and told who answers, once each.
	f.activate(t, s, true)
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1))
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 3))
	require.Zero(t, f.queueLen(t))
	for _, id := range []bd.DialogID{1, 3} {
		require.Equal(t, 1, f.rec.Count(id, bd.DialogReceived), "greeting of dialog %d", id)
		require.Equal(t, 1, f.rec.Count(id, bd.ManagerAssigned), "manager reply of dialog %d", id)
	}
	require.Zero(t, f.rec.Count(2, bd.DialogReceived), "the closed dialog got a reply")
	require.Zero(t, f.rec.BySituation(bd.NoManagerOnline)+f.rec.BySituation(bd.AllManagersBusy), "a waiting reply although managers were free")

	// From now on the account works as usual: both managers are full.
	f.open(t, dialog(4, 1))
	require.Equal(t, 1, f.queueLen(t))
	require.Equal(t, 1, f.rec.Count(4, bd.AllManagersBusy))
	require.Equal(t, 2, f.checkInvariants(t, ids, 1))
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
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1))
	require.Equal(t, 2, f.queueLen(t))
	for _, id := range []bd.DialogID{2, 3} {
		require.Equal(t, 1, f.rec.Count(id, bd.DialogReceived), "greeting of waiting dialog %d", id)
		require.Equal(t, 1, f.rec.Count(id, bd.AllManagersBusy), "why dialog %d waits", id)
	}
	// More drains tell nobody again.
	require.NoError(t, f.d.SetRoster(context.Background(), onlineManagers(ids)))
	f.flush(t)
	require.Equal(t, 1, f.rec.Count(2, bd.AllManagersBusy))
	sent := f.rec.Len()

	// Switched off, a freed slot is not handed out and no reply is sent;
	// the waiting dialogs are kept.
	f.activate(t, s, false)
	f.close(t, 1)
	f.open(t, dialog(4, 1))
	require.Equal(t, 3, f.queueLen(t))
	require.Equal(t, sent, f.rec.Len(), "replies while switched off")
	require.Len(t, f.gw.Calls(), 1)

	// Switched on again: the oldest waiting dialog gets the manager, the
	// others wait; the dialog that opened while off is greeted now.
	f.activate(t, s, true)
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 2))
	require.Equal(t, 1, f.rec.Count(2, bd.ManagerAssigned))
	require.Equal(t, 1, f.rec.Count(2, bd.DialogReceived), "greeted twice")
	require.Equal(t, 1, f.rec.Count(4, bd.DialogReceived))
	require.Equal(t, 1, f.rec.Count(4, bd.AllManagersBusy))
	require.Equal(t, 2, f.queueLen(t))
}
