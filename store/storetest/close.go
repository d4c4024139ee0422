package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

func closeCases() []testCase {
	return []testCase{
		{"ReleasesAndMarks", testCloseReleasesAndMarks},
		{"Dequeues", testCloseDequeues},
		{"Unknown", testCloseUnknown},
		{"RaceWithAssign", testCloseRaceWithAssign},
		{"Prune", testClosePrune},
		{"Invalid", testCloseInvalid},
	}
}

func testCloseReleasesAndMarks(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, Customer: 100, To: bd.ManagerOf(10), Capacity: 1, At: at(0)})
	prev, err := s.Close(ctx, acc, 1, at(time.Minute))
	noErr(t, err, "Close(1)")
	if prev != bd.ManagerOf(10) {
		t.Fatalf("Close(1) = %s, want manager 10", prev)
	}
	wantResponsible(t, s, acc, 1, bd.Responsible{})
	wantOpen(t, s, acc, 10, 0)
	wantDialogs(t, s, acc, 10)

	err = s.Assign(ctx, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(11), Capacity: 5, At: at(2 * time.Minute)})
	isErr(t, err, store.ErrClosed, "Assign(closed dialog 1)")
	wantOpen(t, s, acc, 11, 0)
	_, err = s.Record(ctx, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(11), At: at(2 * time.Minute)})
	isErr(t, err, store.ErrClosed, "Record(closed dialog 1)")
	wantOpen(t, s, acc, 11, 0)
	_, err = s.Enqueue(ctx, waiting(acc, 1, 0, at(0)))
	isErr(t, err, store.ErrClosed, "Enqueue(closed dialog 1)")
	if n, err := s.QueueLen(ctx, acc); err != nil || n != 0 {
		t.Fatalf("QueueLen = %d, %v; want 0 after a refused Enqueue", n, err)
	}

	prev, err = s.Close(ctx, acc, 1, at(3*time.Minute))
	noErr(t, err, "Close(1) again")
	if !prev.IsZero() {
		t.Fatalf("second Close(1) = %s, want nobody", prev)
	}
	// The manager's slot is free for other dialogs.
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(10), Capacity: 1, At: at(4 * time.Minute)})
}

func testCloseDequeues(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	for d := bd.DialogID(1); d <= 3; d++ {
		_, err := s.Enqueue(ctx, waiting(acc, d, 0, at(time.Duration(d)*time.Second)))
		noErr(t, err, "Enqueue(%d)", d)
	}
	_, err := s.Close(ctx, acc, 2, at(time.Minute))
	noErr(t, err, "Close(2)")
	ws, err := s.Waiting(ctx, acc, 10)
	noErr(t, err, "Waiting")
	if len(ws) != 2 || ws[0].Dialog.ID != 1 || ws[1].Dialog.ID != 3 {
		t.Fatalf("Waiting after Close(2) = %v, want dialogs 1 and 3", dialogIDs(ws))
	}
	isErr(t, s.Dequeue(ctx, acc, 2), store.ErrNotFound, "Dequeue(closed dialog 2)")
}

func dialogIDs(ws []store.Waiting) []bd.DialogID {
	ids := make([]bd.DialogID, len(ws))
	for i, w := range ws {
		ids[i] = w.Dialog.ID
	}
	return ids
}

func testCloseUnknown(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	prev, err := s.Close(ctx, acc, 7, at(0))
	noErr(t, err, "Close(unknown dialog 7)")
	if !prev.IsZero() {
		t.Fatalf("Close(unknown) = %s, want nobody", prev)
	}
	err = s.Assign(ctx, store.Assignment{Account: acc, Dialog: 7, To: bd.BotOf(3), At: at(time.Second)})
	isErr(t, err, store.ErrClosed, "Assign(dialog 7 closed before it was seen)")
}

// testCloseRaceWithAssign races closes against assignments of the same
// dialogs: a closed dialog must never end up held, and loads stay exact.
func testCloseRaceWithAssign(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	const dialogs, workers = 120, 8
	managers := []bd.ManagerID{1, 2, 3}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := bd.DialogID(1); d <= dialogs; d++ {
				if w%2 == 0 {
					err := s.Assign(ctx, store.Assignment{Account: acc, Dialog: d, To: bd.ManagerOf(managers[int(d)%len(managers)]), Capacity: dialogs, At: at(time.Duration(d))})
					if err != nil && !isAny(err, store.ErrAssigned, store.ErrClosed) {
						t.Errorf("Assign(%d): %v", d, err)
					}
				} else if int(d)%(workers/2) == w/2 {
					if _, err := s.Close(ctx, acc, d, at(time.Duration(d))); err != nil {
						t.Errorf("Close(%d): %v", d, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	// Every dialog was closed by one of the closing workers.
	for d := bd.DialogID(1); d <= dialogs; d++ {
		wantResponsible(t, s, acc, d, bd.Responsible{})
	}
	if held := checkConsistent(t, s, acc, managers); held != 0 {
		t.Fatalf("%d closed dialogs are still held", held)
	}
}

// isAny reports whether err matches one of targets.
func isAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func testClosePrune(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	for d := bd.DialogID(1); d <= 2; d++ {
		ok, err := s.ClaimReply(ctx, acc, d, bd.DialogReceived)
		noErr(t, err, "ClaimReply(%d)", d)
		if !ok {
			t.Fatalf("ClaimReply(%d) = false on a fresh dialog", d)
		}
	}
	_, err := s.Close(ctx, acc, 1, at(0))
	noErr(t, err, "Close(1)")
	_, err = s.Close(ctx, acc, 2, at(time.Hour))
	noErr(t, err, "Close(2)")
	_, err = s.PruneEvents(ctx, at(time.Minute))
	noErr(t, err, "PruneEvents")

	// Dialog 1 closed before the cut: forgotten with its reply claims.
	ok, err := s.ClaimReply(ctx, acc, 1, bd.DialogReceived)
	noErr(t, err, "ClaimReply(1) after prune")
	if !ok {
		t.Fatal("ClaimReply(1) = false: the reply claims of a pruned closed dialog must be forgotten")
	}
	noErr(t, s.Assign(ctx, store.Assignment{Account: acc, Dialog: 1, To: bd.BotOf(1), At: at(2 * time.Hour)}), "Assign(pruned dialog 1)")
	// Dialog 2 closed after it: still closed, claims kept.
	ok, err = s.ClaimReply(ctx, acc, 2, bd.DialogReceived)
	noErr(t, err, "ClaimReply(2) after prune")
	if ok {
		t.Fatal("ClaimReply(2) = true: a dialog closed after the cut keeps its reply claims")
	}
	err = s.Assign(ctx, store.Assignment{Account: acc, Dialog: 2, To: bd.BotOf(1), At: at(2 * time.Hour)})
	isErr(t, err, store.ErrClosed, "Assign(dialog 2 closed after the cut)")
}

func testCloseInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.Close(ctx, "", 1, at(0))
	isErr(t, err, store.ErrInvalid, "Close with an empty account")
	_, err = s.Close(ctx, newAccount(t), 0, at(0))
	isErr(t, err, store.ErrInvalid, "Close(dialog 0)")
}

func moveCases() []testCase {
	return []testCase{
		{"Success", testMoveSuccess},
		{"WrongFrom", testMoveWrongFrom},
		{"Capacity", testMoveCapacity},
		{"ToBot", testMoveToBot},
		{"Race", testMoveRace},
	}
}

func testMoveSuccess(t *testing.T, s store.Store) {
	acc := newAccount(t)
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, Customer: 100, To: bd.ManagerOf(10), Capacity: 1, At: at(0)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, Customer: 100, From: bd.ManagerOf(10), To: bd.ManagerOf(11), Capacity: 1, At: at(time.Minute)})
	wantResponsible(t, s, acc, 1, bd.ManagerOf(11))
	ls := loads(t, s, acc, 10, 11)
	if ls[0].Open != 0 || ls[1].Open != 1 || !ls[1].LastAssignedAt.Equal(at(time.Minute)) || !ls[0].LastAssignedAt.Equal(at(0)) {
		t.Fatalf("Loads after the move = %+v, want manager 10 empty (last at %v), manager 11 with 1 (last at %v)", ls, at(0), at(time.Minute))
	}
	wantDialogs(t, s, acc, 10)
	wantDialogs(t, s, acc, 11, 1)
	wantLastManager(t, s, acc, 100, 11)
}

func testMoveWrongFrom(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	err := s.Assign(ctx, store.Assignment{Account: acc, Dialog: 1, From: bd.ManagerOf(10), To: bd.ManagerOf(11), Capacity: 1, At: at(0)})
	isErr(t, err, store.ErrAssigned, "move of an unassigned dialog")
	wantResponsible(t, s, acc, 1, bd.Responsible{})
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(10), Capacity: 1, At: at(0)})
	err = s.Assign(ctx, store.Assignment{Account: acc, Dialog: 1, From: bd.ManagerOf(12), To: bd.ManagerOf(11), Capacity: 1, At: at(time.Second)})
	isErr(t, err, store.ErrAssigned, "move from the wrong manager")
	wantResponsible(t, s, acc, 1, bd.ManagerOf(10))
	wantOpen(t, s, acc, 10, 1)
	wantOpen(t, s, acc, 11, 0)
}

func testMoveCapacity(t *testing.T, s store.Store) {
	acc := newAccount(t)
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(10), Capacity: 1, At: at(0)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(11), Capacity: 1, At: at(0)})
	err := s.Assign(t.Context(), store.Assignment{Account: acc, Dialog: 1, From: bd.ManagerOf(10), To: bd.ManagerOf(11), Capacity: 1, At: at(time.Second)})
	isErr(t, err, store.ErrCapacity, "move onto a full manager")
	wantResponsible(t, s, acc, 1, bd.ManagerOf(10))
	wantOpen(t, s, acc, 10, 1)
	wantOpen(t, s, acc, 11, 1)
}

func testMoveToBot(t *testing.T, s store.Store) {
	acc := newAccount(t)
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(10), Capacity: 1, At: at(0)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, From: bd.ManagerOf(10), To: bd.BotOf(5), At: at(time.Second)})
	wantResponsible(t, s, acc, 1, bd.BotOf(5))
	wantOpen(t, s, acc, 10, 0)
}

// testMoveRace races many moves of one dialog away from its manager:
// exactly one wins and the loads stay exact.
func testMoveRace(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(1), Capacity: 1, At: at(0)})
	const movers = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range movers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Assign(ctx, store.Assignment{Account: acc, Dialog: 1, From: bd.ManagerOf(1), To: bd.ManagerOf(bd.ManagerID(2 + i)), Capacity: 1, At: at(time.Second)})
			switch {
			case err == nil:
				mu.Lock()
				won++
				mu.Unlock()
			case !isAny(err, store.ErrAssigned):
				t.Errorf("move to %d: %v", 2+i, err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d moves of one dialog succeeded, want exactly 1", won)
	}
	ms := []bd.ManagerID{1}
	for i := range movers {
		ms = append(ms, bd.ManagerID(2+i))
	}
	if held := checkConsistent(t, s, acc, ms); held != 1 {
		t.Fatalf("%d dialogs held after the race, want 1", held)
	}
}

func loadsBufferCases() []testCase {
	return []testCase{{"Buffer", testLoadsBuffer}, {"RecordKeepsLastAssignedAt", testRecordKeepsLastAssignedAt}, {"DecisionReads", testDecisionReads}}
}

func testLoadsBuffer(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(2), Capacity: 3, At: at(0)})
	junk := make([]store.Load, 5, 8)
	for i := range junk {
		junk[i] = store.Load{Manager: 99, Open: 42, LastAssignedAt: at(time.Hour)}
	}
	ls, err := s.Loads(ctx, acc, []bd.ManagerID{1, 2, 3}, junk)
	noErr(t, err, "Loads into a reused buffer")
	want := []store.Load{{Manager: 1}, {Manager: 2, Open: 1, LastAssignedAt: at(0)}, {Manager: 3}}
	if len(ls) != len(want) {
		t.Fatalf("Loads returned %d loads, want %d", len(ls), len(want))
	}
	for i := range want {
		if !sameLoad(ls[i], want[i]) {
			t.Fatalf("Loads[%d] = %+v, want %+v (stale buffer content must not leak)", i, ls[i], want[i])
		}
	}
	if &ls[0] != &junk[:1][0] {
		t.Fatal("Loads did not reuse a buffer with enough capacity")
	}
	small := make([]store.Load, 0, 1)
	ls, err = s.Loads(ctx, acc, []bd.ManagerID{2, 1}, small)
	noErr(t, err, "Loads into a small buffer")
	if len(ls) != 2 || !sameLoad(ls[0], want[1]) || !sameLoad(ls[1], want[0]) {
		t.Fatalf("Loads into a small buffer = %+v", ls)
	}
}

func testRecordKeepsLastAssignedAt(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(2), Capacity: 3, At: at(0)})
	_, err := s.Record(ctx, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(2), At: at(time.Hour)})
	noErr(t, err, "Record(2)")
	if l := loads(t, s, acc, 2)[0]; l.Open != 2 || !l.LastAssignedAt.Equal(at(0)) {
		t.Fatalf("Loads(2) = %+v, want 2 open and LastAssignedAt %v unchanged by Record", l, at(0))
	}
}

// testDecisionReads checks store.DecisionReader, where the store has it,
// against the three reads it stands for.
func testDecisionReads(t *testing.T, s store.Store) {
	r, ok := s.(store.DecisionReader)
	if !ok {
		t.Skip("the store reads decisions with Loads, QueueLen and LastManager")
	}
	acc := newAccount(t)
	ctx := t.Context()
	got, err := r.ReadDecision(ctx, acc, []bd.ManagerID{1, 2}, 5, nil)
	noErr(t, err, "ReadDecision on an empty account")
	if len(got.Loads) != 2 || got.Loads[0] != (store.Load{Manager: 1}) || got.Loads[1] != (store.Load{Manager: 2}) || got.Waiting != 0 || got.LastManager != 0 {
		t.Fatalf("ReadDecision on an empty account = %+v, want two zero loads, nothing waiting, no last manager", got)
	}
	assign(t, s, store.Assignment{Account: acc, Dialog: 1, Customer: 5, To: bd.ManagerOf(2), Capacity: 3, At: at(0)})
	assign(t, s, store.Assignment{Account: acc, Dialog: 2, Customer: 6, To: bd.ManagerOf(1), Capacity: 3, At: at(time.Minute)})
	enqueue(t, s, waiting(acc, 3, 0, at(0)))
	enqueue(t, s, waiting(acc, 4, 0, at(0)))
	junk := make([]store.Load, 1, 4)
	junk[0] = store.Load{Manager: 99, Open: 42}
	for _, customer := range []bd.CustomerID{5, 6, 7, 0} {
		got, err := r.ReadDecision(ctx, acc, []bd.ManagerID{2, 3, 1}, customer, junk)
		noErr(t, err, "ReadDecision")
		loads, err := s.Loads(ctx, acc, []bd.ManagerID{2, 3, 1}, nil)
		noErr(t, err, "Loads")
		n, err := s.QueueLen(ctx, acc)
		noErr(t, err, "QueueLen")
		var last bd.ManagerID
		if customer != 0 {
			last, err = s.LastManager(ctx, acc, customer)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("LastManager(%d): %v", customer, err)
			}
		}
		if len(got.Loads) != len(loads) {
			t.Fatalf("customer %d: ReadDecision loads %+v, Loads %+v", customer, got.Loads, loads)
		}
		for i := range loads {
			if got.Loads[i].Manager != loads[i].Manager || got.Loads[i].Open != loads[i].Open || !got.Loads[i].LastAssignedAt.Equal(loads[i].LastAssignedAt) {
				t.Fatalf("customer %d: ReadDecision loads %+v, Loads %+v", customer, got.Loads, loads)
			}
		}
		if got.Waiting != n || n != 2 {
			t.Fatalf("customer %d: ReadDecision waiting %d, QueueLen %d, want 2", customer, got.Waiting, n)
		}
		if got.LastManager != last {
			t.Fatalf("customer %d: ReadDecision last manager %d, LastManager %d", customer, got.LastManager, last)
		}
	}
	if _, err := r.ReadDecision(ctx, "", nil, 0, nil); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("ReadDecision with an empty account: %v, want ErrInvalid", err)
	}
}
