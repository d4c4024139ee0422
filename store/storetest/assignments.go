package storetest

import (
	"slices"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

func assignCases() []testCase {
	return []testCase{
		{"Success", testAssignSuccess},
		{"AlreadyAssigned", testAssignAlreadyAssigned},
		{"Capacity", testAssignCapacity},
		{"CapacityPerRequest", testAssignCapacityPerRequest},
		{"BotIgnoresCapacity", testAssignBot},
		{"Loads", testLoads},
		{"LastAssignedAt", testLastAssignedAt},
		{"DialogsOf", testDialogsOf},
		{"LastManager", testLastManager},
		{"Invalid", testAssignInvalid},
		{"AccountsIsolated", testAssignAccountsIsolated},
		{"ResultsNotShared", testAssignResultsNotShared},
	}
}

func testAssignSuccess(t *testing.T, s store.Store) {
	acc := newAccount(t)
	wantResponsible(t, s, acc, 1, bd.Responsible{})
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, Customer: 100, To: bd.ManagerOf(10), Capacity: 2, At: at(0)})

	wantResponsible(t, s, acc, 1, bd.ManagerOf(10))
	l := loads(t, s, acc, 10)[0]
	if l.Manager != 10 || l.Open != 1 || !l.LastAssignedAt.Equal(at(0)) {
		t.Fatalf("Loads(10) = %+v, want manager 10 with 1 open dialog, last assigned at %v", l, at(0))
	}
	wantDialogs(t, s, acc, 10, 1)
	wantLastManager(t, s, acc, 100, 10)
}

func testAssignAlreadyAssigned(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, Customer: 100, To: bd.ManagerOf(10), Capacity: 5, At: at(0)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, Customer: 200, To: bd.BotOf(7), At: at(time.Second)})

	tries := []struct {
		name string
		a    store.Assignment
	}{
		{"manager dialog to another manager", store.Assignment{Dialog: 1, To: bd.ManagerOf(11)}},
		{"manager dialog to the same manager", store.Assignment{Dialog: 1, To: bd.ManagerOf(10)}},
		{"manager dialog to a bot", store.Assignment{Dialog: 1, To: bd.BotOf(7)}},
		{"bot dialog to a manager", store.Assignment{Dialog: 2, To: bd.ManagerOf(11)}},
		{"bot dialog to another bot", store.Assignment{Dialog: 2, To: bd.BotOf(8)}},
		{"bot dialog to the same bot", store.Assignment{Dialog: 2, To: bd.BotOf(7)}},
	}
	for _, tc := range tries {
		a := tc.a
		a.Account, a.Customer, a.Capacity, a.At = acc, 300, 5, at(time.Hour)
		isErr(t, s.Assign(ctx, a), store.ErrAssigned, "Assign: %s", tc.name)
	}

	// Nothing changed.
	wantResponsible(t, s, acc, 1, bd.ManagerOf(10))
	wantResponsible(t, s, acc, 2, bd.BotOf(7))
	ls := loads(t, s, acc, 10, 11)
	if ls[0].Open != 1 || !ls[0].LastAssignedAt.Equal(at(0)) {
		t.Fatalf("after refused assigns, Loads(10) = %+v, want 1 open dialog, last assigned at %v", ls[0], at(0))
	}
	if ls[1].Open != 0 || !ls[1].LastAssignedAt.IsZero() {
		t.Fatalf("after refused assigns, Loads(11) = %+v, want the zero load", ls[1])
	}
	wantDialogs(t, s, acc, 10, 1)
	wantDialogs(t, s, acc, 11)
	wantLastManager(t, s, acc, 300, 0)
}

func testAssignCapacity(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	dialog := bd.DialogID(1)
	for capacity := 0; capacity <= 4; capacity++ {
		m := bd.ManagerID(100 + capacity)
		refused := bd.CustomerID(1000 + capacity)
		var held []bd.DialogID
		for i := range capacity {
			assign(t, s, store.Assignment{Account: acc, Dialog: dialog, Customer: 1, To: bd.ManagerOf(m), Capacity: capacity, At: at(time.Duration(i) * time.Second)})
			held = append(held, dialog)
			dialog++
		}
		var last time.Time // when the last successful assign happened, if any
		if capacity > 0 {
			last = at(time.Duration(capacity-1) * time.Second)
		}
		for range 2 {
			err := s.Assign(ctx, store.Assignment{Account: acc, Dialog: dialog, Customer: refused, To: bd.ManagerOf(m), Capacity: capacity, At: at(time.Hour)})
			isErr(t, err, store.ErrCapacity, "Assign of dialog %d to manager %d holding %d of capacity %d", dialog, m, capacity, capacity)
		}
		// The refused assignment changed nothing.
		wantResponsible(t, s, acc, dialog, bd.Responsible{})
		l := loads(t, s, acc, m)[0]
		if l.Open != capacity {
			t.Fatalf("capacity %d: Loads(%d).Open = %d after a refused assign, want %d", capacity, m, l.Open, capacity)
		}
		if !l.LastAssignedAt.Equal(last) {
			t.Fatalf("capacity %d: a refused assign changed LastAssignedAt to %v", capacity, l.LastAssignedAt)
		}
		wantDialogs(t, s, acc, m, held...)
		wantLastManager(t, s, acc, refused, 0)
		// The refused dialog can still go to someone else.
		assign(t, s, store.Assignment{Account: acc, Dialog: dialog, Customer: refused, To: bd.ManagerOf(m + 50), Capacity: 1, At: at(time.Hour)})
		dialog++
	}
}

func testAssignCapacityPerRequest(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	m := bd.ManagerOf(5)
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: m, Capacity: 2, At: at(0)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, To: m, Capacity: 2, At: at(0)})
	isErr(t, s.Assign(ctx, store.Assignment{Account: acc, Dialog: 3, To: m, Capacity: 2, At: at(0)}), store.ErrCapacity,
		"Assign of a third dialog with capacity 2")
	// Capacity belongs to the request: a raised capacity admits one more.
	assign(t, s, store.Assignment{Account: acc, Dialog: 3, To: m, Capacity: 3, At: at(0)})
	// A capacity below the current load admits nothing.
	isErr(t, s.Assign(ctx, store.Assignment{Account: acc, Dialog: 4, To: m, Capacity: 1, At: at(0)}), store.ErrCapacity,
		"Assign with capacity 1 to a manager holding 3")
	wantOpen(t, s, acc, 5, 3)
	wantDialogs(t, s, acc, 5, 1, 2, 3)
}

func testAssignBot(t *testing.T, s store.Store) {
	acc := newAccount(t)
	for d := bd.DialogID(1); d <= 5; d++ {
		assign(t, s, store.Assignment{Account: acc, Dialog: d, Customer: 40, To: bd.BotOf(7), Capacity: 0, At: at(0)})
		wantResponsible(t, s, acc, d, bd.BotOf(7))
	}
	// A bot is not a manager: manager 7 is untouched, and a bot is never
	// anyone's last manager.
	l := loads(t, s, acc, 7)[0]
	if l.Open != 0 || !l.LastAssignedAt.IsZero() {
		t.Fatalf("Loads(7) = %+v after assigning to bot 7, want the zero load", l)
	}
	wantDialogs(t, s, acc, 7)
	wantLastManager(t, s, acc, 40, 0)
}

func testLoads(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	d := bd.DialogID(1)
	for m, n := range map[bd.ManagerID]int{1: 1, 2: 3, 3: 2} {
		for range n {
			assign(t, s, store.Assignment{Account: acc, Dialog: d, To: bd.ManagerOf(m), Capacity: 10, At: at(time.Duration(m) * time.Minute)})
			d++
		}
	}
	ask := []bd.ManagerID{3, 99, 1, 2, 3}
	asked := slices.Clone(ask)
	ls, err := s.Loads(ctx, acc, ask, nil)
	noErr(t, err, "Loads(%v)", ask)
	if !slices.Equal(ask, asked) {
		t.Fatalf("Loads changed its argument: %v, was %v", ask, asked)
	}
	want := []store.Load{
		{Manager: 3, Open: 2, LastAssignedAt: at(3 * time.Minute)},
		{Manager: 99},
		{Manager: 1, Open: 1, LastAssignedAt: at(1 * time.Minute)},
		{Manager: 2, Open: 3, LastAssignedAt: at(2 * time.Minute)},
		{Manager: 3, Open: 2, LastAssignedAt: at(3 * time.Minute)},
	}
	if len(ls) != len(want) {
		t.Fatalf("Loads(%v) returned %d loads, want %d", ask, len(ls), len(want))
	}
	for i := range want {
		if !sameLoad(ls[i], want[i]) {
			t.Fatalf("Loads(%v)[%d] = %+v, want %+v", ask, i, ls[i], want[i])
		}
	}

	ls, err = s.Loads(ctx, acc, nil, nil)
	noErr(t, err, "Loads(nil)")
	if len(ls) != 0 {
		t.Fatalf("Loads(nil) = %v, want none", ls)
	}
	ls = loads(t, s, newAccount(t), 1, 2)
	for i, l := range ls {
		if !sameLoad(l, store.Load{Manager: bd.ManagerID(i + 1)}) {
			t.Fatalf("Loads of an unknown account [%d] = %+v, want the zero load of manager %d", i, l, i+1)
		}
	}
}

func sameLoad(a, b store.Load) bool {
	return a.Manager == b.Manager && a.Open == b.Open && a.LastAssignedAt.Equal(b.LastAssignedAt)
}

func testLastAssignedAt(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	last := func() time.Time { t.Helper(); return loads(t, s, acc, 1)[0].LastAssignedAt }

	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(1), Capacity: 2, At: at(time.Minute)})
	if got := last(); !got.Equal(at(time.Minute)) {
		t.Fatalf("LastAssignedAt = %v, want %v", got, at(time.Minute))
	}
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(1), Capacity: 2, At: at(2 * time.Minute)})
	if got := last(); !got.Equal(at(2 * time.Minute)) {
		t.Fatalf("LastAssignedAt = %v after a second assign, want %v", got, at(2*time.Minute))
	}
	_, err := s.Release(ctx, acc, 1)
	noErr(t, err, "Release(1)")
	if got := last(); !got.Equal(at(2 * time.Minute)) {
		t.Fatalf("Release changed LastAssignedAt to %v, want %v", got, at(2*time.Minute))
	}
	isErr(t, s.Assign(ctx, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(1), Capacity: 5, At: at(time.Hour)}), store.ErrAssigned, "Assign of an assigned dialog")
	if got := last(); !got.Equal(at(2 * time.Minute)) {
		t.Fatalf("a refused Assign changed LastAssignedAt to %v, want %v", got, at(2*time.Minute))
	}
}

func testDialogsOf(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	for _, d := range []bd.DialogID{50, 3, 1000, 17} {
		assign(t, s, store.Assignment{Account: acc, Dialog: d, To: bd.ManagerOf(1), Capacity: 10, At: at(0)})
	}
	assign(t, s, store.Assignment{Account: acc, Dialog: 4, To: bd.ManagerOf(2), Capacity: 10, At: at(0)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 5, To: bd.BotOf(1), At: at(0)})

	wantDialogs(t, s, acc, 1, 3, 17, 50, 1000)
	wantDialogs(t, s, acc, 2, 4)
	wantDialogs(t, s, acc, 3)
	wantDialogs(t, s, newAccount(t), 1)

	_, err := s.Release(ctx, acc, 17)
	noErr(t, err, "Release(17)")
	wantDialogs(t, s, acc, 1, 3, 50, 1000)
	checkConsistent(t, s, acc, []bd.ManagerID{1, 2, 3})
}

func testLastManager(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	const c = bd.CustomerID(42)
	wantLastManager(t, s, acc, c, 0)

	assign(t, s, store.Assignment{Account: acc, Dialog: 1, Customer: c, To: bd.ManagerOf(1), Capacity: 5, At: at(0)})
	wantLastManager(t, s, acc, c, 1)
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, Customer: c, To: bd.ManagerOf(2), Capacity: 5, At: at(time.Minute)})
	wantLastManager(t, s, acc, c, 2)

	// Releasing keeps the history; a bot does not replace it.
	_, err := s.Release(ctx, acc, 2)
	noErr(t, err, "Release(2)")
	wantLastManager(t, s, acc, c, 2)
	assign(t, s, store.Assignment{Account: acc, Dialog: 3, Customer: c, To: bd.BotOf(9), At: at(2 * time.Minute)})
	wantLastManager(t, s, acc, c, 2)

	// Record counts too.
	_, err = s.Record(ctx, store.Assignment{Account: acc, Dialog: 4, Customer: c, To: bd.ManagerOf(3), At: at(3 * time.Minute)})
	noErr(t, err, "Record(4 to manager 3)")
	wantLastManager(t, s, acc, c, 3)

	// Other customers and accounts are apart.
	wantLastManager(t, s, acc, c+1, 0)
	wantLastManager(t, s, newAccount(t), c, 0)
}

func testAssignInvalid(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	good := store.Assignment{Account: acc, Dialog: 1, Customer: 1, To: bd.ManagerOf(1), Capacity: 1, At: at(0)}
	tries := []struct {
		name   string
		change func(a *store.Assignment)
	}{
		{"empty account", func(a *store.Assignment) { a.Account = "" }},
		{"zero dialog id", func(a *store.Assignment) { a.Dialog = 0 }},
		{"zero responsible", func(a *store.Assignment) { a.To = bd.Responsible{} }},
		{"negative capacity", func(a *store.Assignment) { a.Capacity = -1 }},
	}
	for _, tc := range tries {
		a := good
		tc.change(&a)
		isErr(t, s.Assign(ctx, a), store.ErrInvalid, "Assign with %s", tc.name)
	}
	// Nothing was stored by the refused requests.
	wantResponsible(t, s, acc, 1, bd.Responsible{})
	wantOpen(t, s, acc, 1, 0)
	wantLastManager(t, s, acc, 1, 0)
	// The valid request still goes through.
	assign(t, s, good)
}

func testAssignAccountsIsolated(t *testing.T, s store.Store) {
	a1, a2 := newAccount(t), newAccount(t)
	assign(t, s, store.Assignment{Account: a1, Dialog: 1, Customer: 1, To: bd.ManagerOf(1), Capacity: 1, At: at(0)})
	// The same dialog, customer and manager ids in another account are
	// another dialog, customer and manager.
	assign(t, s, store.Assignment{Account: a2, Dialog: 1, Customer: 1, To: bd.ManagerOf(2), Capacity: 1, At: at(0)})
	assign(t, s, store.Assignment{Account: a2, Dialog: 2, Customer: 2, To: bd.ManagerOf(1), Capacity: 1, At: at(0)})

	wantResponsible(t, s, a1, 1, bd.ManagerOf(1))
	wantResponsible(t, s, a2, 1, bd.ManagerOf(2))
	wantResponsible(t, s, a1, 2, bd.Responsible{})
	wantDialogs(t, s, a1, 1, 1)
	wantDialogs(t, s, a2, 1, 2)
	wantLastManager(t, s, a1, 1, 1)
	wantLastManager(t, s, a2, 1, 2)
	wantLastManager(t, s, a1, 2, 0)

	_, err := s.Release(t.Context(), a2, 1)
	noErr(t, err, "Release(1) in the second account")
	wantResponsible(t, s, a1, 1, bd.ManagerOf(1))
	wantOpen(t, s, a1, 1, 1)
}

func testAssignResultsNotShared(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(1), Capacity: 5, At: at(0)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(1), Capacity: 5, At: at(0)})

	ds, err := s.DialogsOf(ctx, acc, 1)
	noErr(t, err, "DialogsOf(1)")
	for i := range ds {
		ds[i] = 999
	}
	ls, err := s.Loads(ctx, acc, []bd.ManagerID{1}, nil)
	noErr(t, err, "Loads(1)")
	ls[0].Open = 999

	wantDialogs(t, s, acc, 1, 1, 2)
	wantOpen(t, s, acc, 1, 2)
}

func releaseCases() []testCase {
	return []testCase{
		{"FreesLoad", testReleaseFreesLoad},
		{"NotFound", testReleaseNotFound},
		{"Bot", testReleaseBot},
		{"Invalid", testReleaseInvalid},
	}
}

func testReleaseFreesLoad(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	a := store.Assignment{Account: acc, Dialog: 1, Customer: 5, To: bd.ManagerOf(3), Capacity: 1, At: at(0)}
	assign(t, s, a)
	isErr(t, s.Assign(ctx, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(3), Capacity: 1, At: at(0)}), store.ErrCapacity, "Assign beyond capacity 1")

	prev, err := s.Release(ctx, acc, 1)
	noErr(t, err, "Release(1)")
	if prev != bd.ManagerOf(3) {
		t.Fatalf("Release(1) = %s, want manager 3", prev)
	}
	wantResponsible(t, s, acc, 1, bd.Responsible{})
	wantOpen(t, s, acc, 3, 0)
	wantDialogs(t, s, acc, 3)
	wantLastManager(t, s, acc, 5, 3)

	// The freed slot and the freed dialog can be assigned again.
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(3), Capacity: 1, At: at(time.Minute)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(4), Capacity: 1, At: at(time.Minute)})
	checkConsistent(t, s, acc, []bd.ManagerID{3, 4})
}

func testReleaseNotFound(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	_, err := s.Release(ctx, acc, 1)
	isErr(t, err, store.ErrNotFound, "Release of a dialog never assigned")

	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(3), Capacity: 1, At: at(0)})
	_, err = s.Release(ctx, acc, 1)
	noErr(t, err, "Release(1)")
	_, err = s.Release(ctx, acc, 1)
	isErr(t, err, store.ErrNotFound, "second Release of the same dialog")
	wantOpen(t, s, acc, 3, 0)

	_, err = s.Release(ctx, newAccount(t), 1)
	isErr(t, err, store.ErrNotFound, "Release in an unknown account")
}

func testReleaseBot(t *testing.T, s store.Store) {
	acc := newAccount(t)
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.BotOf(3), At: at(0)})
	prev, err := s.Release(t.Context(), acc, 1)
	noErr(t, err, "Release(1)")
	if prev != bd.BotOf(3) {
		t.Fatalf("Release(1) = %s, want bot 3", prev)
	}
	wantResponsible(t, s, acc, 1, bd.Responsible{})
}

func testReleaseInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.Release(ctx, "", 1)
	isErr(t, err, store.ErrInvalid, "Release with an empty account")
	_, err = s.Release(ctx, newAccount(t), 0)
	isErr(t, err, store.ErrInvalid, "Release of dialog 0")
}

func recordCases() []testCase {
	return []testCase{
		{"MovesLoad", testRecordMoves},
		{"Unassigned", testRecordUnassigned},
		{"ZeroRemoves", testRecordZero},
		{"Same", testRecordSame},
		{"BotsAndManagers", testRecordBots},
		{"Invalid", testRecordInvalid},
	}
}

func testRecordMoves(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, Customer: 9, To: bd.ManagerOf(1), Capacity: 1, At: at(0)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(2), Capacity: 1, At: at(0)})

	// Manager 2 is at capacity; MG's word goes anyway.
	prev, err := s.Record(ctx, store.Assignment{Account: acc, Dialog: 1, Customer: 9, To: bd.ManagerOf(2), Capacity: 1, At: at(time.Minute)})
	noErr(t, err, "Record(1 to manager 2)")
	if prev != bd.ManagerOf(1) {
		t.Fatalf("Record(1 to manager 2) returned previous %s, want manager 1", prev)
	}
	wantResponsible(t, s, acc, 1, bd.ManagerOf(2))
	wantOpen(t, s, acc, 1, 0)
	wantOpen(t, s, acc, 2, 2)
	wantDialogs(t, s, acc, 1)
	wantDialogs(t, s, acc, 2, 1, 2)
	wantLastManager(t, s, acc, 9, 2)

	// The recorded load counts for later assigns.
	isErr(t, s.Assign(ctx, store.Assignment{Account: acc, Dialog: 3, To: bd.ManagerOf(2), Capacity: 2, At: at(time.Hour)}), store.ErrCapacity,
		"Assign to a manager recorded at 2 with capacity 2")
	assign(t, s, store.Assignment{Account: acc, Dialog: 3, To: bd.ManagerOf(2), Capacity: 3, At: at(time.Hour)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 4, To: bd.ManagerOf(1), Capacity: 1, At: at(time.Hour)})
	checkConsistent(t, s, acc, []bd.ManagerID{1, 2})
}

func testRecordUnassigned(t *testing.T, s store.Store) {
	acc := newAccount(t)
	prev, err := s.Record(t.Context(), store.Assignment{Account: acc, Dialog: 1, Customer: 9, To: bd.ManagerOf(4), At: at(0)})
	noErr(t, err, "Record(1 to manager 4)")
	if !prev.IsZero() {
		t.Fatalf("Record on an unassigned dialog returned previous %s, want nobody", prev)
	}
	wantResponsible(t, s, acc, 1, bd.ManagerOf(4))
	wantOpen(t, s, acc, 4, 1)
	wantDialogs(t, s, acc, 4, 1)
}

func testRecordZero(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, Customer: 9, To: bd.ManagerOf(1), Capacity: 1, At: at(0)})
	prev, err := s.Record(ctx, store.Assignment{Account: acc, Dialog: 1, Customer: 9, At: at(time.Minute)})
	noErr(t, err, "Record(1 to nobody)")
	if prev != bd.ManagerOf(1) {
		t.Fatalf("Record(1 to nobody) returned previous %s, want manager 1", prev)
	}
	wantResponsible(t, s, acc, 1, bd.Responsible{})
	wantOpen(t, s, acc, 1, 0)
	wantDialogs(t, s, acc, 1)
	wantLastManager(t, s, acc, 9, 1)

	prev, err = s.Record(ctx, store.Assignment{Account: acc, Dialog: 1, At: at(time.Minute)})
	noErr(t, err, "Record(1 to nobody) again")
	if !prev.IsZero() {
		t.Fatalf("second Record(1 to nobody) returned previous %s, want nobody", prev)
	}
	_, err = s.Release(ctx, acc, 1)
	isErr(t, err, store.ErrNotFound, "Release after Record to nobody")
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(1), Capacity: 1, At: at(time.Hour)})
}

func testRecordSame(t *testing.T, s store.Store) {
	acc := newAccount(t)
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(1), Capacity: 3, At: at(0)})
	for range 2 {
		prev, err := s.Record(t.Context(), store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(1), At: at(time.Minute)})
		noErr(t, err, "Record(1 to its own manager)")
		if prev != bd.ManagerOf(1) {
			t.Fatalf("Record(1 to its own manager) returned previous %s, want manager 1", prev)
		}
	}
	wantOpen(t, s, acc, 1, 1)
	wantDialogs(t, s, acc, 1, 1)
}

func testRecordBots(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	steps := []struct {
		to   bd.Responsible
		prev bd.Responsible
	}{
		{bd.ManagerOf(1), bd.Responsible{}},
		{bd.BotOf(1), bd.ManagerOf(1)},
		{bd.BotOf(2), bd.BotOf(1)},
		{bd.ManagerOf(2), bd.BotOf(2)},
		{bd.ManagerOf(1), bd.ManagerOf(2)},
		{bd.Responsible{}, bd.ManagerOf(1)},
	}
	for i, st := range steps {
		prev, err := s.Record(ctx, store.Assignment{Account: acc, Dialog: 1, To: st.to, At: at(time.Duration(i) * time.Minute)})
		noErr(t, err, "step %d: Record(1 to %s)", i, st.to)
		if prev != st.prev {
			t.Fatalf("step %d: Record(1 to %s) returned previous %s, want %s", i, st.to, prev, st.prev)
		}
		wantResponsible(t, s, acc, 1, st.to)
		if n := checkConsistent(t, s, acc, []bd.ManagerID{1, 2}); n > 1 {
			t.Fatalf("step %d: managers hold %d dialogs, only one exists", i, n)
		}
	}
}

func testRecordInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.Record(ctx, store.Assignment{Dialog: 1, To: bd.ManagerOf(1)})
	isErr(t, err, store.ErrInvalid, "Record with an empty account")
	acc := newAccount(t)
	_, err = s.Record(ctx, store.Assignment{Account: acc, To: bd.ManagerOf(1)})
	isErr(t, err, store.ErrInvalid, "Record of dialog 0")
	wantOpen(t, s, acc, 1, 0)
}
