package sqlstore_test

import (
	"database/sql"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// A delayed job is made available once due, without waiting for River's
// scheduler (every 5 s): the workers then fetch it.
func TestPostgresDueJobsBecomeAvailable(t *testing.T) {
	t.Parallel()
	testDueJobsBecomeAvailable(t, newPostgresDB(t), sqlstore.Postgres,
		`UPDATE river_job SET scheduled_at = now() - interval '1 second' WHERE kind = 'botdistributor'`)
}

func TestSQLiteDueJobsBecomeAvailable(t *testing.T) {
	t.Parallel()
	testDueJobsBecomeAvailable(t, newSQLiteDB(t), sqlstore.SQLite,
		`UPDATE river_job SET scheduled_at = datetime('now', 'subsec', '-1 second') WHERE kind = 'botdistributor'`)
}

// testDueJobsBecomeAvailable stores a job an hour away, checks that it is
// not made available, moves its time with past (a statement in the
// database's dialect) and checks that it is.
func testDueJobsBecomeAvailable(t *testing.T, db *sql.DB, d sqlstore.Dialect, past string) {
	s := open(t, db, d)
	ctx := t.Context()
	const acct bd.AccountID = "shop"
	state := func() string {
		t.Helper()
		var st string
		if err := db.QueryRowContext(ctx, `SELECT state FROM river_job WHERE kind = 'botdistributor' ORDER BY id DESC LIMIT 1`).Scan(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if err := s.Submit(ctx, store.Job{Kind: store.JobDrain, Account: acct, Delay: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := s.PromoteDue(ctx, string(acct)); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "scheduled" {
		t.Fatalf("a job not due yet is %s, want scheduled", got)
	}
	// Its hour passes: the job's time is moved, not waited for.
	if _, err := db.ExecContext(ctx, past); err != nil {
		t.Fatal(err)
	}
	if err := s.PromoteDue(ctx, string(acct)); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != "available" {
		t.Fatalf("a due job is %s, want available", got)
	}
}
