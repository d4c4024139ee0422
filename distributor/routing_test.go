package distributor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	require.NoError(t, err)
	require.Equal(t, []bd.ManagerID{2}, tr.RemovedBy(distributor.FilterLeave))
	require.Empty(t, tr.RemovedBy(distributor.FilterHours))
	require.Len(t, tr.Candidates, 2)

	f.clock.Set(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) // 13:00 Moscow: manager 1's shift is over
	tr, err = f.d.Decide(ctx, dialog(1, 1))
	require.NoError(t, err)
	require.Equal(t, []bd.ManagerID{1}, tr.RemovedBy(distributor.FilterHours))
	require.Equal(t, bd.ManagerOf(3), tr.Responsible)

	f.clock.Set(time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)) // next Monday 13:00: leave is over
	tr, err = f.d.Decide(ctx, dialog(1, 1))
	require.NoError(t, err)
	require.Empty(t, tr.RemovedBy(distributor.FilterLeave))
	require.Len(t, tr.Candidates, 2)
}

func TestEveryoneOffShiftGetsTheOutOfHoursReply(t *testing.T) {
	ids := managerIDs(1)
	s := settingsFor(ids, 5)
	s.Shifts = map[bd.ManagerID]bd.WorkingHours{1: {Week: [7][]bd.Span{time.Tuesday: {{Start: 0, End: 1440}}}}}
	f := newFixture(t, s, onlineManagers(ids))
	f.open(t, dialog(1, 1)) // t0 is a Monday
	require.True(t, f.responsible(t, 1).IsZero())
	require.Equal(t, 1, f.rec.Count(1, bd.OutsideWorkingHours))
	f.clock.Set(t0.Add(24 * time.Hour))
	f.d.Sweep(context.Background())
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 1))
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
	require.Equal(t, bd.ManagerOf(m), f.responsible(t, 4), "the returning customer goes back to manager %d", m)
	tr, err := f.d.Recent(context.Background())
	require.NoError(t, err)
	require.Equal(t, m, tr[0].LastManager)
	require.Contains(t, tr[0].Choice.Reason, "last manager")
	require.Contains(t, tr[0].String(), "returning customer")

	// When the last manager cannot take it, the strategy decides.
	off := onlineManagers(ids)[m-1]
	off.Online = false
	require.NoError(t, f.d.Handle(context.Background(), distributor.Event{Kind: distributor.ManagerChanged, Account: acct, Manager: off}))
	third := dialog(5, 1)
	third.Customer = first.Customer
	f.open(t, third)
	other, ok := f.responsible(t, 5).Manager()
	require.True(t, ok)
	require.NotEqual(t, m, other)
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
	require.Equal(t, 2, f.queueLen(t))
	f.close(t, 2)
	require.Equal(t, bd.ManagerOf(1), f.responsible(t, 4), "the returning customer is served first")
	require.True(t, f.responsible(t, 3).IsZero())
}
