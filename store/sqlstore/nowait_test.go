package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// lockLoad holds manager m's row of bd_manager_loads locked, in a
// transaction of a pool of its own, as another process assigning them a
// dialog does. It returns the backend pid of that transaction and a
// function that commits it (rolled back at the end of the test otherwise).
func lockLoad(t *testing.T, db *sql.DB, acc bd.AccountID, m bd.ManagerID) (pid int, commit func()) {
	t.Helper()
	ctx := t.Context()
	tx, pid := otherTx(t, db)
	var open int
	if err := tx.QueryRowContext(ctx, `SELECT open_dialogs FROM bd_manager_loads WHERE account = $1 AND manager = $2 FOR UPDATE`,
		string(acc), int64(m)).Scan(&open); err != nil {
		t.Fatalf("locking the load row of manager %d: %v", m, err)
	}
	return pid, func() {
		t.Helper()
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// otherTx begins a transaction of another session of db, rolled back at
// the end of the test unless committed, and returns its backend's pid.
func otherTx(t *testing.T, db *sql.DB) (*sql.Tx, int) {
	t.Helper()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	var pid int
	if err := tx.QueryRowContext(t.Context(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return tx, pid
}

// awaitBlocked returns once a session of the database waits for a lock the
// session pid holds. It fails the test if done delivers first: the call
// that should wait returned instead.
func awaitBlocked[T any](t *testing.T, db *sql.DB, pid int, done <-chan T) {
	t.Helper()
	ctx := t.Context()
	for {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case got := <-done:
			t.Fatalf("returned %+v while the load row was locked by another transaction; want it to wait", got)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(5 * time.Millisecond): // polling pg_stat_activity
		}
	}
}

// An assignment with NoWait to a manager whose load row another transaction
// holds is refused with ErrBusy at once and changes nothing; without
// NoWait it waits for that transaction and is made. A move waits either
// way, and so do managers nobody holds or who have no load row yet.
func TestPostgresAssignWithoutWaiting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := migratedPostgresSchema(t)
	s := open(t, openDB(t, "pgx", dsn), sqlstore.Postgres)
	other := openDB(t, "pgx", dsn) // the other process
	const acc = bd.AccountID("no-wait")
	later := at0.Add(time.Minute)
	mustAssign := func(a store.Assignment) {
		t.Helper()
		a.Account = acc
		if err := s.Assign(ctx, a); err != nil {
			t.Fatalf("Assign(dialog %d from %s to %s): %v", a.Dialog, a.From, a.To, err)
		}
	}
	wantLoad := func(m bd.ManagerID, open int, last time.Time) {
		t.Helper()
		ls, err := s.Loads(ctx, acc, []bd.ManagerID{m}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ls[0].Open != open || !ls[0].LastAssignedAt.Equal(last) {
			t.Fatalf("load of manager %d = %d open, last assigned %v; want %d, %v", m, ls[0].Open, ls[0].LastAssignedAt, open, last)
		}
	}
	// Managers 7 and 8 have load rows.
	mustAssign(store.Assignment{Dialog: 1, Customer: 10, To: bd.ManagerOf(7), Capacity: 5, At: at0})
	mustAssign(store.Assignment{Dialog: 3, Customer: 30, To: bd.ManagerOf(8), Capacity: 5, At: at0})

	pid, commit := lockLoad(t, other, acc, 7)
	// A test that hangs here fails by this deadline instead: the call must
	// not wait for the lock.
	busyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	busy := store.Assignment{Account: acc, Dialog: 2, Customer: 20, To: bd.ManagerOf(7), Capacity: 5, At: later, NoWait: true,
		Then: []store.Job{{Kind: store.JobReply, Account: acc, Dialog: bd.Dialog{Account: acc, ID: 2}, Situation: bd.DialogReceived}}}
	if err := s.Assign(busyCtx, busy); !errors.Is(err, store.ErrBusy) {
		t.Fatalf("Assign with NoWait to manager 7, whose load another transaction holds: error = %v, want ErrBusy", err)
	}
	if r, err := s.Responsible(ctx, acc, 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Responsible(2) after ErrBusy = %s, %v; want none", r, err)
	}
	wantLoad(7, 1, at0)
	if m, err := s.LastManager(ctx, acc, 20); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LastManager(20) after ErrBusy = %d, %v; want none", m, err)
	}
	var claims int
	if err := other.QueryRowContext(ctx, `SELECT count(*) FROM bd_replies WHERE account = $1 AND dialog = 2`, string(acc)).Scan(&claims); err != nil || claims != 0 {
		t.Fatalf("%d reply claims of dialog 2 after ErrBusy (%v); want its reply job rolled back", claims, err)
	}
	// Managers nobody holds are assigned without waiting, with a load row
	// or without one yet.
	mustAssign(store.Assignment{Dialog: 4, Customer: 40, To: bd.ManagerOf(8), Capacity: 5, At: later, NoWait: true})
	mustAssign(store.Assignment{Dialog: 5, Customer: 50, To: bd.ManagerOf(9), Capacity: 5, At: later, NoWait: true})
	wantLoad(8, 2, later)
	wantLoad(9, 1, later)

	// Without NoWait, the same assignment waits for the other transaction.
	done := make(chan error, 1)
	go func() {
		wait := busy
		wait.NoWait = false
		done <- s.Assign(ctx, wait)
	}()
	awaitBlocked(t, other, pid, done)
	select {
	case err := <-done:
		t.Fatalf("Assign without NoWait returned %v before the other transaction ended", err)
	default:
	}
	commit()
	if err := <-done; err != nil {
		t.Fatalf("Assign without NoWait once the other transaction committed: %v", err)
	}
	if r, err := s.Responsible(ctx, acc, 2); err != nil || r != bd.ManagerOf(7) {
		t.Fatalf("Responsible(2) = %s, %v; want manager 7", r, err)
	}
	wantLoad(7, 2, later)
	// The assignment's reply job holds the claim.
	if first, err := s.ClaimReply(ctx, acc, 2, bd.DialogReceived); err != nil || first {
		t.Fatalf("ClaimReply(2) after the assignment = %t, %v; want claimed by its reply job", first, err)
	}

	// A move waits for the load row of its target even with NoWait: it
	// takes two rows in id order and may not be refused half-way.
	pid, commit = lockLoad(t, other, acc, 8)
	go func() {
		done <- s.Assign(ctx, store.Assignment{Account: acc, Dialog: 2, From: bd.ManagerOf(7), To: bd.ManagerOf(8), Capacity: 5, At: later, NoWait: true})
	}()
	awaitBlocked(t, other, pid, done)
	commit()
	if err := <-done; err != nil {
		t.Fatalf("move with NoWait once the other transaction committed: %v", err)
	}
	wantLoad(7, 1, later)
	wantLoad(8, 3, later)
}

// A process of schema version 2 to 4 still running calls bd_assign with
// nine arguments: the call works before and after the upgrade to version 5,
// and waits for a locked load row as it always did.
func TestPostgresAssignCalledAsVersion4(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := newPostgresSchema(t)
	db := openDB(t, "pgx", dsn)
	const acc = bd.AccountID("version-4")
	assign := func(q interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}, dialog, manager int64) (string, error) {
		// The statement and argument types of version 4's Store.Assign.
		var outcome string
		err := q.QueryRowContext(ctx, `SELECT bd_assign($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			string(acc), dialog, int64(1), manager, 100+dialog, 5, at0, int64(0), int64(0)).Scan(&outcome)
		return outcome, err
	}
	if err := sqlstore.MigrateTo(ctx, db, sqlstore.Postgres, 4); err != nil {
		t.Fatalf("migrating to version 4: %v", err)
	}
	if outcome, err := assign(db, 1, 7); err != nil || outcome != "ok" {
		t.Fatalf("version 4 bd_assign = %q, %v", outcome, err)
	}

	s := open(t, db, sqlstore.Postgres)
	wantVersions(t, db, sqlstore.SchemaVersion())
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_proc WHERE proname = 'bd_assign' AND pronamespace = current_schema()::regnamespace`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d bd_assign functions after the upgrade (%v), want 1", n, err)
	}
	if outcome, err := assign(db, 2, 7); err != nil || outcome != "ok" {
		t.Fatalf("bd_assign with nine arguments after the upgrade = %q, %v", outcome, err)
	}
	if outcome, err := assign(db, 2, 7); err != nil || outcome != "assigned" {
		t.Fatalf("bd_assign with nine arguments of a held dialog = %q, %v; want assigned", outcome, err)
	}

	// It waits for a load row another transaction holds, as before.
	other := openDB(t, "pgx", dsn)
	pid, commit := lockLoad(t, other, acc, 7)
	type result struct {
		outcome string
		err     error
	}
	res := make(chan result, 1)
	go func() {
		outcome, err := assign(db, 3, 7)
		res <- result{outcome, err}
	}()
	awaitBlocked(t, other, pid, res)
	commit()
	if r := <-res; r.err != nil || r.outcome != "ok" {
		t.Fatalf("bd_assign with nine arguments once the other transaction committed = %q, %v; want ok", r.outcome, r.err)
	}
	ls, err := s.Loads(ctx, acc, []bd.ManagerID{7}, nil)
	if err != nil || ls[0].Open != 3 {
		t.Fatalf("Loads(7) = %+v, %v; want 3 open", ls, err)
	}
}

// An assignment with NoWait takes the manager's load row after the dialog's
// row, as every write does: racing a Release of the same dialog from the
// same manager (bd_release deletes the dialog's row, then frees the load),
// it waits for the Release instead of deadlocking with it.
func TestPostgresAssignWithoutWaitingDuringRelease(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := migratedPostgresSchema(t)
	// No retries: a deadlock would be an error, not a pause and a retry.
	s := open(t, openDB(t, "pgx", dsn), sqlstore.Postgres, sqlstore.WithMaxRetries(0))
	other := openDB(t, "pgx", dsn)
	const acc = bd.AccountID("no-wait-release")
	if err := s.Assign(ctx, store.Assignment{Account: acc, Dialog: 1, Customer: 10, To: bd.ManagerOf(7), Capacity: 5, At: at0}); err != nil {
		t.Fatal(err)
	}
	// bd_release's two statements, one at a time, in another transaction.
	tx, pid := otherTx(t, other)
	if _, err := tx.ExecContext(ctx, `DELETE FROM bd_responsibles WHERE account = $1 AND dialog = 1`, string(acc)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Assign(ctx, store.Assignment{Account: acc, Dialog: 1, Customer: 10, To: bd.ManagerOf(7), Capacity: 5, At: at0, NoWait: true})
	}()
	awaitBlocked(t, other, pid, done)
	if _, err := tx.ExecContext(ctx, `UPDATE bd_manager_loads SET open_dialogs = open_dialogs - 1
		WHERE account = $1 AND manager = 7 AND open_dialogs > 0`, string(acc)); err != nil {
		t.Fatalf("the release's load update: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Assign with NoWait racing a release of the dialog: %v", err)
	}
	ls, err := s.Loads(ctx, acc, []bd.ManagerID{7}, nil)
	if err != nil || ls[0].Open != 1 {
		t.Fatalf("Loads(7) = %+v, %v; want 1 open", ls, err)
	}
}

// An Assign given jobs takes the dialog's lock before it stores them, as
// every write takes it first: racing an Enqueue of the same dialog that
// stores the same reply (bd_enqueue under the dialog's lock, then the
// reply's claim), it waits for the Enqueue instead of deadlocking with it.
func TestPostgresAssignJobsAfterTheDialogLock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := migratedPostgresSchema(t)
	// No retries: a deadlock would be an error, not a pause and a retry.
	s := open(t, openDB(t, "pgx", dsn), sqlstore.Postgres, sqlstore.WithMaxRetries(0))
	other := openDB(t, "pgx", dsn)
	const acc = bd.AccountID("jobs-after-lock")
	tx, pid := otherTx(t, other)
	if _, err := tx.ExecContext(ctx, `SELECT bd_lock_dialog($1, 1)`, string(acc)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Assign(ctx, store.Assignment{Account: acc, Dialog: 1, Customer: 10, To: bd.ManagerOf(7), Capacity: 5, At: at0,
			Then: []store.Job{{Kind: store.JobReply, Account: acc, Dialog: bd.Dialog{Account: acc, ID: 1}, Situation: bd.DialogReceived}}})
	}()
	awaitBlocked(t, other, pid, done)
	if _, err := tx.ExecContext(ctx, `INSERT INTO bd_replies (account, dialog, situation, claimed_at) VALUES ($1, 1, $2, $3)
		ON CONFLICT (account, dialog, situation) DO NOTHING`, string(acc), string(bd.DialogReceived), at0); err != nil {
		t.Fatalf("the enqueue's reply claim: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Assign with a reply job racing an enqueue of the dialog: %v", err)
	}
	if r, err := s.Responsible(ctx, acc, 1); err != nil || r != bd.ManagerOf(7) {
		t.Fatalf("Responsible(1) = %s, %v; want manager 7", r, err)
	}
}
