package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	return sqliteFileDSN(filepath.Join(t.TempDir(), "store.db"), pragmas...)
}

// sqliteFileDSN returns the DSN of the database file at path, with the
// pragmas every test sets and the extra ones appended.
func sqliteFileDSN(path string, pragmas ...string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return "file:" + path + "?" + q.Encode()
}

// migratedSQLiteDSN is sqliteDSN for a database file at the current
// version that holds no data: a copy of sqliteTemplate.
func migratedSQLiteDSN(t testing.TB, pragmas ...string) string {
	t.Helper()
	tmpl, err := sqliteTemplate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "store.db")
	if err := os.WriteFile(path, tmpl, 0o600); err != nil {
		t.Fatal(err)
	}
	return sqliteFileDSN(path, pragmas...)
}

// sqliteTemplate returns the contents of a SQLite database file migrated
// to the current version, holding no data, in WAL mode as Open leaves a
// file. It is made on first use, once per test binary: a copy costs a
// test much less than the migrations.
var sqliteTemplate = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "sqlstore-template-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "store.db")
	db, err := sql.Open("sqlite", sqliteFileDSN(path))
	if err != nil {
		return nil, err
	}
	_, err = sqlstore.Open(context.Background(), db, sqlstore.SQLite)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("migrating the SQLite template: %w", err)
	}
	// Closing the last connection folds the write-ahead log into the file.
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the SQLite template's write-ahead log outlived its connections (%v)", err)
	}
	return os.ReadFile(path)
})

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

// newSQLiteDB returns a pool over a SQLite file of its own at the current
// version that holds no data (see migratedSQLiteDSN). The conformance
// suite's data is throwaway, so it does not wait for the disk.
func newSQLiteDB(t testing.TB) *sql.DB {
	t.Helper()
	return openDB(t, "sqlite", migratedSQLiteDSN(t, "synchronous(OFF)"))
}

// emptySQLiteDB returns a pool over a fresh, empty SQLite file, for the
// tests of migrations and of Open. It does not wait for the disk either.
func emptySQLiteDB(t testing.TB) *sql.DB {
	t.Helper()
	return openDB(t, "sqlite", sqliteDSN(t, "synchronous(OFF)"))
}

// postgresURL returns the test database's DSN as a URL, or skips the test.
// Its commits need not wait for the disk: the tests' schemas are dropped
// when the tests end (only a crash of PostgreSQL itself could lose a
// commit), neither their creation and drop nor the stores' writes.
func postgresURL(t testing.TB) *url.URL {
	t.Helper()
	u, err := url.Parse(postgresDSN(t))
	if err != nil {
		t.Fatalf("%s is not a URL DSN: %v", postgresEnv, err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	return u
}

// schemaDSN returns a DSN like base whose search_path selects schema and
// whose connections name the schema as their application_name, so that
// the schema's sessions can be told apart in pg_stat_activity.
func schemaDSN(base *url.URL, schema string) string {
	u := *base
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("application_name", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// createSchema creates an empty schema with a random name and returns the
// name.
func createSchema(ctx context.Context, admin *sql.DB) (string, error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "bd_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", fmt.Errorf("creating schema %s: %w", schema, err)
	}
	return schema, nil
}

// newPostgresSchema creates an empty schema, drops it when the test ends,
// and returns a DSN whose search_path selects it. A test that needs a
// schema at the current version holding no data takes one from
// migratedPostgresSchema instead, which costs the database much less.
func newPostgresSchema(t testing.TB) string {
	t.Helper()
	u := postgresURL(t)
	admin, err := schemas.adminDB(u)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := createSchema(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schemaDSN(u, schema)
}

// migratedPostgresSchema returns a DSN whose search_path selects a schema
// at the current version that holds no data, taken from the pool of
// migrated schemas (see schemaPool). When the test ends, after the
// cleanups registered later (its pools and stores closed), the schema is
// emptied and goes back to the pool.
func migratedPostgresSchema(t testing.TB) string {
	t.Helper()
	u := postgresURL(t)
	s, err := schemas.take(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := schemas.put(s); err != nil {
			t.Errorf("returning schema %s to the pool: %v", s.name, err)
		}
	})
	return schemaDSN(u, s.name)
}

// newPostgresDB returns a pool over a schema at the current version that
// holds no data (see migratedPostgresSchema).
//
// The pool opens at most 32 connections: the invariant hammer's 64
// goroutines still contend for every row they share, and the tests of
// other packages running meanwhile (the load harness's and the
// distributor's processes hold tens) keep room within the server's 100.
func newPostgresDB(t testing.TB) *sql.DB {
	t.Helper()
	db := openDB(t, "pgx", migratedPostgresSchema(t))
	db.SetMaxOpenConns(32)
	return db
}

// schemas is the test binary's pool of migrated PostgreSQL schemas.
var schemas schemaPool

// TestMain runs the tests, then drops every schema the pool of migrated
// schemas made.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := schemas.drop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// schemaPool keeps PostgreSQL schemas that were migrated once, so that a
// test needing an empty schema at the current version costs a TRUNCATE of
// the tables it wrote instead of creating a schema, running every migration (River's and the
// store's) and dropping it, and the test database's catalog does not grow
// with every test. A schema goes back to the pool only once its sessions
// have all ended and, emptied, it is exactly as its migration left it.
type schemaPool struct {
	mu    sync.Mutex
	admin *sql.DB        // creates, empties and drops schemas; nil until first needed
	free  []pooledSchema // emptied, ready for the next test
	made  []string       // every schema the pool made, dropped at the end
}

// pooledSchema is a schema of the pool.
type pooledSchema struct {
	name string
	// tables are the schema's tables, read from the catalog right after
	// its migration.
	tables []string
	// migrated is the schema's state (see schemaState) right after its
	// migration.
	migrated string
}

// versionTables are the tables whose rows record the schema's migrations
// (the store's and River's): emptying a schema keeps them.
var versionTables = []string{"bd_schema_migrations", "river_migration"}

// adminDB returns the pool's connections to the test database at u,
// opening them on first use.
func (p *schemaPool) adminDB(u *url.URL) (*sql.DB, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.admin == nil {
		admin, err := sql.Open("pgx", u.String())
		if err != nil {
			return nil, fmt.Errorf("opening the test database: %w", err)
		}
		admin.SetMaxIdleConns(4)
		p.admin = admin
	}
	return p.admin, nil
}

// take returns a free schema of the pool, or a new one it creates and
// migrates.
func (p *schemaPool) take(u *url.URL) (pooledSchema, error) {
	admin, err := p.adminDB(u)
	if err != nil {
		return pooledSchema{}, err
	}
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()

	ctx := context.Background()
	name, err := createSchema(ctx, admin)
	if err != nil {
		return pooledSchema{}, err
	}
	p.mu.Lock()
	p.made = append(p.made, name)
	p.mu.Unlock()
	db, err := sql.Open("pgx", schemaDSN(u, name))
	if err != nil {
		return pooledSchema{}, fmt.Errorf("opening schema %s: %w", name, err)
	}
	_, err = sqlstore.Open(ctx, db, sqlstore.Postgres)
	db.Close()
	if err != nil {
		return pooledSchema{}, fmt.Errorf("migrating schema %s: %w", name, err)
	}
	s := pooledSchema{name: name}
	if s.tables, err = schemaTables(ctx, admin, name); err != nil {
		return pooledSchema{}, err
	}
	if s.migrated, err = schemaState(ctx, admin, s); err != nil {
		return pooledSchema{}, err
	}
	return s, nil
}

// put empties s once the sessions of the test that used it have ended, and
// returns it to the pool. A schema put fails to return (a session outlived
// its test, or the test changed what emptying does not undo) stays out of
// the pool and is dropped at the end.
//
// Only the tables the test changed are truncated: truncating a table gives
// it and each of its indexes new files, about as many as the migrations
// create, so truncating every table would cost nearly what migrating did.
// Every table is compared with the migrated schema before and after, so
// none can be left out.
func (p *schemaPool) put(s pooledSchema) error {
	ctx := context.Background()
	if err := awaitSessionsEnd(ctx, p.admin, s.name); err != nil {
		return err
	}
	state, err := schemaState(ctx, p.admin, s)
	if err != nil {
		return err
	}
	if changed := changedTables(s.migrated, state); len(changed) > 0 {
		if err := truncateTables(ctx, p.admin, s.name, changed); err != nil {
			return err
		}
		if state, err = schemaState(ctx, p.admin, s); err != nil {
			return err
		}
	}
	if state != s.migrated {
		return fmt.Errorf("emptied, it differs from what its migration left:\n%s", lineDiff(s.migrated, state))
	}
	p.mu.Lock()
	p.free = append(p.free, s)
	p.mu.Unlock()
	return nil
}

// drop drops every schema the pool made and closes its connections.
func (p *schemaPool) drop() error {
	if p.admin == nil {
		return nil
	}
	defer p.admin.Close()
	var errs []error
	for _, name := range p.made {
		if _, err := p.admin.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			errs = append(errs, fmt.Errorf("dropping schema %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// sessionsTimeout bounds how long a schema waits for the sessions of the
// test that used it to end; those of closed pools end at once.
const sessionsTimeout = 10 * time.Second

// awaitSessionsEnd waits until no session whose application_name is schema
// (see schemaDSN) is left, so that none still holds a lock, a LISTEN or a
// transaction in the schema.
func awaitSessionsEnd(ctx context.Context, admin *sql.DB, schema string) error {
	deadline := time.Now().Add(sessionsTimeout)
	for {
		var n int
		if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, schema).Scan(&n); err != nil {
			return fmt.Errorf("counting the sessions of schema %s: %w", schema, err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d sessions of schema %s still open %s after the test", n, schema, sessionsTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// schemaTables lists the tables of schema from the catalog.
//
// It is read once per schema: pg_class has no index on the namespace, so
// this scans it whole, and the test database's catalog can be large (the
// rows of every schema created and dropped since it was last vacuumed).
func schemaTables(ctx context.Context, admin *sql.DB, schema string) ([]string, error) {
	rows, err := admin.QueryContext(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename`, schema)
	if err != nil {
		return nil, fmt.Errorf("listing the tables of schema %s: %w", schema, err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("listing the tables of schema %s: %w", schema, err)
		}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing the tables of schema %s: %w", schema, err)
	}
	return tables, nil
}

// changedTables returns the tables whose rows line (see schemaState)
// differs between the migrated state and state: tables that hold rows or
// whose sequences were used since the migration. versionTables are left
// out, whatever their rows.
func changedTables(migrated, state string) []string {
	var tables []string
	for _, line := range extraLines(migrated, state) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "rows" && !slices.Contains(versionTables, f[1]) {
			tables = append(tables, f[1])
		}
	}
	return tables
}

// truncateTables empties the tables of schema in one TRUNCATE and restarts
// the sequences their columns own.
func truncateTables(ctx context.Context, admin *sql.DB, schema string, tables []string) error {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = pgx.Identifier{schema, t}.Sanitize()
	}
	if _, err := admin.ExecContext(ctx, "TRUNCATE "+strings.Join(names, ", ")+" RESTART IDENTITY CASCADE"); err != nil {
		return fmt.Errorf("emptying schema %s: %w", schema, err)
	}
	return nil
}

// schemaState describes s, one line per item, sorted: for each of its
// tables a rows line (the number of rows with a digest of their contents,
// and the last value of each sequence the table owns, NULL when none was
// taken since it started), and the objects of its catalog: relations (with
// the last value of each sequence), their indexes and columns, functions
// and the other objects in the schema. The catalog is read through indexes
// only, from the objects that depend on the schema, so that a test pays
// little for it however large the catalog is.
func schemaState(ctx context.Context, admin *sql.DB, s pooledSchema) (string, error) {
	var state string
	err := admin.QueryRowContext(ctx, `WITH objects AS (
		SELECT classid, objid FROM pg_depend
		WHERE refclassid = 'pg_namespace'::regclass AND refobjid = $1::regnamespace
	), rels AS (
		SELECT c.oid, c.relname, c.relkind FROM objects o JOIN pg_class c ON c.oid = o.objid
		WHERE o.classid = 'pg_class'::regclass
	)
	SELECT string_agg(line, E'\n' ORDER BY line) FROM (
		SELECT 'rows ' || t || ' ' || (xpath('/row/s/text()', query_to_xml(format(
			'SELECT count(*) || '' '' || md5(coalesce(string_agg(t::text, '','' ORDER BY t::text), '''')) AS s FROM %I.%I t',
			$1, t), false, true, '')))[1]::text || coalesce((
			SELECT ' ' || string_agg(q.relname || '=' || coalesce(pg_sequence_last_value(q.oid)::text, 'NULL'), ' ' ORDER BY q.relname)
			FROM pg_depend d JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S'
			WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = format('%I.%I', $1, t)::regclass
				AND d.classid = 'pg_class'::regclass), '')
		FROM unnest($2::text[]) t
		UNION ALL
		SELECT 'relation ' || relname || ' ' || relkind::text ||
			CASE WHEN relkind = 'S' THEN ' ' || coalesce(pg_sequence_last_value(oid)::text, 'NULL') ELSE '' END
		FROM rels
		UNION ALL
		SELECT 'index ' || r.relname || ' ' || pg_get_indexdef(i.indexrelid)
		FROM rels r JOIN pg_index i ON i.indrelid = r.oid
		UNION ALL
		SELECT 'column ' || r.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
		FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid
		WHERE a.attnum > 0 AND NOT a.attisdropped
		UNION ALL
		SELECT 'function ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc)
		FROM objects o JOIN pg_proc p ON p.oid = o.objid
		WHERE o.classid = 'pg_proc'::regclass
		UNION ALL
		SELECT 'object ' || pg_describe_object(classid, objid, 0)
		FROM objects WHERE classid NOT IN ('pg_class'::regclass, 'pg_proc'::regclass)
	) items(line)`, s.name, s.tables).Scan(&state)
	if err != nil {
		return "", fmt.Errorf("reading the state of schema %s: %w", s.name, err)
	}
	return state, nil
}

// lineDiff lists the lines of want missing from got ("-") and those of got
// missing from want ("+").
func lineDiff(want, got string) string {
	var b strings.Builder
	for _, l := range extraLines(got, want) {
		b.WriteString("- " + l + "\n")
	}
	for _, l := range extraLines(want, got) {
		b.WriteString("+ " + l + "\n")
	}
	return b.String()
}

// extraLines returns the lines of got that are not lines of want.
func extraLines(want, got string) []string {
	wl := strings.Split(want, "\n")
	var extra []string
	for _, l := range strings.Split(got, "\n") {
		if !slices.Contains(wl, l) {
			extra = append(extra, l)
		}
	}
	return extra
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
