package distributor_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
)

func TestShiftsAndLeave(t *testing.T) {
	ids := managerIDs(3)
	s := settingsFor(ids, 5)
	s.Hours.TimeZone = "Europe/Moscow"
	s.Shifts = map[bd.ManagerID]bd.WorkingHours{1: {TimeZone: "Europe/Moscow"}}
	s.Shifts[1] = bd.WorkingHours{TimeZone: "Europe/Moscow", Week: [7][]bd.Span{time.Monday: {{Start: 8 * 60, End: 12 * 60}}}}
	s.Leave = map[bd.ManagerID][]bd.DateRange{2: {{From: "2026-03-01", To: "2026-03-08"}}}
	f := newFixture(t, s, onlineManagers(ids))
	ctx := context.Background()

	f.clock.Set(time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)) // Monday 10:00 Moscow: manager 1 on shift, 2 on leave
	tr, err := f.d.Decide(ctx, dialog(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr.RemovedBy(distributor.FilterLeave), []bd.ManagerID{2}; !slices.Equal(got, want) {
		t.Fatalf("tr.RemovedBy(distributor.FilterLeave) = %v, want %v", got, want)
	}
	if got := tr.RemovedBy(distributor.FilterHours); len(got) != 0 {
		t.Fatalf("tr.RemovedBy(distributor.FilterHours) = %v, want empty", got)
	}
	if got := len(tr.Candidates); got != 2 {
		t.Fatalf("len(tr.Candidates) = %d, want 2", got)
	}

	f.clock.Set(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) // 13:00 Moscow: manager 1's shift is over
	tr, err = f.d.Decide(ctx, dialog(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr.RemovedBy(distributor.FilterHours), []bd.ManagerID{1}; !slices.Equal(got, want) {
		t.Fatalf("tr.RemovedBy(distributor.FilterHours) = %v, want %v", got, want)
	}
	if got, want := tr.Responsible, bd.ManagerOf(3); got != want {
		t.Fatalf("tr.Responsible = %v, want %v", got, want)
	}

	f.clock.Set(time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)) // next Monday 13:00: leave is over
	tr, err = f.d.Decide(ctx, dialog(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.RemovedBy(distributor.FilterLeave); len(got) != 0 {
		t.Fatalf("tr.RemovedBy(distributor.FilterLeave) = %v, want empty", got)
	}
	if got := len(tr.Candidates); got != 2 {
		t.Fatalf("len(tr.Candidates) = %d, want 2", got)
	}
}

func TestEveryoneOffShiftGetsTheOutOfHoursReply(t *testing.T) {
	ids := managerIDs(1)
	s := settingsFor(ids, 5)
	s.Shifts = map[bd.ManagerID]bd.WorkingHours{1: {Week: [7][]bd.Span{time.Tuesday: {{Start: 0, End: 1440}}}}}
	f := newFixture(t, s, onlineManagers(ids))
	f.open(t, dialog(1, 1)) // t0 is a Monday
	if r := f.responsible(t, 1); !r.IsZero() {
		t.Fatalf("dialog 1: responsible %v, want nobody", r)
	}
	if got, want := f.rec.Count(1, bd.OutsideWorkingHours), 1; got != want {
		t.Fatalf("f.rec.Count(1, bd.OutsideWorkingHours) = %v, want %v", got, want)
	}
	f.clock.Set(t0.Add(24 * time.Hour))
	f.d.Sweep(context.Background())
	if got, want := f.responsible(t, 1), bd.ManagerOf(1); got != want {
		t.Fatalf("f.responsible(t, 1) = %v, want %v", got, want)
	}
}

func TestStickyReturningCustomer(t *testing.T) {
	ids := managerIDs(3)
	s := settingsFor(ids, 5)
	s.Sticky = true
	f := newFixture(t, s, onlineManagers(ids))
	first := dialog(1, 1)
	f.open(t, first)
	m, _ := f.responsible(t, 1).Manager()
	f.close(t, 1)
	for i := 2; i <= 3; i++ { // others get the next turns
		f.open(t, dialog(i, 1))
	}
	again := dialog(4, 1)
	again.Customer = first.Customer
	f.open(t, again)
	if got, want := f.responsible(t, 4), bd.ManagerOf(m); got != want {
		t.Fatalf("the returning customer goes back to manager %d: got %v, want %v", m, got, want)
	}
	tr, err := f.d.Recent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr[0].LastManager, m; got != want {
		t.Fatalf("tr[0].LastManager = %v, want %v", got, want)
	}
	if got := tr[0].Choice.Reason; !strings.Contains(got, "last manager") {
		t.Fatalf("tr[0].Choice.Reason = %q, want it to contain %q", got, "last manager")
	}
	if got := tr[0].String(); !strings.Contains(got, "returning customer") {
		t.Fatalf("tr[0].String() = %q, want it to contain %q", got, "returning customer")
	}

	// When the last manager cannot take it, the strategy decides.
	off := onlineManagers(ids)[m-1]
	off.Online = false
	if err := f.d.Handle(context.Background(), distributor.Event{Kind: distributor.ManagerChanged, Account: acct, Manager: off}); err != nil {
		t.Fatal(err)
	}
	third := dialog(5, 1)
	third.Customer = first.Customer
	f.open(t, third)
	r := f.responsible(t, 5)
	other, ok := r.Manager()
	if !ok {
		t.Fatalf("dialog 5: responsible %v, want a manager", r)
	}
	if other == m {
		t.Fatalf("other = %v, want not %v", other, m)
	}
}

func TestReturningCustomersWaitAhead(t *testing.T) {
	ids := managerIDs(1)
	s := settingsFor(ids, 1)
	s.ReturningFirst = true
	f := newFixture(t, s, onlineManagers(ids))
	known := dialog(1, 1)
	f.open(t, known)
	f.close(t, 1)
	f.open(t, dialog(2, 1)) // holds the only slot
	f.open(t, dialog(3, 1)) // a new customer waits first
	back := dialog(4, 1)
	back.Customer = known.Customer
	f.open(t, back) // the returning customer waits after, but goes ahead
	if got, want := f.queueLen(t), 2; got != want {
		t.Fatalf("f.queueLen(t) = %v, want %v", got, want)
	}
	f.close(t, 2)
	if got, want := f.responsible(t, 4), bd.ManagerOf(1); got != want {
		t.Fatalf("the returning customer is served first: got %v, want %v", got, want)
	}
	if r := f.responsible(t, 3); !r.IsZero() {
		t.Fatalf("dialog 3: responsible %v, want nobody", r)
	}
}
