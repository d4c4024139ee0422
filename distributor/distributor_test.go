package distributor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/reply/replytest"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
	"github.com/botdistributor/botdistributor/strategy"
)

func TestNewValidatesOptions(t *testing.T) {
	st, gw := memory.New(), &distributortest.Gateway{}
	_, err := distributor.New(acct, nil, gw)
	require.ErrorContains(t, err, "nil store")
	_, err = distributor.New(acct, st, nil)
	require.ErrorContains(t, err, "nil gateway")
	_, err = distributor.New(acct, st, gw, distributor.WithStrategy(nil), distributor.WithSweep(0), nil)
	require.Error(t, err)
	for _, want := range []string{"WithStrategy: nil strategy", "WithSweep: interval must be positive", "nil option"} {
		require.ErrorContains(t, err, want)
	}
	_, err = distributor.New("", st, gw)
	require.ErrorContains(t, err, "empty account id")
	_, err = distributor.New(acct, st, gw, distributor.WithWork(store.WorkOptions{Accounts: []bd.AccountID{"other.example"}}))
	require.ErrorContains(t, err, `Accounts must be empty or name only the distributor's account "shop.example"`)
	d, err := distributor.New(acct, st, gw, distributor.WithWork(store.WorkOptions{Accounts: []bd.AccountID{acct}}))
	require.NoError(t, err)
	require.Equal(t, acct, d.Account())
	require.NoError(t, d.Close())
	d, err = distributor.New(acct, st, gw)
	require.NoError(t, err)
	require.NotNil(t, d)
	t.Cleanup(func() { d.Close() })
}

func TestDuplicateDeliveriesActOnce(t *testing.T) {
	ids := managerIDs(3)
	f := newFixture(t, settingsFor(ids, 5), onlineManagers(ids))
	ctx := context.Background()
	dl := dialog(1, 1)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dl}
			if i%2 == 1 { // the customer's first message races the dialog_opened event
				ev = distributor.Event{Kind: distributor.CustomerMessage, Account: acct, Dialog: dl, MessageID: int64(100 + i%4)}
			}
			assert.NoError(t, f.d.Handle(ctx, ev))
		}()
	}
	wg.Wait()
	f.flush(t)
	require.Len(t, f.gw.Calls(), 1)
	require.Equal(t, 1, f.rec.Count(dl.ID, bd.DialogReceived))
	require.Equal(t, 1, f.rec.Count(dl.ID, bd.ManagerAssigned))
	require.Equal(t, 1, f.checkInvariants(t, ids, 5))

	// A late duplicate dialog_opened after the close does not reopen anything.
	f.close(t, dl.ID)
	f.open(t, dl)
	require.Len(t, f.gw.Calls(), 1)
	require.True(t, f.responsible(t, dl.ID).IsZero())
}

func TestChannelRules(t *testing.T) {
	ids := managerIDs(4)
	s := settingsFor(ids, 5)
	s.Channels = map[bd.ChannelID]bd.ChannelRule{
		7: {Target: bd.ToBot, Bot: 900},
		8: {Target: bd.ToManagers, Managers: []bd.ManagerID{3, 4}},
	}
	f := newFixture(t, s, onlineManagers(ids))

	f.open(t, dialog(1, 7))
	require.Equal(t, bd.BotOf(900), f.gw.Responsible(1))
	require.Equal(t, bd.BotOf(900), f.responsible(t, 1))
	require.Zero(t, f.rec.Count(1, bd.DialogReceived), "a bot's dialog gets no distributor reply")

	for i := 2; i <= 11; i++ {
		f.open(t, dialog(i, 8))
		m, ok := f.responsible(t, bd.DialogID(i)).Manager()
		require.True(t, ok)
		require.Contains(t, []bd.ManagerID{3, 4}, m, "channel 8 goes to managers 3 and 4 only")
	}
	// Channel 8's two managers hold 5 each now; the default rule still has room.
	f.open(t, dialog(12, 8))
	require.True(t, f.responsible(t, 12).IsZero(), "channel 8's managers are full")
	require.Equal(t, 1, f.rec.Count(12, bd.AllManagersBusy))
	f.open(t, dialog(13, 1))
	m, _ := f.responsible(t, 13).Manager()
	require.Contains(t, []bd.ManagerID{1, 2}, m, "the default rule still has room with managers 1 and 2")

	tr, err := f.d.Decide(context.Background(), dialog(14, 8))
	require.NoError(t, err)
	require.Equal(t, distributor.OutcomeQueued, tr.Outcome)
	require.ElementsMatch(t, []bd.ManagerID{1, 2}, tr.RemovedBy(distributor.FilterChannel))
	require.ElementsMatch(t, []bd.ManagerID{3, 4}, tr.RemovedBy(distributor.FilterCapacity))
}

func TestAvailabilityModes(t *testing.T) {
	roster := []bd.Manager{
		{ID: 1, Status: bd.StatusFree, Online: true, Active: true},
		{ID: 2, Status: bd.StatusFree, Online: false, Active: true},
		{ID: 3, Status: bd.StatusBusy, Online: true, Active: true},
		{ID: 4, Status: bd.StatusDinner, Online: false, Active: true},
		{ID: 5, Status: bd.StatusFree, Online: true, Active: false},
	}
	ids := []bd.ManagerID{1, 2, 3, 4, 5, 6} // 6 is not in the roster
	for _, tc := range []struct {
		mode     bd.AvailabilityMode
		eligible []bd.ManagerID
		offline  []bd.ManagerID
		status   []bd.ManagerID
	}{
		{bd.StatusAndOnline, []bd.ManagerID{1}, []bd.ManagerID{2, 4}, []bd.ManagerID{3}},
		{bd.StatusOnly, []bd.ManagerID{1, 2}, nil, []bd.ManagerID{3, 4}},
		{bd.OnlineOnly, []bd.ManagerID{1, 3}, []bd.ManagerID{2, 4}, nil},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			s := settingsFor(ids, 3)
			s.Availability = tc.mode
			f := newFixture(t, s, roster)
			tr, err := f.d.Decide(context.Background(), dialog(1, 1))
			require.NoError(t, err)
			var got []bd.ManagerID
			for _, c := range tr.Candidates {
				got = append(got, c.Manager)
			}
			require.Equal(t, tc.eligible, got)
			require.ElementsMatch(t, tc.offline, tr.RemovedBy(distributor.FilterOffline))
			require.ElementsMatch(t, tc.status, tr.RemovedBy(distributor.FilterStatus))
			require.Equal(t, []bd.ManagerID{5}, tr.RemovedBy(distributor.FilterInactive))
			require.Equal(t, []bd.ManagerID{6}, tr.RemovedBy(distributor.FilterRoster))
		})
	}
}

func TestNoManagerOnlineThenOneComesOnline(t *testing.T) {
	ids := managerIDs(2)
	offline := onlineManagers(ids)
	for i := range offline {
		offline[i].Online = false
	}
	f := newFixture(t, settingsFor(ids, 2), offline)
	f.open(t, dialog(1, 1))
	f.open(t, dialog(2, 1))
	require.Equal(t, 2, f.queueLen(t))
	require.Equal(t, 1, f.rec.Count(1, bd.NoManagerOnline))
	require.Empty(t, f.gw.Calls())

	on := offline[1]
	on.Online = true
	require.NoError(t, f.d.Handle(context.Background(), distributor.Event{Kind: distributor.ManagerChanged, Account: acct, Manager: on}))
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 1))
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 2))
	require.Zero(t, f.queueLen(t))
	tr, err := f.d.Recent(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, tr)
	require.True(t, tr[0].FromQueue)
	require.Equal(t, distributor.OutcomeAssigned, tr[0].Outcome)
}

func TestRepliesNameTheManagerAndCustomer(t *testing.T) {
	ids := managerIDs(2)
	sent := replytest.NewRecorder()
	tmpl, err := reply.NewTemplate(sent)
	require.NoError(t, err)
	f := newFixture(t, settingsFor(ids, 2), onlineManagers(ids), distributor.WithReplier(tmpl))
	f.open(t, dialog(1, 1))
	require.Equal(t, []string{"Hello Customer No1, we got your message.", "Manager 1 will answer you."}, sent.ToChat(1001))
}

func TestOutsideWorkingHours(t *testing.T) {
	ids := managerIDs(2)
	s := settingsFor(ids, 2)
	s.Hours = bd.WorkingHours{TimeZone: "Europe/Moscow"}
	s.Hours.Week[time.Monday] = []bd.Span{{Start: 9 * 60, End: 18 * 60}}
	f := newFixture(t, s, onlineManagers(ids))
	f.clock.Set(time.Date(2026, 3, 2, 19, 0, 0, 0, time.UTC)) // 22:00 in Moscow
	f.open(t, dialog(1, 1))
	require.True(t, f.responsible(t, 1).IsZero())
	require.Equal(t, 1, f.rec.Count(1, bd.OutsideWorkingHours))
	tr, err := f.d.Decide(context.Background(), dialog(2, 1))
	require.NoError(t, err)
	require.ElementsMatch(t, ids, tr.RemovedBy(distributor.FilterHours))

	f.clock.Set(time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)) // 10:00 in Moscow
	f.d.Sweep(context.Background())
	require.False(t, f.responsible(t, 1).IsZero(), "opening hours let the sweep assign the waiting dialog")
	require.Equal(t, 1, f.rec.Count(1, bd.OutsideWorkingHours), "the reply is sent once")
}

func TestAssignedByPersonInMG(t *testing.T) {
	ids := managerIDs(2)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids))
	ctx := context.Background()
	f.open(t, dialog(1, 1))
	f.open(t, dialog(2, 1))
	f.open(t, dialog(3, 1)) // waits: both managers hold one
	require.Equal(t, 1, f.queueLen(t))
	first, _ := f.responsible(t, 1).Manager()

	// A person moves dialog 1 to a bot in MG: the manager's slot frees and
	// the waiting dialog takes it.
	require.NoError(t, f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogAssigned, Account: acct, Dialog: bd.Dialog{ID: 1}, Responsible: bd.BotOf(77)}))
	require.Equal(t, bd.BotOf(77), f.responsible(t, 1))
	require.Equal(t, bd.ManagerOf(first), f.responsible(t, 3))
	require.Zero(t, f.queueLen(t))

	// The echo of the distributor's own assignment changes nothing.
	before := len(f.gw.Calls())
	require.NoError(t, f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogAssigned, Account: acct, Dialog: bd.Dialog{ID: 3}, Responsible: bd.ManagerOf(first)}))
	require.Len(t, f.gw.Calls(), before)

	// A person pushes a dialog onto a full manager: the store follows MG.
	other := bd.ManagerID(3) - first
	require.NoError(t, f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogAssigned, Account: acct, Dialog: bd.Dialog{ID: 1}, Responsible: bd.ManagerOf(other)}))
	loads, err := f.st.Loads(ctx, acct, []bd.ManagerID{other}, nil)
	require.NoError(t, err)
	require.Equal(t, 2, loads[0].Open)
}

func TestUnassignedByPersonIsDistributedAgain(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 3), onlineManagers(ids))
	f.open(t, dialog(1, 1))
	require.NoError(t, f.d.Handle(context.Background(), distributor.Event{Kind: distributor.DialogAssigned, Account: acct, Dialog: dialog(1, 1)}))
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1))
	require.Len(t, f.gw.Calls(), 2)
	require.Equal(t, 1, f.checkInvariants(t, ids, 3))
}

func TestDecideIsADryRun(t *testing.T) {
	ids := managerIDs(3)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids))
	f.open(t, dialog(1, 1))
	tr, err := f.d.Decide(context.Background(), dialog(2, 1))
	require.NoError(t, err)
	require.True(t, tr.DryRun)
	require.Equal(t, distributor.OutcomeAssigned, tr.Outcome)
	require.Len(t, tr.Candidates, 2)
	require.Len(t, tr.RemovedBy(distributor.FilterCapacity), 1)
	require.NotEmpty(t, tr.Choice.Reason)
	require.Contains(t, tr.String(), "removed manager")
	require.Contains(t, tr.String(), "at_capacity")

	require.Len(t, f.gw.Calls(), 1, "a dry run sends nothing to MG")
	require.True(t, f.responsible(t, 2).IsZero(), "a dry run reserves nothing")
	require.Zero(t, f.rec.Count(2, bd.DialogReceived), "a dry run replies nothing")
	// The real event afterwards is not mistaken for a duplicate.
	f.open(t, dialog(2, 1))
	require.False(t, f.responsible(t, 2).IsZero())
}

func TestSaveSettingsKeepsPreviousOnError(t *testing.T) {
	ids := managerIDs(2)
	good := settingsFor(ids, 2)
	f := newFixture(t, good, onlineManagers(ids))
	ctx := context.Background()

	bad := good.Clone()
	bad.DefaultCapacity = 9
	bad.Replies[bd.NoManagerOnline] = ""
	bad.Replies[bd.OutsideWorkingHours] = "   "
	bad.Strategy = "fastest_typist"
	err := f.d.SaveSettings(ctx, bad)
	var se *bd.SettingsError
	require.ErrorAs(t, err, &se)
	require.ElementsMatch(t, []bd.Situation{bd.NoManagerOnline, bd.OutsideWorkingHours}, se.EmptyReplies())
	require.Contains(t, err.Error(), "replies.no_manager_online: is empty")
	require.Contains(t, err.Error(), "replies.outside_working_hours: is empty")
	require.Contains(t, err.Error(), `unknown strategy "fastest_typist"`)

	cur, err := f.d.Settings(ctx)
	require.NoError(t, err)
	require.Equal(t, good, cur, "the settings in force are unchanged")
	stored, err := f.st.Account(ctx, acct)
	require.NoError(t, err)
	require.Equal(t, good, stored.Settings, "the stored settings are unchanged")

	better := good.Clone()
	better.DefaultCapacity = 9
	better.Strategy = strategy.NameLeastLoaded
	require.NoError(t, f.d.SaveSettings(ctx, better))
	stored, err = f.st.Account(ctx, acct)
	require.NoError(t, err)
	require.Equal(t, 9, stored.Settings.DefaultCapacity)
	tr, err := f.d.Decide(ctx, dialog(1, 1))
	require.NoError(t, err)
	require.Equal(t, strategy.NameLeastLoaded, tr.Strategy)
	require.Equal(t, 9, tr.Candidates[0].Capacity)
}

func TestBadEvents(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids))
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		ev   distributor.Event
		want string
	}{
		{"no kind", distributor.Event{Account: acct, Dialog: dialog(1, 1)}, "unknown kind"},
		{"unknown kind", distributor.Event{Kind: 99, Account: acct, Dialog: dialog(1, 1)}, "unknown kind 99"},
		{"other account", distributor.Event{Kind: distributor.DialogOpened, Account: "nobody.example", Dialog: bd.Dialog{ID: 1}}, `event of account "nobody.example" given to the distributor of "shop.example"`},
		{"no dialog", distributor.Event{Kind: distributor.DialogOpened, Account: acct}, "dialog id must be positive, got 0"},
		{"foreign dialog", distributor.Event{Kind: distributor.DialogClosed, Account: acct, Dialog: bd.Dialog{Account: "other", ID: 1}}, `carries a dialog of account "other"`},
		{"bad responsible", distributor.Event{Kind: distributor.DialogAssigned, Account: acct, Dialog: dialog(1, 1), Responsible: bd.Responsible{Kind: bd.ManagerResponsible}}, "responsible id must be positive"},
		{"no manager", distributor.Event{Kind: distributor.ManagerChanged, Account: acct}, "manager id must be positive"},
		{"bad status", distributor.Event{Kind: distributor.ManagerChanged, Account: acct, Manager: bd.Manager{ID: 1, Status: "asleep"}}, `unknown status "asleep"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.d.Handle(ctx, tc.ev)
			require.ErrorIs(t, err, distributor.ErrBadEvent)
			require.ErrorContains(t, err, tc.want)
		})
	}
	// An event without an account is the distributor's.
	require.NoError(t, f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogClosed, Dialog: bd.Dialog{ID: 7}}))
	nobody, err := distributor.New("nobody.example", f.st, f.gw)
	require.NoError(t, err)
	t.Cleanup(func() { nobody.Close() })
	err = nobody.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Dialog: bd.Dialog{ID: 1}})
	require.ErrorIs(t, err, distributor.ErrUnknownAccount)
	require.Empty(t, f.gw.Calls(), "bad events change nothing")
	require.Zero(t, f.queueLen(t))
}

func TestGatewayFailureLeavesDialogWaiting(t *testing.T) {
	ids := managerIDs(1)
	var failures []string
	var mu sync.Mutex
	var queued, assigned int
	st := memory.New()
	f := newFixtureOn(t, st, settingsFor(ids, 1), onlineManagers(ids), distributor.WithHooks(distributor.Hooks{
		Failed: func(_ bd.AccountID, op string, _ error) { mu.Lock(); failures = append(failures, op); mu.Unlock() },
		Decision: func(tr distributor.Trace) {
			mu.Lock()
			defer mu.Unlock()
			switch tr.Outcome {
			case distributor.OutcomeQueued:
				queued++
				_, err := st.Responsible(context.Background(), acct, 1)
				assert.ErrorIs(t, err, store.ErrNotFound, "a refused dialog's slot is given back")
			case distributor.OutcomeAssigned:
				assigned++
			}
		},
	}))
	f.gw.FailNext(1, errors.New("mg: 503"))
	require.NoError(t, f.d.Handle(context.Background(), distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}))
	// The refused dialog waits, and the queue is drained for it again.
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1))
	require.Zero(t, f.queueLen(t))
	require.Equal(t, 1, f.checkInvariants(t, ids, 1))
	mu.Lock()
	require.Contains(t, failures, "gateway.assign")
	require.Equal(t, 1, queued, "the refused dialog waited")
	require.Equal(t, 1, assigned)
	mu.Unlock()
	require.Equal(t, 1, f.rec.Count(1, bd.DialogReceived))
	require.Equal(t, 1, f.rec.Count(1, bd.ManagerAssigned))
	require.Len(t, f.gw.Calls(), 1, "MG took one assignment")
}

func TestGoneDialogIsClosed(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids))
	f.gw.FailNext(1, fmt.Errorf("%w: MG lists it inactive", distributor.ErrDialogGone))
	f.open(t, dialog(1, 1))
	require.True(t, f.responsible(t, 1).IsZero())
	require.Zero(t, f.queueLen(t))
	require.Zero(t, f.checkInvariants(t, ids, 1), "the slot is free again")
	f.open(t, dialog(2, 1))
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 2))
}

func TestReplyFailureIsRetried(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids), distributor.WithWork(store.WorkOptions{Backoff: func(int) time.Duration { return time.Millisecond }}))
	f.rec.FailNext(2, errors.New("mg: timeout"))
	f.open(t, dialog(1, 1))
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1), "a failed reply does not block the assignment")
	require.Equal(t, 1, f.rec.Count(1, bd.DialogReceived), "the failed reply was sent by a retry, once")
	require.Equal(t, 1, f.rec.Count(1, bd.ManagerAssigned))
	claimed, err := f.st.ClaimReply(context.Background(), acct, 1, bd.DialogReceived)
	require.NoError(t, err)
	require.False(t, claimed, "the reply stays claimed")
}

func TestFailingJobBecomesADeadLetter(t *testing.T) {
	ids := managerIDs(1)
	var dead []store.Job
	var mu sync.Mutex
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids),
		distributor.WithWork(store.WorkOptions{MaxAttempts: 3, Backoff: func(int) time.Duration { return time.Millisecond }}),
		distributor.WithHooks(distributor.Hooks{Dead: func(_ bd.AccountID, j store.Job, _ error) { mu.Lock(); dead = append(dead, j); mu.Unlock() }}))
	f.rec.FailNext(100, errors.New("mg: 502"))
	f.open(t, dialog(1, 1))
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1))
	letters, err := f.d.DeadLetters(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, letters, 2, "both replies failed past their budget")
	for _, l := range letters {
		require.Equal(t, store.JobReply, l.Kind)
		require.Equal(t, 3, l.Attempt)
		require.Contains(t, l.Err, "mg: 502")
	}
	mu.Lock()
	require.Len(t, dead, 2)
	mu.Unlock()
}

func TestResync(t *testing.T) {
	ids := managerIDs(2)
	f := newFixture(t, settingsFor(ids, 5), onlineManagers(ids))
	ctx := context.Background()
	f.open(t, dialog(1, 1)) // will be closed while nobody listened
	f.open(t, dialog(2, 1)) // MG moved it to manager 2... or keeps it
	open := []distributor.OpenDialog{
		{Dialog: dialog(2, 1), Responsible: bd.ManagerOf(2)},
		{Dialog: dialog(3, 1)}, // opened while nobody listened
		{Dialog: dialog(4, 1), Responsible: bd.BotOf(9)},
	}
	require.NoError(t, f.d.Resync(ctx, open))
	require.True(t, f.responsible(t, 1).IsZero(), "a dialog MG no longer lists is released")
	require.Equal(t, bd.ManagerOf(2), f.responsible(t, 2))
	require.False(t, f.responsible(t, 3).IsZero(), "a missed dialog is distributed")
	require.Equal(t, bd.BotOf(9), f.responsible(t, 4))
	require.Equal(t, 1, f.rec.Count(3, bd.ManagerAssigned))
	held := f.checkInvariants(t, ids, 5)
	require.Equal(t, 2, held)

	// Resync is idempotent once MG reports what the distributor did.
	open[1].Responsible = f.gw.Responsible(3)
	calls := len(f.gw.Calls())
	require.NoError(t, f.d.Resync(ctx, open))
	require.Len(t, f.gw.Calls(), calls)

	err := f.d.Resync(ctx, []distributor.OpenDialog{{Dialog: bd.Dialog{ID: -4}}})
	require.ErrorIs(t, err, distributor.ErrBadEvent)
}

func TestStrategyChoosingAnOutsiderIsAnError(t *testing.T) {
	ids := managerIDs(2)
	bad := strategy.Func(func(context.Context, strategy.Request) (strategy.Choice, error) {
		return strategy.Choice{Manager: 42}, nil
	})
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids), distributor.WithStrategy(bad),
		distributor.WithWork(store.WorkOptions{MaxAttempts: 2, Backoff: func(int) time.Duration { return time.Millisecond }}))
	require.NoError(t, f.d.Handle(context.Background(), distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}))
	f.flush(t)
	letters, err := f.d.DeadLetters(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	require.Equal(t, store.JobDistribute, letters[0].Kind)
	require.Contains(t, letters[0].Err, "chose manager 42, who is not a candidate")
	require.Empty(t, f.gw.Calls())
}

// TestSecretsNeverInTraceOrErrors runs the paths that log, trace and
// return errors (a refused MG assignment, a failed reply, a bad event)
// for an account with secrets, and looks for them in everything produced.
func TestSecretsNeverInTraceOrErrors(t *testing.T) {
	st := memory.New()
	ctx := context.Background()
	ids := managerIDs(1)
	require.NoError(t, st.SaveAccount(ctx, bd.Account{ID: acct, APIKey: "crm-key-123", MGToken: "mg-token-456", Settings: settingsFor(ids, 1)}))
	var logs strings.Builder
	var mu sync.Mutex
	var failures []string
	gw, rec := &distributortest.Gateway{}, replytest.NewRecorder()
	d, err := distributor.New(acct, st, gw, distributor.WithReplier(rec),
		distributor.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		distributor.WithHooks(distributor.Hooks{Failed: func(_ bd.AccountID, op string, err error) {
			mu.Lock()
			failures = append(failures, op+": "+err.Error())
			mu.Unlock()
		}}))
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.SetRoster(ctx, onlineManagers(ids)))
	gw.FailNext(1, nil)
	rec.FailNext(1, nil)
	outputs := []string{err2s(d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}))}
	require.NoError(t, d.Flush(ctx))
	d.Sweep(ctx)
	tr, err := d.Decide(ctx, dialog(2, 1))
	require.NoError(t, err)
	outputs = append(outputs, tr.String(), err2s(d.Handle(ctx, distributor.Event{Kind: 77, Account: acct})), logs.String())
	outputs = append(outputs, failures...)
	require.NotEmpty(t, logs.String(), "the failure paths log")
	require.GreaterOrEqual(t, len(failures), 2, "the gateway and the replier failed")
	for _, s := range outputs {
		require.False(t, strings.Contains(s, "crm-key-123") || strings.Contains(s, "mg-token-456"), s)
	}
}

func err2s(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestHammer races opens, closes, person reassignments and presence flaps
// across goroutines; at the end the invariants hold and nothing is lost.
func TestHammer(t *testing.T) {
	const capacity, dialogs = 3, 2000
	ids := managerIDs(8)
	f := newFixture(t, settingsFor(ids, capacity), onlineManagers(ids))
	ctx := context.Background()
	var closed sync.Map
	closeDialog := func(id bd.DialogID) {
		closed.Store(id, true)
		assert.NoError(t, f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogClosed, Account: acct, Dialog: bd.Dialog{ID: id}}))
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w + 1; i <= dialogs; i += 16 {
				dl := dialog(i, 1)
				assert.NoError(t, f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dl}))
				switch i % 5 {
				case 0, 1:
					closeDialog(dl.ID)
				case 2:
					m := onlineManagers(ids)[i%len(ids)]
					m.Online = i%4 != 0
					assert.NoError(t, f.d.Handle(ctx, distributor.Event{Kind: distributor.ManagerChanged, Account: acct, Manager: m}))
				}
				if i%3 == 0 {
					// Close an older dialog, possibly waiting, held, or not
					// even opened yet (a late dialog_opened is then ignored).
					closeDialog(bd.DialogID(i / 2))
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, f.d.SetRoster(ctx, onlineManagers(ids)))
	held := f.checkInvariants(t, ids, capacity)
	waiting := f.queueLen(t)
	open := 0
	for i := 1; i <= dialogs; i++ {
		r := f.responsible(t, bd.DialogID(i))
		if _, ok := closed.Load(bd.DialogID(i)); ok {
			require.True(t, r.IsZero(), "closed dialog %d still held by %s", i, r)
			continue
		}
		open++
	}
	require.Equal(t, open, held+waiting, "every open dialog is assigned or waiting")
	if waiting > 0 {
		require.Equal(t, len(ids)*capacity, held, "dialogs wait only when everyone is full")
	}
}

func TestGoneDialogIsClosedNotQueued(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids))
	f.gw.FailNext(1, fmt.Errorf("mg: dialog is not the latest in the chat: %w", distributor.ErrDialogGone))
	f.open(t, dialog(1, 1))
	require.True(t, f.responsible(t, 1).IsZero())
	require.Zero(t, f.queueLen(t), "a dialog MG can never assign does not wait")
	require.Zero(t, f.checkInvariants(t, ids, 1), "its slot is free again")
	f.open(t, dialog(2, 1))
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 2))
}

func TestResyncLeavesNewerDialogsAlone(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 5), onlineManagers(ids))
	f.open(t, dialog(5, 1)) // opened (by any process) after MG's list was read
	require.NoError(t, f.d.Resync(context.Background(), []distributor.OpenDialog{{Dialog: dialog(3, 1)}}))
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 5), "a dialog newer than MG's list is not taken for closed")
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 3))
}

// TestResyncWithAStaleList: MG's list was read before assignments landed;
// the store keeps them and MG is told again, so nothing is handed out twice.
func TestResyncWithAStaleList(t *testing.T) {
	ids := managerIDs(2)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids))
	f.open(t, dialog(1, 1))
	f.open(t, dialog(2, 1))
	held1, held2 := f.responsible(t, 1), f.responsible(t, 2)
	stale := []distributor.OpenDialog{{Dialog: dialog(1, 1)}, {Dialog: dialog(2, 1), Responsible: held1}}
	require.NoError(t, f.d.Resync(context.Background(), stale))
	require.Equal(t, held1, f.responsible(t, 1))
	require.Equal(t, held2, f.responsible(t, 2))
	require.Equal(t, held1, f.gw.Responsible(1), "MG is told the store's responsible again")
	require.Equal(t, held2, f.gw.Responsible(2))
	require.Equal(t, 2, f.checkInvariants(t, ids, 1))
}

// A dialog reserved in the store by a distribution that stopped before MG
// heard of it (its process died) is finished by the next distribution:
// MG is told, the customer told who answers.
func TestReservationWithoutMGIsFinished(t *testing.T) {
	ids := managerIDs(2)
	f := newFixture(t, settingsFor(ids, 3), onlineManagers(ids))
	ctx := context.Background()
	require.NoError(t, f.st.Assign(ctx, store.Assignment{Account: acct, Dialog: 1, Customer: 5001, To: bd.ManagerOf(2), Capacity: 3, At: t0}))
	f.open(t, dialog(1, 1))
	require.Equal(t, bd.ManagerOf(2), f.gw.Responsible(1), "MG is told what the store holds")
	require.Equal(t, 1, f.rec.Count(1, bd.ManagerAssigned))
	require.Equal(t, 1, f.checkInvariants(t, ids, 3))
}

// failures makes the next n calls of a faulty store method fail.
type failures struct {
	mu sync.Mutex
	n  int
}

func (f *failures) set(n int) { f.mu.Lock(); f.n = n; f.mu.Unlock() }

// fail reports whether this call fails, and counts it.
func (f *failures) fail() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	return f.n >= 0
}

// errTerminated is what a database says when its connection is terminated.
var errTerminated = errors.New("FATAL: terminating connection due to administrator command (SQLSTATE 57P01)")

// flakyWorkStore is a memory store whose workers fail to start the first
// times, as a SQL store's do while the database is unreachable.
type flakyWorkStore struct {
	*memory.Store
	failures
}

func (s *flakyWorkStore) Work(ctx context.Context, h store.JobHandler, o store.WorkOptions) error {
	if s.fail() {
		return errors.New("start the job engine: connection refused")
	}
	return s.Store.Work(ctx, h, o)
}

func TestWorkersStartAgainAfterAnError(t *testing.T) {
	ids := managerIDs(1)
	st := &flakyWorkStore{Store: memory.New()}
	st.set(2)
	ctx := context.Background()
	require.NoError(t, st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 1)}))
	var failed []string
	var mu sync.Mutex
	d, err := distributor.New(acct, st, &distributortest.Gateway{}, distributor.WithHooks(distributor.Hooks{
		Failed: func(_ bd.AccountID, op string, _ error) { mu.Lock(); failed = append(failed, op); mu.Unlock() },
	}))
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.SetRoster(ctx, onlineManagers(ids)))
	require.NoError(t, d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}))
	flush, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, d.Flush(flush), "the workers never started again")
	r, err := st.Responsible(ctx, acct, 1)
	require.NoError(t, err)
	require.Equal(t, bd.ManagerOf(1), r)
	mu.Lock()
	require.Equal(t, []string{"work", "work"}, failed)
	mu.Unlock()
}

// failingLoadsStore is a memory store whose Loads fails the first times, as
// a database does while its connections are being terminated.
type failingLoadsStore struct {
	*memory.Store
	failures
}

func (s *failingLoadsStore) Loads(ctx context.Context, acc bd.AccountID, ms []bd.ManagerID, dst []store.Load) ([]store.Load, error) {
	if s.fail() {
		return nil, errTerminated
	}
	return s.Store.Loads(ctx, acc, ms, dst)
}

// A distribution that fails half-way (its event already claimed) is tried
// again until the dialog is assigned: no dialog waits for a resync.
func TestFailedDistributionIsRetried(t *testing.T) {
	ids := managerIDs(1)
	st := &failingLoadsStore{Store: memory.New()}
	st.set(3)
	ctx := context.Background()
	require.NoError(t, st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 1)}))
	rec := replytest.NewRecorder()
	d, err := distributor.New(acct, st, &distributortest.Gateway{}, distributor.WithReplier(rec),
		distributor.WithWork(store.WorkOptions{Backoff: func(int) time.Duration { return time.Millisecond }}))
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.SetRoster(ctx, onlineManagers(ids)))
	require.NoError(t, d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}))
	// A duplicate delivery adds nothing: the work is stored already.
	require.NoError(t, d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}))
	flush, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, d.Flush(flush))
	r, err := st.Responsible(ctx, acct, 1)
	require.NoError(t, err)
	require.Equal(t, bd.ManagerOf(1), r)
	require.Equal(t, 1, rec.Count(1, bd.DialogReceived))
	require.Equal(t, 1, rec.Count(1, bd.ManagerAssigned))
}

// A waiting dialog MG refuses to take stays in the queue (never leaves it
// unassigned) and is assigned once MG takes it.
func TestRefusedWaitingDialogStaysQueued(t *testing.T) {
	ids := managerIDs(1)
	var mu sync.Mutex
	var outcomes []distributor.Outcome
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids), distributor.WithHooks(distributor.Hooks{
		Decision: func(tr distributor.Trace) {
			if tr.Dialog == 2 {
				mu.Lock()
				outcomes = append(outcomes, tr.Outcome)
				mu.Unlock()
			}
		},
	}))
	f.open(t, dialog(1, 1))
	f.open(t, dialog(2, 1))
	require.Equal(t, 1, f.queueLen(t))
	f.gw.FailNext(1, errors.New("mg: 502 bad gateway"))
	f.close(t, 1) // the slot frees; MG refuses dialog 2 once, then takes it
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 2))
	require.Zero(t, f.queueLen(t))
	require.Equal(t, bd.ManagerOf(1), f.gw.Responsible(2))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []distributor.Outcome{distributor.OutcomeQueued, distributor.OutcomeQueued, distributor.OutcomeAssigned}, outcomes,
		"queued on arrival, queued again when MG refused, then assigned")
}

// failingDequeueStore is a memory store whose Dequeue fails when told to,
// as a database does when its connection is terminated.
type failingDequeueStore struct {
	*memory.Store
	failures
}

func (s *failingDequeueStore) Dequeue(ctx context.Context, acc bd.AccountID, d bd.DialogID) error {
	if s.fail() {
		return errTerminated
	}
	return s.Store.Dequeue(ctx, acc, d)
}

// A waiting dialog assigned in MG whose removal from the queue failed is not
// left in the queue: the drain fails, is tried again and finishes it.
func TestDrainFinishesWhatItLeftHalfDone(t *testing.T) {
	ids := managerIDs(1)
	st := &failingDequeueStore{Store: memory.New()}
	ctx := context.Background()
	require.NoError(t, st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 1)}))
	gw := &distributortest.Gateway{}
	d, err := distributor.New(acct, st, gw, distributor.WithWork(store.WorkOptions{Backoff: func(int) time.Duration { return time.Millisecond }}))
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.SetRoster(ctx, onlineManagers(ids)))
	for _, ev := range []distributor.Event{
		{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)},
		{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(2, 1)},
	} {
		require.NoError(t, d.Handle(ctx, ev))
		require.NoError(t, d.Flush(ctx))
	}
	st.set(1)
	require.NoError(t, d.Handle(ctx, distributor.Event{Kind: distributor.DialogClosed, Account: acct, Dialog: bd.Dialog{ID: 1}}))
	flush, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, d.Flush(flush))
	r, err := st.Responsible(ctx, acct, 2)
	require.NoError(t, err)
	require.Equal(t, bd.ManagerOf(1), r)
	require.Equal(t, bd.ManagerOf(1), gw.Responsible(2))
	waits, err := st.Waits(ctx, acct, 2)
	require.NoError(t, err)
	require.False(t, waits, "an assigned dialog left in the queue")
}

// blockingGateway holds MG's answer for one dialog until released, and
// reports every assignment MG took.
type blockingGateway struct {
	distributortest.Gateway
	dialog   bd.DialogID
	release  chan struct{}
	assigned chan bd.DialogID
}

func (g *blockingGateway) Assign(ctx context.Context, acc bd.AccountID, d bd.DialogID, to bd.Responsible) error {
	if d == g.dialog {
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := g.Gateway.Assign(ctx, acc, d, to); err != nil {
		return err
	}
	g.assigned <- d
	return nil
}

// blockingReplier holds every reply until released.
type blockingReplier struct{ release chan struct{} }

func (r blockingReplier) Reply(ctx context.Context, _ reply.Request) error {
	select {
	case <-r.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Latency does not pile up: Handle waits on no MG call, and a dialog's
// assignment waits neither on another dialog's assignment still in flight
// nor on any reply.
func TestAssignmentWaitsOnNothingElse(t *testing.T) {
	ids := managerIDs(2)
	st := memory.New()
	ctx := context.Background()
	require.NoError(t, st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 5)}))
	gw := &blockingGateway{dialog: 1, release: make(chan struct{}), assigned: make(chan bd.DialogID, 4)}
	replies := blockingReplier{release: make(chan struct{})}
	d, err := distributor.New(acct, st, gw, distributor.WithReplier(replies))
	require.NoError(t, err)
	defer d.Close()
	defer close(replies.release)
	require.NoError(t, d.SetRoster(ctx, onlineManagers(ids)))
	for i := 1; i <= 2; i++ {
		// Returns although MG holds dialog 1's assignment.
		require.NoError(t, d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(i, 1)}))
	}
	next := func(why string) bd.DialogID {
		t.Helper()
		select {
		case id := <-gw.assigned:
			return id
		case <-time.After(10 * time.Second):
			t.Fatal(why)
			return 0
		}
	}
	// Dialog 2 is assigned in MG while dialog 1's assignment is held and
	// every greeting too.
	require.Equal(t, bd.DialogID(2), next("dialog 2 waited behind dialog 1's assignment or a reply"))
	close(gw.release)
	require.Equal(t, bd.DialogID(1), next("dialog 1 was never assigned once MG answered"))
}

// interruptingReplier hangs in its first reply until the worker is
// stopped, as a send under way when the process stops; then it records.
type interruptingReplier struct {
	mu       sync.Mutex
	hung     chan struct{}
	attempts []int
}

func (r *interruptingReplier) Reply(ctx context.Context, req reply.Request) error {
	r.mu.Lock()
	first := r.attempts == nil
	r.attempts = append(r.attempts, req.Attempt)
	r.mu.Unlock()
	if first && req.Situation == bd.DialogReceived {
		close(r.hung)
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// A reply cut short by a stop may have reached MG: its next attempt is
// told it is a retry, so that the replier looks before sending again.
func TestInterruptedReplyIsRetriedAsARetry(t *testing.T) {
	ids := managerIDs(1)
	st := memory.New()
	ctx := context.Background()
	require.NoError(t, st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 5)}))
	rep := &interruptingReplier{hung: make(chan struct{})}
	d, err := distributor.New(acct, st, &distributortest.Gateway{}, distributor.WithReplier(rep))
	require.NoError(t, err)
	require.NoError(t, d.SetRoster(ctx, onlineManagers(ids)))
	require.NoError(t, d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Dialog: dialog(1, 1)}))
	<-rep.hung
	require.NoError(t, d.Close())

	again, err := distributor.New(acct, st, &distributortest.Gateway{}, distributor.WithReplier(rep))
	require.NoError(t, err)
	defer again.Close()
	require.NoError(t, again.SetRoster(ctx, onlineManagers(ids)))
	require.NoError(t, again.Flush(ctx))
	rep.mu.Lock()
	defer rep.mu.Unlock()
	require.GreaterOrEqual(t, len(rep.attempts), 2)
	// The greeting's second run: attempt 2.
	require.Equal(t, 1, rep.attempts[0])
	require.Contains(t, rep.attempts[1:], 2, "the interrupted greeting is sent again as a retry: attempts %v", rep.attempts)
}
