package distributor_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

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
	if err == nil || !strings.Contains(err.Error(), "nil store") {
		t.Fatalf("got error %v, want one containing %q", err, "nil store")
	}
	_, err = distributor.New(acct, st, nil)
	if err == nil || !strings.Contains(err.Error(), "nil gateway") {
		t.Fatalf("got error %v, want one containing %q", err, "nil gateway")
	}
	_, err = distributor.New(acct, st, gw, distributor.WithStrategy(nil), distributor.WithSweep(0), nil)
	if err == nil {
		t.Fatal("New with invalid options: no error, want one")
	}
	for _, want := range []string{"WithStrategy: nil strategy", "WithSweep: interval must be positive", "nil option"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("got error %v, want one containing %q", err, want)
		}
	}
	_, err = distributor.New("", st, gw)
	if err == nil || !strings.Contains(err.Error(), "empty account id") {
		t.Fatalf("got error %v, want one containing %q", err, "empty account id")
	}
	_, err = distributor.New(acct, st, gw, distributor.WithWork(store.WorkOptions{Accounts: []bd.AccountID{"other.example"}}))
	if err == nil || !strings.Contains(err.Error(), `Accounts must be empty or name only the distributor's account "shop.example"`) {
		t.Fatalf("got error %v, want one containing %q", err, `Accounts must be empty or name only the distributor's account "shop.example"`)
	}
	d, err := distributor.New(acct, st, gw, distributor.WithWork(store.WorkOptions{Accounts: []bd.AccountID{acct}}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Account(), acct; got != want {
		t.Fatalf("d.Account() = %v, want %v", got, want)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = distributor.New(acct, st, gw)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil {
		t.Fatal("New returned a nil Distributor and no error")
	}
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
			if err := f.d.Handle(ctx, ev); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f.flush(t)
	if got := len(f.gw.Calls()); got != 1 {
		t.Fatalf("len(f.gw.Calls()) = %d, want 1", got)
	}
	if got, want := f.rec.Count(dl.ID, bd.DialogReceived), 1; got != want {
		t.Fatalf("f.rec.Count(dl.ID, bd.DialogReceived) = %v, want %v", got, want)
	}
	if got, want := f.rec.Count(dl.ID, bd.ManagerAssigned), 1; got != want {
		t.Fatalf("f.rec.Count(dl.ID, bd.ManagerAssigned) = %v, want %v", got, want)
	}
	if got, want := f.checkInvariants(t, ids, 5), 1; got != want {
		t.Fatalf("f.checkInvariants(t, ids, 5) = %v, want %v", got, want)
	}

	// A late duplicate dialog_opened after the close does not reopen anything.
	f.close(t, dl.ID)
	f.open(t, dl)
	if got := len(f.gw.Calls()); got != 1 {
		t.Fatalf("len(f.gw.Calls()) = %d, want 1", got)
	}
	if r := f.responsible(t, dl.ID); !r.IsZero() {
		t.Fatalf("dialog %v: responsible %v, want nobody", dl.ID, r)
	}
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
	if got, want := f.gw.Responsible(1), bd.BotOf(900); got != want {
		t.Fatalf("f.gw.Responsible(1) = %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 1), bd.BotOf(900); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got := f.rec.Count(1, bd.DialogReceived); got != 0 {
		t.Fatalf("a bot's dialog gets no distributor reply: got %v, want 0", got)
	}

	for i := 2; i <= 11; i++ {
		f.open(t, dialog(i, 8))
		r := f.responsible(t, bd.DialogID(i))
		m, ok := r.Manager()
		if !ok {
			t.Fatalf("dialog %d: responsible %v, want a manager", i, r)
		}
		if m != 3 && m != 4 {
			t.Fatalf("channel 8 goes to managers 3 and 4 only: got %v, want 3 or 4", m)
		}
	}
	// Channel 8's two managers hold 5 each now; the default rule still has room.
	f.open(t, dialog(12, 8))
	if !f.responsible(t, 12).IsZero() {
		t.Fatal("channel 8's managers are full")
	}
	if got, want := f.rec.Count(12, bd.AllManagersBusy), 1; got != want {
		t.Fatalf("f.rec.Count(12, bd.AllManagersBusy) = %v, want %v", got, want)
	}
	f.open(t, dialog(13, 1))
	m, _ := f.responsible(t, 13).Manager()
	if m != 1 && m != 2 {
		t.Fatalf("the default rule still has room with managers 1 and 2: got %v, want 1 or 2", m)
	}

	tr, err := f.d.Decide(context.Background(), dialog(14, 8))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr.Outcome, distributor.OutcomeQueued; got != want {
		t.Fatalf("tr.Outcome = %v, want %v", got, want)
	}
	if got, want := sorted(tr.RemovedBy(distributor.FilterChannel)), []bd.ManagerID{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("RemovedBy(FilterChannel) = %v, want %v", got, want)
	}
	if got, want := sorted(tr.RemovedBy(distributor.FilterCapacity)), []bd.ManagerID{3, 4}; !slices.Equal(got, want) {
		t.Fatalf("RemovedBy(FilterCapacity) = %v, want %v", got, want)
	}
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
			if err != nil {
				t.Fatal(err)
			}
			var got []bd.ManagerID
			for _, c := range tr.Candidates {
				got = append(got, c.Manager)
			}
			if !slices.Equal(got, tc.eligible) {
				t.Fatalf("candidates = %v, want %v", got, tc.eligible)
			}
			if got, want := sorted(tr.RemovedBy(distributor.FilterOffline)), sorted(tc.offline); !slices.Equal(got, want) {
				t.Fatalf("RemovedBy(FilterOffline) = %v, want %v", got, want)
			}
			if got, want := sorted(tr.RemovedBy(distributor.FilterStatus)), sorted(tc.status); !slices.Equal(got, want) {
				t.Fatalf("RemovedBy(FilterStatus) = %v, want %v", got, want)
			}
			if got, want := tr.RemovedBy(distributor.FilterInactive), []bd.ManagerID{5}; !slices.Equal(got, want) {
				t.Fatalf("tr.RemovedBy(distributor.FilterInactive) = %v, want %v", got, want)
			}
			if got, want := tr.RemovedBy(distributor.FilterRoster), []bd.ManagerID{6}; !slices.Equal(got, want) {
				t.Fatalf("tr.RemovedBy(distributor.FilterRoster) = %v, want %v", got, want)
			}
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
	if got, want := f.queueLen(t), 2; got != want {
		t.Fatalf("f.queueLen(t) = %v, want %v", got, want)
	}
	if got, want := f.rec.Count(1, bd.NoManagerOnline), 1; got != want {
		t.Fatalf("f.rec.Count(1, bd.NoManagerOnline) = %v, want %v", got, want)
	}
	if got := f.gw.Calls(); len(got) != 0 {
		t.Fatalf("f.gw.Calls() = %v, want empty", got)
	}

	on := offline[1]
	on.Online = true
	if err := f.d.Handle(context.Background(), distributor.Event{Kind: distributor.ManagerChanged, Account: acct, Manager: on}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.responsible(t, 1), bd.ManagerOf(2); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 2), bd.ManagerOf(2); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
	if got := f.queueLen(t); got != 0 {
		t.Fatalf("f.queueLen(t) = %v, want 0", got)
	}
	tr, err := f.d.Recent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) == 0 {
		t.Fatal("no recent traces, want one")
	}
	if !tr[0].FromQueue {
		t.Fatal("tr[0].FromQueue = false, want true")
	}
	if got, want := tr[0].Outcome, distributor.OutcomeAssigned; got != want {
		t.Fatalf("tr[0].Outcome = %v, want %v", got, want)
	}
}

func TestRepliesNameTheManagerAndCustomer(t *testing.T) {
	ids := managerIDs(2)
	sent := replytest.NewRecorder()
	tmpl, err := reply.NewTemplate(sent)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, settingsFor(ids, 2), onlineManagers(ids), distributor.WithReplier(tmpl))
	f.open(t, dialog(1, 1))
	if got, want := sent.ToChat(1001), []string{"Hello Customer No1, we got your message.", "Manager 1 will answer you."}; !slices.Equal(got, want) {
		t.Fatalf("sent.ToChat(1001) = %v, want %v", got, want)
	}
}

func TestOutsideWorkingHours(t *testing.T) {
	ids := managerIDs(2)
	s := settingsFor(ids, 2)
	s.Hours = bd.WorkingHours{TimeZone: "Europe/Moscow"}
	s.Hours.Week[time.Monday] = []bd.Span{{Start: 9 * 60, End: 18 * 60}}
	f := newFixture(t, s, onlineManagers(ids))
	f.clock.Set(time.Date(2026, 3, 2, 19, 0, 0, 0, time.UTC)) // 22:00 in Moscow
	f.open(t, dialog(1, 1))
	if r := f.responsible(t, 1); !r.IsZero() {
		t.Fatalf("dialog 1: responsible %v, want nobody", r)
	}
	if got, want := f.rec.Count(1, bd.OutsideWorkingHours), 1; got != want {
		t.Fatalf("f.rec.Count(1, bd.OutsideWorkingHours) = %v, want %v", got, want)
	}
	tr, err := f.d.Decide(context.Background(), dialog(2, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sorted(tr.RemovedBy(distributor.FilterHours)), sorted(ids); !slices.Equal(got, want) {
		t.Fatalf("RemovedBy(FilterHours) = %v, want %v", got, want)
	}

	f.clock.Set(time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)) // 10:00 in Moscow
	f.d.Sweep(context.Background())
	if f.responsible(t, 1).IsZero() {
		t.Fatal("opening hours let the sweep assign the waiting dialog")
	}
	if got, want := f.rec.Count(1, bd.OutsideWorkingHours), 1; got != want {
		t.Fatalf("the reply is sent once: got %v, want %v", got, want)
	}
}

func TestAssignedByPersonInMG(t *testing.T) {
	ids := managerIDs(2)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids))
	ctx := context.Background()
	f.open(t, dialog(1, 1))
	f.open(t, dialog(2, 1))
	f.open(t, dialog(3, 1)) // waits: both managers hold one
	if got, want := f.queueLen(t), 1; got != want {
		t.Fatalf("f.queueLen(t) = %v, want %v", got, want)
	}
	first, _ := f.responsible(t, 1).Manager()

	// A person moves dialog 1 to a bot in MG: the manager's slot frees and
	// the waiting dialog takes it.
	if err := f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogAssigned, Account: acct, Dialog: bd.Dialog{ID: 1}, Responsible: bd.BotOf(77)}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.responsible(t, 1), bd.BotOf(77); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 3), bd.ManagerOf(first); got != want {
		t.Fatalf("f.responsible(t, 3) = %v, want %v", got, want)
	}
	if got := f.queueLen(t); got != 0 {
		t.Fatalf("f.queueLen(t) = %v, want 0", got)
	}

	// The echo of the distributor's own assignment changes nothing.
	before := len(f.gw.Calls())
	if err := f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogAssigned, Account: acct, Dialog: bd.Dialog{ID: 3}, Responsible: bd.ManagerOf(first)}); err != nil {
		t.Fatal(err)
	}
	if got := len(f.gw.Calls()); got != before {
		t.Fatalf("len(f.gw.Calls()) = %d, want %d", got, before)
	}

	// A person pushes a dialog onto a full manager: the store follows MG.
	other := bd.ManagerID(3) - first
	if err := f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogAssigned, Account: acct, Dialog: bd.Dialog{ID: 1}, Responsible: bd.ManagerOf(other)}); err != nil {
		t.Fatal(err)
	}
	loads, err := f.st.Loads(ctx, acct, []bd.ManagerID{other}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := loads[0].Open, 2; got != want {
		t.Fatalf("loads[0].Open = %v, want %v", got, want)
	}
}

func TestUnassignedByPersonIsDistributedAgain(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 3), onlineManagers(ids))
	f.open(t, dialog(1, 1))
	if err := f.d.Handle(context.Background(), distributor.Event{Kind: distributor.DialogAssigned, Account: acct, Dialog: dialog(1, 1)}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got := len(f.gw.Calls()); got != 2 {
		t.Fatalf("len(f.gw.Calls()) = %d, want 2", got)
	}
	if got, want := f.checkInvariants(t, ids, 3), 1; got != want {
		t.Fatalf("f.checkInvariants(t, ids, 3) = %v, want %v", got, want)
	}
}

func TestDecideIsADryRun(t *testing.T) {
	ids := managerIDs(3)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids))
	f.open(t, dialog(1, 1))
	tr, err := f.d.Decide(context.Background(), dialog(2, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !tr.DryRun {
		t.Fatal("tr.DryRun = false, want true")
	}
	if got, want := tr.Outcome, distributor.OutcomeAssigned; got != want {
		t.Fatalf("tr.Outcome = %v, want %v", got, want)
	}
	if got := len(tr.Candidates); got != 2 {
		t.Fatalf("len(tr.Candidates) = %d, want 2", got)
	}
	if got := len(tr.RemovedBy(distributor.FilterCapacity)); got != 1 {
		t.Fatalf("len(tr.RemovedBy(distributor.FilterCapacity)) = %d, want 1", got)
	}
	if tr.Choice.Reason == "" {
		t.Fatal("tr.Choice.Reason is empty, want a reason")
	}
	if got := tr.String(); !strings.Contains(got, "removed manager") {
		t.Fatalf("tr.String() = %q, want it to contain %q", got, "removed manager")
	}
	if got := tr.String(); !strings.Contains(got, "at_capacity") {
		t.Fatalf("tr.String() = %q, want it to contain %q", got, "at_capacity")
	}

	if got := len(f.gw.Calls()); got != 1 {
		t.Fatalf("a dry run sends nothing to MG: got %d, want 1", got)
	}
	if !f.responsible(t, 2).IsZero() {
		t.Fatal("a dry run reserves nothing")
	}
	if got := f.rec.Count(2, bd.DialogReceived); got != 0 {
		t.Fatalf("a dry run replies nothing: got %v, want 0", got)
	}
	// The real event afterwards is not mistaken for a duplicate.
	f.open(t, dialog(2, 1))
	if f.responsible(t, 2).IsZero() {
		t.Fatal("dialog 2: responsible nobody, want someone")
	}
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
	if !errors.As(err, &se) {
		t.Fatalf("SaveSettings = %v, want a *SettingsError", err)
	}
	if got, want := sorted(se.EmptyReplies()), []bd.Situation{bd.NoManagerOnline, bd.OutsideWorkingHours}; !slices.Equal(got, want) {
		t.Fatalf("EmptyReplies() = %v, want %v", got, want)
	}
	if got := err.Error(); !strings.Contains(got, "replies.no_manager_online: is empty") {
		t.Fatalf("err.Error() = %q, want it to contain %q", got, "replies.no_manager_online: is empty")
	}
	if got := err.Error(); !strings.Contains(got, "replies.outside_working_hours: is empty") {
		t.Fatalf("err.Error() = %q, want it to contain %q", got, "replies.outside_working_hours: is empty")
	}
	if got := err.Error(); !strings.Contains(got, `unknown strategy "fastest_typist"`) {
		t.Fatalf("err.Error() = %q, want it to contain %q", got, `unknown strategy "fastest_typist"`)
	}

	cur, err := f.d.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cur, good) {
		t.Fatalf("the settings in force are unchanged: got %v, want %v", cur, good)
	}
	stored, err := f.st.Account(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stored.Settings, good; !reflect.DeepEqual(got, want) {
		t.Fatalf("the stored settings are unchanged: got %v, want %v", got, want)
	}

	better := good.Clone()
	better.DefaultCapacity = 9
	better.Strategy = strategy.NameLeastLoaded
	if err := f.d.SaveSettings(ctx, better); err != nil {
		t.Fatal(err)
	}
	stored, err = f.st.Account(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stored.Settings.DefaultCapacity, 9; got != want {
		t.Fatalf("stored.Settings.DefaultCapacity = %v, want %v", got, want)
	}
	tr, err := f.d.Decide(ctx, dialog(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr.Strategy, strategy.NameLeastLoaded; got != want {
		t.Fatalf("tr.Strategy = %v, want %v", got, want)
	}
	if got, want := tr.Candidates[0].Capacity, 9; got != want {
		t.Fatalf("tr.Candidates[0].Capacity = %v, want %v", got, want)
	}
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
			if !errors.Is(err, distributor.ErrBadEvent) {
				t.Fatalf("got %v, want distributor.ErrBadEvent", err)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// An event without an account is the distributor's.
	if err := f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogClosed, Dialog: bd.Dialog{ID: 7}}); err != nil {
		t.Fatal(err)
	}
	nobody, err := distributor.New("nobody.example", f.st, f.gw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nobody.Close() })
	err = nobody.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Dialog: bd.Dialog{ID: 1}})
	if !errors.Is(err, distributor.ErrUnknownAccount) {
		t.Fatalf("got %v, want distributor.ErrUnknownAccount", err)
	}
	if got := f.gw.Calls(); len(got) != 0 {
		t.Fatalf("bad events change nothing: got %v, want empty", got)
	}
	if got := f.queueLen(t); got != 0 {
		t.Fatalf("f.queueLen(t) = %v, want 0", got)
	}
}

func TestGatewayFailureLeavesDialogWaiting(t *testing.T) {
	// On synctest's fake clock the retry a second after MG's refusal takes no
	// real time.
	synctest.Test(t, func(t *testing.T) {
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
					if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("a refused dialog's slot is given back: got %v, want store.ErrNotFound", err)
					}
				case distributor.OutcomeAssigned:
					assigned++
				}
			},
		}))
		f.gw.FailNext(1, errors.New("mg: 503"))
		if err := f.d.Handle(context.Background(), distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}); err != nil {
			t.Fatal(err)
		}
		// The refused dialog waits, and the queue is drained for it again.
		if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
			t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
		}
		if got := f.queueLen(t); got != 0 {
			t.Fatalf("f.queueLen(t) = %v, want 0", got)
		}
		if got, want := f.checkInvariants(t, ids, 1), 1; got != want {
			t.Fatalf("f.checkInvariants(t, ids, 1) = %v, want %v", got, want)
		}
		mu.Lock()
		if !slices.Contains(failures, "gateway.assign") {
			t.Fatalf("failures = %q, want it to contain %q", failures, "gateway.assign")
		}
		if queued != 1 {
			t.Fatalf("the refused dialog waited: got %v, want 1", queued)
		}
		if assigned != 1 {
			t.Fatalf("assigned = %v, want 1", assigned)
		}
		mu.Unlock()
		if got, want := f.rec.Count(1, bd.DialogReceived), 1; got != want {
			t.Fatalf("f.rec.Count(1, bd.DialogReceived) = %v, want %v", got, want)
		}
		if got, want := f.rec.Count(1, bd.ManagerAssigned), 1; got != want {
			t.Fatalf("f.rec.Count(1, bd.ManagerAssigned) = %v, want %v", got, want)
		}
		if got := len(f.gw.Calls()); got != 1 {
			t.Fatalf("MG took one assignment: got %d, want 1", got)
		}
	})
}

func TestGoneDialogIsClosed(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids))
	f.gw.FailNext(1, fmt.Errorf("%w: MG lists it inactive", distributor.ErrDialogGone))
	f.open(t, dialog(1, 1))
	if r := f.responsible(t, 1); !r.IsZero() {
		t.Fatalf("dialog 1: responsible %v, want nobody", r)
	}
	if got := f.queueLen(t); got != 0 {
		t.Fatalf("f.queueLen(t) = %v, want 0", got)
	}
	if got := f.checkInvariants(t, ids, 1); got != 0 {
		t.Fatalf("the slot is free again: got %v, want 0", got)
	}
	f.open(t, dialog(2, 1))
	if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
}

func TestReplyFailureIsRetried(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids), distributor.WithWork(store.WorkOptions{Backoff: func(int) time.Duration { return time.Millisecond }}))
	f.rec.FailNext(2, errors.New("mg: timeout"))
	f.open(t, dialog(1, 1))
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("a failed reply does not block the assignment: got %v, want %v", got, want)
	}
	if got, want := f.rec.Count(1, bd.DialogReceived), 1; got != want {
		t.Fatalf("the failed reply was sent by a retry, once: got %v, want %v", got, want)
	}
	if got, want := f.rec.Count(1, bd.ManagerAssigned), 1; got != want {
		t.Fatalf("f.rec.Count(1, bd.ManagerAssigned) = %v, want %v", got, want)
	}
	claimed, err := f.st.ClaimReply(context.Background(), acct, 1, bd.DialogReceived)
	if err != nil {
		t.Fatal(err)
	}
	if claimed {
		t.Fatal("the reply stays claimed")
	}
}

// The greeting landed but its answer was lost: the job of the greeting
// and the "manager assigned" reply is tried again, the retry finds the
// greeting in the chat instead of sending it again, and sends the second.
func TestTwoReplyJobRetriedAfterItsFirstLanded(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids), distributor.WithWork(store.WorkOptions{Backoff: func(int) time.Duration { return time.Millisecond }}))
	f.rec.FailAfterNext(1, errors.New("mg: timeout after the message was taken"))
	f.open(t, dialog(1, 1))
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("responsible of dialog 1 = %v, want %v", got, want)
	}
	for _, sit := range []bd.Situation{bd.DialogReceived, bd.ManagerAssigned} {
		if got := f.rec.Count(1, sit); got != 1 {
			t.Errorf("the %s reply was sent %d times, want once", sit, got)
		}
	}
	if got, want := f.rec.ToChat(dialog(1, 1).Chat), 2; len(got) != want {
		t.Fatalf("the chat got %q, want %d texts", got, want)
	}
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
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	letters, err := f.d.DeadLetters(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 {
		t.Fatalf("the job of the greeting and the \"manager assigned\" reply failed past its budget: got %d, want 1", len(letters))
	}
	l := letters[0]
	if got, want := l.Kind, store.JobReply; got != want {
		t.Fatalf("l.Kind = %v, want %v", got, want)
	}
	if got, want := l.First, bd.DialogReceived; got != want {
		t.Fatalf("l.First = %v, want %v", got, want)
	}
	if got, want := l.Situation, bd.ManagerAssigned; got != want {
		t.Fatalf("l.Situation = %v, want %v", got, want)
	}
	if got, want := l.Attempt, 3; got != want {
		t.Fatalf("l.Attempt = %v, want %v", got, want)
	}
	if got := l.Err; !strings.Contains(got, "mg: 502") {
		t.Fatalf("l.Err = %q, want it to contain %q", got, "mg: 502")
	}
	mu.Lock()
	if len(dead) != 1 {
		t.Fatalf("len(dead) = %d, want 1", len(dead))
	}
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
	if err := f.d.Resync(ctx, open); err != nil {
		t.Fatal(err)
	}
	if !f.responsible(t, 1).IsZero() {
		t.Fatal("a dialog MG no longer lists is released")
	}
	if got, want := f.responsible(t, 2), bd.ManagerOf(2); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
	if f.responsible(t, 3).IsZero() {
		t.Fatal("a missed dialog is distributed")
	}
	if got, want := f.responsible(t, 4), bd.BotOf(9); got != want {
		t.Fatalf("f.responsible(t, 4) = %v, want %v", got, want)
	}
	if got, want := f.rec.Count(3, bd.ManagerAssigned), 1; got != want {
		t.Fatalf("f.rec.Count(3, bd.ManagerAssigned) = %v, want %v", got, want)
	}
	held := f.checkInvariants(t, ids, 5)
	if held != 2 {
		t.Fatalf("held = %v, want 2", held)
	}

	// Resync is idempotent once MG reports what the distributor did.
	open[1].Responsible = f.gw.Responsible(3)
	calls := len(f.gw.Calls())
	if err := f.d.Resync(ctx, open); err != nil {
		t.Fatal(err)
	}
	if got := len(f.gw.Calls()); got != calls {
		t.Fatalf("len(f.gw.Calls()) = %d, want %d", got, calls)
	}

	err := f.d.Resync(ctx, []distributor.OpenDialog{{Dialog: bd.Dialog{ID: -4}}})
	if !errors.Is(err, distributor.ErrBadEvent) {
		t.Fatalf("got %v, want distributor.ErrBadEvent", err)
	}
}

func TestStrategyChoosingAnOutsiderIsAnError(t *testing.T) {
	ids := managerIDs(2)
	bad := strategy.Func(func(context.Context, strategy.Request) (strategy.Choice, error) {
		return strategy.Choice{Manager: 42}, nil
	})
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids), distributor.WithStrategy(bad),
		distributor.WithWork(store.WorkOptions{MaxAttempts: 2, Backoff: func(int) time.Duration { return time.Millisecond }}))
	if err := f.d.Handle(context.Background(), distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}); err != nil {
		t.Fatal(err)
	}
	f.flush(t)
	letters, err := f.d.DeadLetters(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 {
		t.Fatalf("len(letters) = %d, want 1", len(letters))
	}
	if got, want := letters[0].Kind, store.JobDistribute; got != want {
		t.Fatalf("letters[0].Kind = %v, want %v", got, want)
	}
	if got := letters[0].Err; !strings.Contains(got, "chose manager 42, who is not a candidate") {
		t.Fatalf("letters[0].Err = %q, want it to contain %q", got, "chose manager 42, who is not a candidate")
	}
	if got := f.gw.Calls(); len(got) != 0 {
		t.Fatalf("f.gw.Calls() = %v, want empty", got)
	}
}

// TestSecretsNeverInTraceOrErrors runs the paths that log, trace and
// return errors (a refused MG assignment, a failed reply, a bad event)
// for an account with secrets, and looks for them in everything produced.
func TestSecretsNeverInTraceOrErrors(t *testing.T) {
	// On synctest's fake clock the retry a second after MG's refusal takes no
	// real time.
	synctest.Test(t, func(t *testing.T) {
		st := memory.New()
		ctx := context.Background()
		ids := managerIDs(1)
		if err := st.SaveAccount(ctx, bd.Account{ID: acct, APIKey: "crm-key-123", MGToken: "mg-token-456", Settings: settingsFor(ids, 1)}); err != nil {
			t.Fatal(err)
		}
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
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.SetRoster(ctx, onlineManagers(ids)); err != nil {
			t.Fatal(err)
		}
		gw.FailNext(1, nil)
		rec.FailNext(1, nil)
		outputs := []string{err2s(d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}))}
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		d.Sweep(ctx)
		tr, err := d.Decide(ctx, dialog(2, 1))
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, tr.String(), err2s(d.Handle(ctx, distributor.Event{Kind: 77, Account: acct})), logs.String())
		outputs = append(outputs, failures...)
		if logs.String() == "" {
			t.Fatal("the failure paths log")
		}
		if got := len(failures); got < 2 {
			t.Fatalf("the gateway and the replier failed: got %v, want >= 2", got)
		}
		for _, s := range outputs {
			if strings.Contains(s, "crm-key-123") || strings.Contains(s, "mg-token-456") {
				t.Fatalf("%s: got a secret, want none", s)
			}
		}
	})
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
		if err := f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogClosed, Account: acct, Dialog: bd.Dialog{ID: id}}); err != nil {
			t.Error(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w + 1; i <= dialogs; i += 16 {
				dl := dialog(i, 1)
				if err := f.d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dl}); err != nil {
					t.Error(err)
				}
				switch i % 5 {
				case 0, 1:
					closeDialog(dl.ID)
				case 2:
					m := onlineManagers(ids)[i%len(ids)]
					m.Online = i%4 != 0
					if err := f.d.Handle(ctx, distributor.Event{Kind: distributor.ManagerChanged, Account: acct, Manager: m}); err != nil {
						t.Error(err)
					}
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
	if err := f.d.SetRoster(ctx, onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	held := f.checkInvariants(t, ids, capacity)
	waiting := f.queueLen(t)
	open := 0
	for i := 1; i <= dialogs; i++ {
		r := f.responsible(t, bd.DialogID(i))
		if _, ok := closed.Load(bd.DialogID(i)); ok {
			if !r.IsZero() {
				t.Fatalf("closed dialog %d still held by %s", i, r)
			}
			continue
		}
		open++
	}
	if got, want := held+waiting, open; got != want {
		t.Fatalf("every open dialog is assigned or waiting: got %v, want %v", got, want)
	}
	if waiting > 0 {
		if got, want := held, len(ids)*capacity; got != want {
			t.Fatalf("dialogs wait only when everyone is full: got %v, want %v", got, want)
		}
	}
}

func TestGoneDialogIsClosedNotQueued(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 1), onlineManagers(ids))
	f.gw.FailNext(1, fmt.Errorf("mg: dialog is not the latest in the chat: %w", distributor.ErrDialogGone))
	f.open(t, dialog(1, 1))
	if r := f.responsible(t, 1); !r.IsZero() {
		t.Fatalf("dialog 1: responsible %v, want nobody", r)
	}
	if got := f.queueLen(t); got != 0 {
		t.Fatalf("a dialog MG can never assign does not wait: got %v, want 0", got)
	}
	if got := f.checkInvariants(t, ids, 1); got != 0 {
		t.Fatalf("its slot is free again: got %v, want 0", got)
	}
	f.open(t, dialog(2, 1))
	if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
}

func TestResyncLeavesNewerDialogsAlone(t *testing.T) {
	ids := managerIDs(1)
	f := newFixture(t, settingsFor(ids, 5), onlineManagers(ids))
	f.open(t, dialog(5, 1)) // opened (by any process) after MG's list was read
	if err := f.d.Resync(context.Background(), []distributor.OpenDialog{{Dialog: dialog(3, 1)}}); err != nil {
		t.Fatal(err)
	}
	if got, want := f.responsible(t, 5), bd.ManagerOf(1); got != want {
		t.Fatalf("a dialog newer than MG's list is not taken for closed: got %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 3), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 3) = %v, want %v", got, want)
	}
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
	if err := f.d.Resync(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	if got, want := f.responsible(t, 1), held1; got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
	if got, want := f.responsible(t, 2), held2; got != want {
		t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
	}
	if got, want := f.gw.Responsible(1), held1; got != want {
		t.Fatalf("MG is told the store's responsible again: got %v, want %v", got, want)
	}
	if got, want := f.gw.Responsible(2), held2; got != want {
		t.Fatalf("f.gw.Responsible(2) = %v, want %v", got, want)
	}
	if got, want := f.checkInvariants(t, ids, 1), 2; got != want {
		t.Fatalf("f.checkInvariants(t, ids, 1) = %v, want %v", got, want)
	}
}

// A dialog reserved in the store by a distribution that stopped before MG
// heard of it (its process died) is finished by the next distribution:
// MG is told, the customer told who answers.
func TestReservationWithoutMGIsFinished(t *testing.T) {
	ids := managerIDs(2)
	f := newFixture(t, settingsFor(ids, 3), onlineManagers(ids))
	ctx := context.Background()
	if err := f.st.Assign(ctx, store.Assignment{Account: acct, Dialog: 1, Customer: 5001, To: bd.ManagerOf(2), Capacity: 3, At: t0}); err != nil {
		t.Fatal(err)
	}
	f.open(t, dialog(1, 1))
	if got, want := f.gw.Responsible(1), bd.ManagerOf(2); got != want {
		t.Fatalf("MG is told what the store holds: got %v, want %v", got, want)
	}
	if got, want := f.rec.Count(1, bd.ManagerAssigned), 1; got != want {
		t.Fatalf("f.rec.Count(1, bd.ManagerAssigned) = %v, want %v", got, want)
	}
	if got, want := f.checkInvariants(t, ids, 3), 1; got != want {
		t.Fatalf("f.checkInvariants(t, ids, 3) = %v, want %v", got, want)
	}
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
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 1)}); err != nil {
		t.Fatal(err)
	}
	var failed []string
	var mu sync.Mutex
	d, err := distributor.New(acct, st, &distributortest.Gateway{}, distributor.WithHooks(distributor.Hooks{
		Failed: func(_ bd.AccountID, op string, _ error) { mu.Lock(); failed = append(failed, op); mu.Unlock() },
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SetRoster(ctx, onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}); err != nil {
		t.Fatal(err)
	}
	flushDistributor(t, d, "the workers never started again")
	r, err := st.Responsible(ctx, acct, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r != bd.ManagerOf(1) {
		t.Fatalf("r = %v, want %v", r, bd.ManagerOf(1))
	}
	mu.Lock()
	if got, want := failed, []string{"work", "work"}; !slices.Equal(got, want) {
		t.Fatalf("failed = %v, want %v", got, want)
	}
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
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 1)}); err != nil {
		t.Fatal(err)
	}
	rec := replytest.NewRecorder()
	d, err := distributor.New(acct, st, &distributortest.Gateway{}, distributor.WithReplier(rec),
		distributor.WithWork(store.WorkOptions{Backoff: func(int) time.Duration { return time.Millisecond }}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SetRoster(ctx, onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}); err != nil {
		t.Fatal(err)
	}
	// A duplicate delivery adds nothing: the work is stored already.
	if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}); err != nil {
		t.Fatal(err)
	}
	flushDistributor(t, d, "the distributor's jobs did not finish")
	r, err := st.Responsible(ctx, acct, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r != bd.ManagerOf(1) {
		t.Fatalf("r = %v, want %v", r, bd.ManagerOf(1))
	}
	if got, want := rec.Count(1, bd.DialogReceived), 1; got != want {
		t.Fatalf("rec.Count(1, bd.DialogReceived) = %v, want %v", got, want)
	}
	if got, want := rec.Count(1, bd.ManagerAssigned), 1; got != want {
		t.Fatalf("rec.Count(1, bd.ManagerAssigned) = %v, want %v", got, want)
	}
}

// A waiting dialog MG refuses to take stays in the queue (never leaves it
// unassigned) and is assigned once MG takes it.
func TestRefusedWaitingDialogStaysQueued(t *testing.T) {
	// On synctest's fake clock the retry a second after MG's refusal takes no
	// real time.
	synctest.Test(t, func(t *testing.T) {
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
		if got, want := f.queueLen(t), 1; got != want {
			t.Fatalf("f.queueLen(t) = %v, want %v", got, want)
		}
		f.gw.FailNext(1, errors.New("mg: 502 bad gateway"))
		f.close(t, 1) // the slot frees; MG refuses dialog 2 once, then takes it
		if got, want := f.responsible(t, 2), bd.ManagerOf(1); got != want {
			t.Fatalf("f.responsible(t, 2) = %v, want %v", got, want)
		}
		if got := f.queueLen(t); got != 0 {
			t.Fatalf("f.queueLen(t) = %v, want 0", got)
		}
		if got, want := f.gw.Responsible(2), bd.ManagerOf(1); got != want {
			t.Fatalf("f.gw.Responsible(2) = %v, want %v", got, want)
		}
		mu.Lock()
		defer mu.Unlock()
		if want := []distributor.Outcome{distributor.OutcomeQueued, distributor.OutcomeQueued, distributor.OutcomeAssigned}; !slices.Equal(outcomes, want) {
			t.Fatalf("queued on arrival, queued again when MG refused, then assigned: got %v, want %v", outcomes, want)
		}
	})
}

// A dialog MG keeps refusing does not hold up the dialogs waiting behind
// it: the drain passes it over and hands them the free slots; it is tried
// again after a pause, and assigned once MG takes it.
func TestDrainGoesPastADialogMGRefuses(t *testing.T) {
	// On synctest's fake clock the retry a second after MG's refusal takes no
	// real time.
	synctest.Test(t, func(t *testing.T) {
		ids := managerIDs(1)
		assigned := make(chan bd.DialogID, 10)
		f := newFixture(t, settingsFor(ids, 3), nil, distributor.WithHooks(distributor.Hooks{
			Decision: func(tr distributor.Trace) {
				if tr.Outcome == distributor.OutcomeAssigned {
					assigned <- tr.Dialog
				}
			},
		}))
		for id := 1; id <= 3; id++ {
			f.open(t, dialog(id, 1))
		}
		if got, want := f.queueLen(t), 3; got != want {
			t.Fatalf("nobody online: all three wait: got %v, want %v", got, want)
		}
		f.gw.Refuse(1, errors.New("mg: 502 bad gateway"))
		if err := f.d.SetRoster(context.Background(), onlineManagers(ids)); err != nil {
			t.Fatal(err)
		}
		got := map[bd.DialogID]bool{}
		for len(got) < 2 {
			select {
			case id := <-assigned:
				got[id] = true
			case <-time.After(10 * time.Second):
				t.Fatalf("assigned %v; want dialogs 2 and 3 while MG refuses dialog 1", got)
			}
		}
		if want := map[bd.DialogID]bool{2: true, 3: true}; !maps.Equal(got, want) {
			t.Fatalf("assigned %v, want %v", got, want)
		}
		if !f.gw.Responsible(1).IsZero() {
			t.Fatal("MG never took the refused dialog")
		}
		f.gw.Refuse(1, nil)
		select {
		case id := <-assigned:
			if id != 1 {
				t.Fatalf("assigned dialog %v, want 1", id)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("dialog 1 was not assigned once MG took it")
		}
		f.flush(t)
		if got := f.queueLen(t); got != 0 {
			t.Fatalf("f.queueLen(t) = %v, want 0", got)
		}
		if got, want := f.checkInvariants(t, ids, 3), 3; got != want {
			t.Fatalf("f.checkInvariants(t, ids, 3) = %v, want %v", got, want)
		}
	})
}

// rateLimited is MG's answer asking for a pause, as the mg client's
// rate-limit errors carry it.
type rateLimited time.Duration

func (r rateLimited) Error() string             { return "mg: 429 too many requests" }
func (r rateLimited) RetryAfter() time.Duration { return time.Duration(r) }

// A rate limit stops the account's drains until MG's pause is over: once
// the distributor has taken the refusal in, no waiting dialog is sent to MG
// before the pause passed, also not by the drains requested meanwhile.
// (Those already on their way when the refusal came back go on.)
func TestDrainPausesWhenMGAsksToSlowDown(t *testing.T) {
	// MG's pause passes in real time: the test compares when each
	// assignment began with it. It waits beside the other tests.
	t.Parallel()
	const dialogs, pause = 40, time.Second
	ctx := context.Background()
	ids := managerIDs(1)
	st := memory.New()
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, dialogs)}); err != nil {
		t.Fatal(err)
	}
	gw := &pausingGateway{pause: pause}
	var (
		mu        sync.Mutex
		refusedAt time.Time // when the distributor had taken the refusal in
	)
	hooks := distributor.Hooks{Decision: func(tr distributor.Trace) {
		if tr.Outcome == distributor.OutcomeQueued && tr.FromQueue {
			mu.Lock()
			if refusedAt.IsZero() {
				refusedAt = time.Now()
			}
			mu.Unlock()
		}
	}}
	d, err := distributor.New(acct, st, gw, distributor.WithReplier(&replytest.Recorder{}), distributor.WithHooks(hooks))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	})
	for id := 1; id <= dialogs; id++ {
		if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Dialog: dialog(id, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	flushDistributor(t, d, "nobody online: the dialogs wait")
	if err := d.SetRoster(ctx, onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	// Assignments already on their way when MG refused may land; none
	// may start after the refusal was taken in until MG's pause is over.
	deadline := time.Now().Add(10 * time.Second)
	for gw.assigned() < dialogs {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d dialogs assigned 10 s after MG's pause of %s", gw.assigned(), dialogs, pause)
		}
		time.Sleep(10 * time.Millisecond)
	}
	flushDistributor(t, d, "the last drain did not finish")
	mu.Lock()
	taken := refusedAt
	mu.Unlock()
	if taken.IsZero() {
		t.Fatal("no decision reported the refused dialog back in the queue")
	}
	pauseEnd := gw.refusedAt().Add(pause)
	for _, at := range gw.starts() {
		if at.After(taken) && at.Before(pauseEnd) {
			t.Errorf("an assignment began %s after the refusal was taken in, %s before MG's pause of %s was over", at.Sub(taken), pauseEnd.Sub(at), pause)
		}
	}
	n, err := st.QueueLen(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("queue length %d after the pause, want 0", n)
	}
}

// pausingGateway refuses its first assignment asking for a pause, as MG's
// rate limit does, and records when each assignment began.
type pausingGateway struct {
	distributortest.Gateway
	pause time.Duration

	mu      sync.Mutex
	refused time.Time // when the refusal was answered
	began   []time.Time
	landed  int
}

func (g *pausingGateway) Assign(ctx context.Context, acc bd.AccountID, id bd.DialogID, to bd.Responsible) error {
	// The call began when it was made, not when the recorder's lock was
	// had: with many calls at once (and the race detector) that can be a
	// millisecond later.
	began := time.Now()
	g.mu.Lock()
	if g.refused.IsZero() {
		g.refused = began
		g.mu.Unlock()
		return rateLimited(g.pause)
	}
	g.began = append(g.began, began)
	g.mu.Unlock()
	if err := g.Gateway.Assign(ctx, acc, id, to); err != nil {
		return err
	}
	g.mu.Lock()
	g.landed++
	g.mu.Unlock()
	return nil
}

func (g *pausingGateway) refusedAt() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused
}

func (g *pausingGateway) starts() []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.began)
}

func (g *pausingGateway) assigned() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.landed
}

// barrierGateway answers no assignment until n of them wait at once.
type barrierGateway struct {
	distributortest.Gateway
	n       int
	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func (g *barrierGateway) Assign(ctx context.Context, acc bd.AccountID, id bd.DialogID, to bd.Responsible) error {
	g.mu.Lock()
	if g.waiting++; g.waiting == g.n {
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Gateway.Assign(ctx, acc, id, to)
}

// The drain hands out free slots in the queue's order, but waits on MG for
// several dialogs at once: with MG 20 ms away, one at a time would hand
// out fewer than 50 slots a second.
func TestDrainWaitsOnMGForSeveralDialogsAtOnce(t *testing.T) {
	ctx := context.Background()
	ids := managerIDs(1)
	st := memory.New()
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 3)}); err != nil {
		t.Fatal(err)
	}
	gw := &barrierGateway{n: 3, open: make(chan struct{})}
	d, err := distributor.New(acct, st, gw, distributor.WithReplier(&replytest.Recorder{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	})
	for id := 1; id <= 3; id++ {
		if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Dialog: dialog(id, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := st.QueueLen(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("nobody online: all three wait: got %v, want 3", n)
	}
	if err := d.SetRoster(ctx, onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	flushDistributor(t, d, "MG answers only once three assignments wait on it at once")
	for id := 1; id <= 3; id++ {
		if got, want := gw.Responsible(bd.DialogID(id)), bd.ManagerOf(1); got != want {
			t.Fatalf("gw.Responsible(bd.DialogID(id)) = %v, want %v", got, want)
		}
	}
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
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 1)}); err != nil {
		t.Fatal(err)
	}
	gw := &distributortest.Gateway{}
	d, err := distributor.New(acct, st, gw, distributor.WithWork(store.WorkOptions{Backoff: func(int) time.Duration { return time.Millisecond }}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SetRoster(ctx, onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []distributor.Event{
		{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)},
		{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(2, 1)},
	} {
		if err := d.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st.set(1)
	if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogClosed, Account: acct, Dialog: bd.Dialog{ID: 1}}); err != nil {
		t.Fatal(err)
	}
	flushDistributor(t, d, "the distributor's jobs did not finish")
	r, err := st.Responsible(ctx, acct, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r != bd.ManagerOf(1) {
		t.Fatalf("r = %v, want %v", r, bd.ManagerOf(1))
	}
	if got, want := gw.Responsible(2), bd.ManagerOf(1); got != want {
		t.Fatalf("gw.Responsible(2) = %v, want %v", got, want)
	}
	waits, err := st.Waits(ctx, acct, 2)
	if err != nil {
		t.Fatal(err)
	}
	if waits {
		t.Fatal("an assigned dialog left in the queue")
	}
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
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 5)}); err != nil {
		t.Fatal(err)
	}
	gw := &blockingGateway{dialog: 1, release: make(chan struct{}), assigned: make(chan bd.DialogID, 4)}
	replies := blockingReplier{release: make(chan struct{})}
	d, err := distributor.New(acct, st, gw, distributor.WithReplier(replies))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	defer close(replies.release)
	if err := d.SetRoster(ctx, onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		// Returns although MG holds dialog 1's assignment.
		if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(i, 1)}); err != nil {
			t.Fatal(err)
		}
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
	if got, want := next("dialog 2 waited behind dialog 1's assignment or a reply"), bd.DialogID(2); got != want {
		t.Fatalf("next(\"dialog 2 waited behind dialog 1's assignment or a reply\") = %v, want %v", got, want)
	}
	close(gw.release)
	if got, want := next("dialog 1 was never assigned once MG answered"), bd.DialogID(1); got != want {
		t.Fatalf("next(\"dialog 1 was never assigned once MG answered\") = %v, want %v", got, want)
	}
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
	rep := &interruptingReplier{hung: make(chan struct{})}
	stopThenRestart(t, memory.New(), rep, rep.hung)
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if got := len(rep.attempts); got < 2 {
		t.Fatalf("len(rep.attempts) = %v, want >= 2", got)
	}
	// The greeting's second run: attempt 2.
	if got, want := rep.attempts[0], 1; got != want {
		t.Fatalf("rep.attempts[0] = %v, want %v", got, want)
	}
	if !slices.Contains(rep.attempts[1:], 2) {
		t.Fatalf("the interrupted greeting is sent again as a retry: attempts %v, want a 2 after the first", rep.attempts)
	}
}

// sorted returns a sorted copy of s, for comparing sets.
func sorted[T cmp.Ordered](s []T) []T {
	return slices.Sorted(slices.Values(s))
}

// ctxStore is a memory store whose reads of a responsible fail once the
// caller stopped, as a database's do.
type ctxStore struct{ *memory.Store }

func (s ctxStore) Responsible(ctx context.Context, acc bd.AccountID, dl bd.DialogID) (bd.Responsible, error) {
	if err := ctx.Err(); err != nil {
		return bd.Responsible{}, err
	}
	return s.Store.Responsible(ctx, acc, dl)
}

// greetThenStop sends the greeting and then waits for the stop, as a
// process stopped between a job's two replies.
type greetThenStop struct {
	mu       sync.Mutex
	greeted  chan struct{}
	attempts map[bd.Situation][]int
}

func (r *greetThenStop) Reply(ctx context.Context, req reply.Request) error {
	r.mu.Lock()
	first := len(r.attempts) == 0
	r.attempts[req.Situation] = append(r.attempts[req.Situation], req.Attempt)
	r.mu.Unlock()
	if first && req.Situation == bd.DialogReceived {
		close(r.greeted)
		<-ctx.Done()
	}
	return nil
}

// A stop between the greeting and the reply after it: the retry is told
// it is one, so that the greeting is looked for before it is sent again.
func TestStopBetweenTwoRepliesIsRetriedAsARetry(t *testing.T) {
	rep := &greetThenStop{greeted: make(chan struct{}), attempts: map[bd.Situation][]int{}}
	stopThenRestart(t, ctxStore{memory.New()}, rep, rep.greeted)
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if got := rep.attempts[bd.DialogReceived]; len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("greeting attempts %v, want [1 2]: the second run must know it is a retry", got)
	}
	if got := rep.attempts[bd.ManagerAssigned]; len(got) != 1 || got[0] != 2 {
		t.Fatalf("manager assigned attempts %v, want [2]", got)
	}
}

// stopThenRestart opens dialog 1 on a distributor over st (an account of
// one manager) replying through rep, stops it once stop is closed, and
// lets a second distributor over st do what was left.
func stopThenRestart(t *testing.T, st store.Store, rep reply.Replier, stop <-chan struct{}) {
	t.Helper()
	ids := managerIDs(1)
	ctx := context.Background()
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 5)}); err != nil {
		t.Fatal(err)
	}
	start := func() *distributor.Distributor {
		d, err := distributor.New(acct, st, &distributortest.Gateway{}, distributor.WithReplier(rep))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.SetRoster(ctx, onlineManagers(ids)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := start()
	if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Dialog: dialog(1, 1)}); err != nil {
		t.Fatal(err)
	}
	<-stop
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	again := start()
	t.Cleanup(func() { again.Close() })
	if err := again.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
