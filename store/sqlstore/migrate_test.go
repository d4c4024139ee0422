package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// openConcurrently opens one store per pool, all at once, and checks that
// every Open succeeds and that each schema version is recorded exactly once.
func openConcurrently(t *testing.T, d sqlstore.Dialect, pools []*sql.DB) {
	start := make(chan struct{})
	errs := make([]error, len(pools))
	var wg sync.WaitGroup
	for i, db := range pools {
		wg.Go(func() {
			<-start
			_, errs[i] = sqlstore.Open(t.Context(), db, d)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d of %d concurrent: %v", i, len(pools), err)
		}
	}
	if t.Failed() {
		return
	}
	wantVersions(t, pools[0], sqlstore.SchemaVersion())
}

// wantVersions checks that bd_schema_migrations holds versions 1..latest,
// each once.
func wantVersions(t *testing.T, db *sql.DB, latest int) {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT version, count(*) FROM bd_schema_migrations GROUP BY version ORDER BY version`)
	if err != nil {
		t.Fatalf("reading bd_schema_migrations: %v", err)
	}
	defer rows.Close()
	want := 1
	for rows.Next() {
		var v, n int
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		if v != want || n != 1 {
			t.Fatalf("bd_schema_migrations: version %d recorded %d times, want version %d recorded once", v, n, want)
		}
		want++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want-1 != latest {
		t.Fatalf("bd_schema_migrations ends at version %d, want %d", want-1, latest)
	}
}

func TestSchemaVersion(t *testing.T) {
	t.Parallel()
	if v := sqlstore.SchemaVersion(); v < 1 {
		t.Fatalf("SchemaVersion() = %d, want at least 1", v)
	}
}

func TestSQLiteConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := sqliteDSN(t)
	pools := make([]*sql.DB, 4)
	for i := range pools {
		pools[i] = openDB(t, "sqlite", dsn)
	}
	openConcurrently(t, sqlstore.SQLite, pools)
}

func TestPostgresConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := newPostgresSchema(t)
	pools := make([]*sql.DB, 4)
	for i := range pools {
		pools[i] = openDB(t, "pgx", dsn)
	}
	openConcurrently(t, sqlstore.Postgres, pools)
}

// testReopen checks that opening a migrated database again changes nothing
// and keeps the data.
func testReopen(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	ctx := t.Context()
	s := open(t, db, d)
	if _, err := s.ClaimEvent(ctx, "acc", "kept", at0); err != nil {
		t.Fatal(err)
	}
	s = open(t, db, d)
	wantVersions(t, db, sqlstore.SchemaVersion())
	if first, err := s.ClaimEvent(ctx, "acc", "kept", at0); err != nil || first {
		t.Fatalf("ClaimEvent after reopening = %t, %v; want false: the claim made before survives", first, err)
	}
}

func TestSQLiteReopen(t *testing.T) {
	t.Parallel()
	testReopen(t, sqlstore.SQLite, emptySQLiteDB(t))
}
func TestPostgresReopen(t *testing.T) {
	t.Parallel()
	testReopen(t, sqlstore.Postgres, openDB(t, "pgx", newPostgresSchema(t)))
}

// testSchemaTooNew checks that Open refuses a database a newer version
// migrated, with a clear error, and leaves it alone.
func testSchemaTooNew(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	ctx := t.Context()
	open(t, db, d)
	next := sqlstore.SchemaVersion() + 1
	if _, err := db.ExecContext(ctx, `INSERT INTO bd_schema_migrations (version, name, applied_at) VALUES ($1, 'future.sql', $2)`,
		next, futureAppliedAt(d)); err != nil {
		t.Fatal(err)
	}
	_, err := sqlstore.Open(ctx, db, d)
	if !errors.Is(err, sqlstore.ErrSchemaTooNew) {
		t.Fatalf("Open of a database at version %d: error = %v, want ErrSchemaTooNew", next, err)
	}
	for _, part := range []string{"version " + itoa(next), itoa(sqlstore.SchemaVersion())} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM bd_schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != next {
		t.Fatalf("bd_schema_migrations has %d rows after the refused Open, want %d", n, next)
	}
}

func futureAppliedAt(d sqlstore.Dialect) any {
	if d == sqlstore.SQLite {
		return at0.UnixMicro()
	}
	return at0
}

func TestSQLiteSchemaTooNew(t *testing.T) {
	t.Parallel()
	testSchemaTooNew(t, sqlstore.SQLite, emptySQLiteDB(t))
}
func TestPostgresSchemaTooNew(t *testing.T) {
	t.Parallel()
	testSchemaTooNew(t, sqlstore.Postgres, openDB(t, "pgx", newPostgresSchema(t)))
}

func TestOpenRejectsBadArguments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := emptySQLiteDB(t)
	tries := []struct {
		name string
		open func() (*sqlstore.Store, error)
		want string
	}{
		{"nil db", func() (*sqlstore.Store, error) { return sqlstore.Open(ctx, nil, sqlstore.SQLite) }, "db is nil"},
		{"zero dialect", func() (*sqlstore.Store, error) { return sqlstore.Open(ctx, db, 0) }, "unknown dialect"},
		{"unknown dialect", func() (*sqlstore.Store, error) { return sqlstore.Open(ctx, db, 42) }, "Dialect(42)"},
		{"negative retries", func() (*sqlstore.Store, error) {
			return sqlstore.Open(ctx, db, sqlstore.SQLite, sqlstore.WithMaxRetries(-1))
		}, "sqlstore: Open: WithMaxRetries: negative count -1"},
		{"nil option", func() (*sqlstore.Store, error) {
			return sqlstore.Open(ctx, db, sqlstore.SQLite, nil)
		}, "sqlstore: Open: nil option"},
	}
	for _, tc := range tries {
		s, err := tc.open()
		if err == nil || s != nil {
			t.Errorf("Open with %s = %v, %v; want an error", tc.name, s, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open with %s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
	// Nothing was created by the refused calls.
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("refused Open calls created %d schema objects", n)
	}
}

func TestOpenWrongDialect(t *testing.T) {
	t.Parallel()
	_, err := sqlstore.Open(t.Context(), emptySQLiteDB(t), sqlstore.Postgres)
	if err == nil {
		t.Fatal("Open of a SQLite database as PostgreSQL succeeded")
	}
	if !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("error %q does not name the dialect", err)
	}
}

// TestSQLiteSwitchesToWAL opens a file created with a rollback journal and
// checks that Open leaves it in WAL mode.
func TestSQLiteSwitchesToWAL(t *testing.T) {
	t.Parallel()
	dsn := sqliteDSN(t)
	dsn = dsn[:strings.Index(dsn, "?")] + "?_pragma=busy_timeout%2810000%29"
	db := openDB(t, "sqlite", dsn)
	var mode string
	if err := db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "delete" {
		t.Fatalf("a new file's journal mode = %q, %v; want delete", mode, err)
	}
	open(t, db, sqlstore.SQLite)
	if err := db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode after Open = %q, %v; want wal", mode, err)
	}
}

// testUpgradeFromV1 builds a database as version 1 of the package left it,
// with an assignment, a queue entry and a reply claim, then opens it: the
// data must survive the upgrade and work with what version 2 adds.
func testUpgradeFromV1(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	ctx := t.Context()
	if err := sqlstore.MigrateTo(ctx, db, d, 1); err != nil {
		t.Fatalf("migrating to version 1: %v", err)
	}
	wantVersions(t, db, 1)
	if d == sqlstore.Postgres {
		var outcome string
		if err := db.QueryRowContext(ctx, `SELECT bd_assign('acc', 1, 1::smallint, 7, 100, 5, $1)`, at0).Scan(&outcome); err != nil || outcome != "ok" {
			t.Fatalf("version 1 bd_assign = %q, %v", outcome, err)
		}
	} else {
		for _, q := range []string{
			`INSERT INTO bd_responsibles (account, dialog, kind, responsible, customer, assigned_at) VALUES ('acc', 1, 1, 7, 100, 0)`,
			`INSERT INTO bd_manager_loads (account, manager, open_dialogs, last_assigned_at) VALUES ('acc', 7, 1, 0)`,
		} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range []string{
		`INSERT INTO bd_queue (account, dialog, chat, channel, customer, customer_first_name, customer_last_name,
			customer_phone, customer_email, opened_at, reason, priority, since)
			VALUES ('acc', 2, 1, 1, 200, '', '', '', '', $1, 'no_manager_online', 0, $1)`,
		`INSERT INTO bd_replies (account, dialog, situation, claimed_at) VALUES ('acc', 2, 'dialog_received', $1)`,
	} {
		if _, err := db.ExecContext(ctx, q, futureAppliedAt(d)); err != nil {
			t.Fatal(err)
		}
	}

	s := open(t, db, d)
	wantVersions(t, db, sqlstore.SchemaVersion())
	if r, err := s.Responsible(ctx, "acc", 1); err != nil || r != bd.ManagerOf(7) {
		t.Fatalf("Responsible(1) after the upgrade = %s, %v; want manager 7", r, err)
	}
	if prev, err := s.Close(ctx, "acc", 1, at0); err != nil || prev != bd.ManagerOf(7) {
		t.Fatalf("Close(1) after the upgrade = %s, %v; want manager 7", prev, err)
	}
	if prev, err := s.Close(ctx, "acc", 2, at0); err != nil || !prev.IsZero() {
		t.Fatalf("Close(2) after the upgrade = %s, %v; want nobody", prev, err)
	}
	if ls, err := s.Loads(ctx, "acc", []bd.ManagerID{7}, nil); err != nil || ls[0].Open != 0 {
		t.Fatalf("Loads(7) after closing its dialog = %+v, %v; want 0 open", ls, err)
	}
	if n, err := s.QueueLen(ctx, "acc"); err != nil || n != 0 {
		t.Fatalf("QueueLen after closing the waiting dialog = %d, %v; want 0", n, err)
	}
	if _, err := s.PruneEvents(ctx, at0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if first, err := s.ClaimReply(ctx, "acc", 2, bd.DialogReceived); err != nil || !first {
		t.Fatalf("ClaimReply of a pruned closed dialog = %t, %v; want true: its claims are forgotten", first, err)
	}
	if d == sqlstore.Postgres {
		// Only the new bd_assign is left, so a program of version 1 still
		// running fails instead of assigning closed dialogs.
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_proc WHERE proname = 'bd_assign' AND pronamespace = current_schema()::regnamespace`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d bd_assign functions after the upgrade (%v), want 1", n, err)
		}
	}
}

func TestSQLiteUpgradeFromV1(t *testing.T) {
	t.Parallel()
	testUpgradeFromV1(t, sqlstore.SQLite, emptySQLiteDB(t))
}
func TestPostgresUpgradeFromV1(t *testing.T) {
	t.Parallel()
	testUpgradeFromV1(t, sqlstore.Postgres, openDB(t, "pgx", newPostgresSchema(t)))
}
