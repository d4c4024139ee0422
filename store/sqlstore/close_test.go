package sqlstore_test

import (
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// testCloseRace races Close against every write a closed dialog must refuse,
// from two stores over two pools of one database (for PostgreSQL two sets
// of sessions, for SQLite two writers that only the database lock keeps
// apart, as two processes would be). Store a assigns, moves, records and
// queues each dialog while store b closes it; the two walk the dialogs in
// the same order, so they meet on the same dialog. Afterwards every dialog
// is closed, so none may have a responsible, a load or a queue entry,
// whichever writes won.
func testCloseRace(t *testing.T, d sqlstore.Dialect, dbA, dbB *sql.DB) {
	ctx := t.Context()
	a, b := open(t, dbA, d), open(t, dbB, d)
	const (
		acc      = bd.AccountID("close-race")
		dialogs  = 240
		writers  = 4
		managers = 6
	)
	refused := func(err error) bool {
		return err == nil || errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrAssigned) || errors.Is(err, store.ErrCapacity)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := w; i < dialogs; i += writers {
				dialog := bd.DialogID(i + 1)
				m := bd.ManagerID(1 + i%managers)
				next := bd.ManagerID(1 + (i+1)%managers)
				steps := []func() error{
					func() error {
						return a.Assign(ctx, store.Assignment{Account: acc, Dialog: dialog, Customer: bd.CustomerID(i + 1), To: bd.ManagerOf(m), Capacity: dialogs, At: at0})
					},
					func() error {
						return a.Assign(ctx, store.Assignment{Account: acc, Dialog: dialog, From: bd.ManagerOf(m), To: bd.ManagerOf(next), Capacity: dialogs, At: at0})
					},
					func() error {
						_, err := a.Record(ctx, store.Assignment{Account: acc, Dialog: dialog, To: bd.ManagerOf(m), At: at0})
						return err
					},
					func() error {
						_, err := a.Enqueue(ctx, store.Waiting{Dialog: bd.Dialog{Account: acc, ID: dialog}, Since: at0})
						return err
					},
				}
				for _, step := range steps {
					if err := step(); !refused(err) {
						t.Errorf("dialog %d: %v", dialog, err)
						return
					}
				}
			}
		})
		wg.Go(func() {
			<-start
			for i := w; i < dialogs; i += writers {
				if _, err := b.Close(ctx, acc, bd.DialogID(i+1), at0); err != nil {
					t.Errorf("Close(%d): %v", i+1, err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	for dialog := bd.DialogID(1); dialog <= dialogs; dialog++ {
		if r, err := a.Responsible(ctx, acc, dialog); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("closed dialog %d: Responsible = %s, %v; want none", dialog, r, err)
		}
	}
	ids := make([]bd.ManagerID, managers)
	for i := range ids {
		ids[i] = bd.ManagerID(i + 1)
	}
	ls, err := a.Loads(ctx, acc, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Open != 0 {
			t.Errorf("manager %d holds %d open dialogs after all were closed", l.Manager, l.Open)
		}
		if ds, err := a.DialogsOf(ctx, acc, l.Manager); err != nil || len(ds) != 0 {
			t.Errorf("DialogsOf(%d) = %v, %v after all were closed", l.Manager, ds, err)
		}
	}
	if n, err := a.QueueLen(ctx, acc); err != nil || n != 0 {
		t.Errorf("QueueLen = %d, %v after all were closed; want 0", n, err)
	}
	var closed int
	if err := dbA.QueryRowContext(ctx, `SELECT count(*) FROM bd_closed WHERE account = $1`, string(acc)).Scan(&closed); err != nil {
		t.Fatal(err)
	}
	if closed != dialogs {
		t.Errorf("bd_closed holds %d dialogs, want %d", closed, dialogs)
	}
}

func TestSQLiteCloseRace(t *testing.T) {
	t.Parallel()
	dsn := migratedSQLiteDSN(t)
	testCloseRace(t, sqlstore.SQLite, openDB(t, "sqlite", dsn), openDB(t, "sqlite", dsn))
}

func TestPostgresCloseRace(t *testing.T) {
	t.Parallel()
	dsn := migratedPostgresSchema(t)
	testCloseRace(t, sqlstore.Postgres, openDB(t, "pgx", dsn), openDB(t, "pgx", dsn))
}

// testMoveDirections moves dialogs between managers whose ids ascend and
// descend (the two orders in which the load rows are taken), to and from
// bots, onto full managers and back, and checks the loads, the times of
// the last assignment and the customers' last managers.
func testMoveDirections(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	ctx := t.Context()
	s := open(t, db, d)
	const acc = bd.AccountID("move")
	later := at0.Add(time.Minute)
	mustAssign := func(a store.Assignment) {
		t.Helper()
		a.Account = acc
		if err := s.Assign(ctx, a); err != nil {
			t.Fatalf("Assign(dialog %d from %s to %s): %v", a.Dialog, a.From, a.To, err)
		}
	}
	wantLoads := func(want map[bd.ManagerID]int) {
		t.Helper()
		for m, open := range want {
			ls, err := s.Loads(ctx, acc, []bd.ManagerID{m}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ls[0].Open != open {
				t.Fatalf("manager %d holds %d open dialogs, want %d", m, ls[0].Open, open)
			}
		}
	}
	mustAssign(store.Assignment{Dialog: 1, Customer: 10, To: bd.ManagerOf(5), Capacity: 1, At: at0})
	mustAssign(store.Assignment{Dialog: 2, Customer: 20, To: bd.ManagerOf(3), Capacity: 1, At: at0})

	// Both full: a move either way is refused and changes nothing, whichever
	// load row comes first.
	for _, mv := range []store.Assignment{
		{Dialog: 1, From: bd.ManagerOf(5), To: bd.ManagerOf(3)},
		{Dialog: 2, From: bd.ManagerOf(3), To: bd.ManagerOf(5)},
	} {
		mv.Account, mv.Capacity, mv.At = acc, 1, later
		if err := s.Assign(ctx, mv); !errors.Is(err, store.ErrCapacity) {
			t.Fatalf("move of dialog %d from %s to full %s: error = %v, want ErrCapacity", mv.Dialog, mv.From, mv.To, err)
		}
	}
	wantLoads(map[bd.ManagerID]int{3: 1, 5: 1})

	// Descending: 5 -> 3, with room for two.
	mustAssign(store.Assignment{Dialog: 1, Customer: 10, From: bd.ManagerOf(5), To: bd.ManagerOf(3), Capacity: 2, At: later})
	wantLoads(map[bd.ManagerID]int{3: 2, 5: 0})
	ls, err := s.Loads(ctx, acc, []bd.ManagerID{3, 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ls[0].LastAssignedAt.Equal(later) || !ls[1].LastAssignedAt.Equal(at0) {
		t.Fatalf("after moving to 3: LastAssignedAt of 3 = %v (want %v), of 5 = %v (want %v, unchanged)",
			ls[0].LastAssignedAt, later, ls[1].LastAssignedAt, at0)
	}
	if m, err := s.LastManager(ctx, acc, 10); err != nil || m != 3 {
		t.Fatalf("LastManager(10) = %d, %v; want 3", m, err)
	}
	// Ascending: 3 -> 5; the customer is not given, so the last manager of
	// the dialog's customer stays as it was.
	mustAssign(store.Assignment{Dialog: 2, From: bd.ManagerOf(3), To: bd.ManagerOf(5), Capacity: 1, At: later})
	wantLoads(map[bd.ManagerID]int{3: 1, 5: 1})
	if m, err := s.LastManager(ctx, acc, 20); err != nil || m != 3 {
		t.Fatalf("LastManager(20) = %d, %v; want 3: the move named no customer", m, err)
	}
	// To a bot and back.
	mustAssign(store.Assignment{Dialog: 2, From: bd.ManagerOf(5), To: bd.BotOf(9), At: later})
	wantLoads(map[bd.ManagerID]int{5: 0})
	if r, err := s.Responsible(ctx, acc, 2); err != nil || r != bd.BotOf(9) {
		t.Fatalf("Responsible(2) = %s, %v; want bot 9", r, err)
	}
	mustAssign(store.Assignment{Dialog: 2, Customer: 20, From: bd.BotOf(9), To: bd.ManagerOf(5), Capacity: 1, At: later})
	wantLoads(map[bd.ManagerID]int{5: 1})
	if m, err := s.LastManager(ctx, acc, 20); err != nil || m != 5 {
		t.Fatalf("LastManager(20) = %d, %v; want 5", m, err)
	}
	// A move onto the holder itself, or from a bot that does not hold it.
	for _, mv := range []store.Assignment{
		{Dialog: 2, From: bd.ManagerOf(5), To: bd.ManagerOf(5)},
		{Dialog: 2, From: bd.BotOf(9), To: bd.ManagerOf(3)},
	} {
		mv.Account, mv.Capacity, mv.At = acc, 5, later
		if err := s.Assign(ctx, mv); !errors.Is(err, store.ErrAssigned) {
			t.Fatalf("move of dialog 2 from %s to %s: error = %v, want ErrAssigned", mv.From, mv.To, err)
		}
	}
	wantLoads(map[bd.ManagerID]int{3: 1, 5: 1})
	// A malformed From is refused before anything is read.
	err = s.Assign(ctx, store.Assignment{Account: acc, Dialog: 2, From: bd.Responsible{Kind: bd.ManagerResponsible}, To: bd.ManagerOf(3), Capacity: 5, At: later})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("move from manager 0: error = %v, want ErrInvalid", err)
	}
}

func TestSQLiteMoveDirections(t *testing.T) {
	t.Parallel()
	testMoveDirections(t, sqlstore.SQLite, newSQLiteDB(t))
}
func TestPostgresMoveDirections(t *testing.T) {
	t.Parallel()
	testMoveDirections(t, sqlstore.Postgres, newPostgresDB(t))
}
