package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// postgresEnv names the environment variable holding the DSN of a
// PostgreSQL database the tests may create schemas in.
const postgresEnv = "BOTDISTRIBUTOR_TEST_POSTGRES"

// postgresDSN returns the test database's DSN, or skips the test.
func postgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		t.Skip("PostgreSQL tests need a database: set " + postgresEnv +
			" to its DSN, e.g. " + postgresEnv + "='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'")
	}
	return dsn
}

// sqliteDSN returns the DSN of a fresh database file in a temporary
// directory. extra pragmas are appended (e.g. "synchronous(OFF)").
func sqliteDSN(t testing.TB, pragmas ...string) string {
	t.Helper()
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return "file:" + filepath.Join(t.TempDir(), "store.db") + "?" + q.Encode()
}

// openDB opens a pool and closes it when the test ends.
func openDB(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("sql.Open(%s): %v", driver, err)
	}
	db.SetMaxIdleConns(32)
	t.Cleanup(func() { db.Close() })
	return db
}

// newSQLiteDB returns a pool over a fresh SQLite file. The conformance
// suite's data is throwaway, so it does not wait for the disk.
func newSQLiteDB(t testing.TB) *sql.DB {
	t.Helper()
	return openDB(t, "sqlite", sqliteDSN(t, "synchronous(OFF)"))
}

// newPostgresSchema creates an empty schema with a random name, drops it when
// the test ends, and returns a DSN whose search_path selects it.
func newPostgresSchema(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(postgresDSN(t))
	if err != nil {
		t.Fatalf("%s is not a URL DSN: %v", postgresEnv, err)
	}
	// The schema is dropped when the test ends: a commit need not wait
	// for the disk (only a crash of PostgreSQL itself could lose one),
	// neither the schema's creation and drop nor the store's writes.
	q := u.Query()
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	admin := openDB(t, "pgx", u.String())
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "bd_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// newPostgresDB returns a pool over a fresh schema.
func newPostgresDB(t testing.TB) *sql.DB {
	t.Helper()
	return openDB(t, "pgx", newPostgresSchema(t))
}

// open opens a store over db or stops the test.
func open(t testing.TB, db *sql.DB, d sqlstore.Dialect, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), db, d, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", d, err)
	}
	return s
}

// at0 is a reference time: UTC, microsecond precision.
var at0 = time.Date(2025, time.March, 14, 9, 26, 53, 589_793_000, time.UTC)

func itoa(n int) string { return strconv.Itoa(n) }
