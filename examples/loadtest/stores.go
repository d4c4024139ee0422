package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// backend is the store of one scenario: the store the harness inspects,
// the stores of the in-process distributors, and the SQL extras.
type backend struct {
	kind string
	// observer is the store the harness reads loads and the queue from.
	observer store.Store
	// shared is the store of the in-process distributors.
	shared store.Store
	// nodeDSN is the PostgreSQL DSN of the distributors (worker processes
	// open their own pools with it); it selects the run's schema and names
	// the connections so that they can be terminated.
	nodeDSN string
	// appName is the application_name of the distributors' connections.
	appName string
	// db is the pool the raw UPDATE loop and pg-kill run on.
	db      *sql.DB
	dialect sqlstore.Dialect
	closers []func() error
}

// close releases everything the backend opened, last opened first, and
// drops the PostgreSQL schema.
func (b *backend) close() error {
	var errs []error
	for i := len(b.closers) - 1; i >= 0; i-- {
		errs = append(errs, b.closers[i]())
	}
	return errors.Join(errs...)
}

func randomName(prefix string) string {
	var x [6]byte
	_, _ = rand.Read(x[:])
	return prefix + hex.EncodeToString(x[:])
}

// openBackend opens the scenario's store; kind is memory, sqlite, postgres
// or baseline.
func openBackend(ctx context.Context, cfg *Config, kind string) (*backend, error) {
	b := &backend{kind: kind}
	switch kind {
	case storeMemory, storeBaseline:
		var st store.Store
		if kind == storeMemory {
			st = memory.New()
		} else {
			st = newNaiveStore(cfg.BaselineYield)
		}
		b.observer, b.shared = st, st
		return b, nil
	case storeSQLite:
		if err := b.openSQLite(ctx, cfg); err != nil {
			return nil, errors.Join(err, b.close())
		}
		return b, nil
	case storePostgres:
		if err := b.openPostgres(ctx, cfg); err != nil {
			return nil, errors.Join(err, b.close())
		}
		return b, nil
	}
	return nil, fmt.Errorf("loadtest: unknown store %q", kind)
}

// sqliteDSN is the DSN of a SQLite file as the distributors open it: WAL,
// a busy timeout for the rare lock conflict, and the default FULL
// synchronous mode (every commit waits for the disk).
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	return "file:" + path + "?" + q.Encode()
}

func (b *backend) openSQLite(ctx context.Context, cfg *Config) error {
	path := cfg.DSN
	if path == "" {
		dir, err := os.MkdirTemp("", "bd-loadtest-")
		if err != nil {
			return fmt.Errorf("loadtest: sqlite: %w", err)
		}
		b.closers = append(b.closers, func() error { return os.RemoveAll(dir) })
		path = filepath.Join(dir, "store.db")
	}
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return fmt.Errorf("loadtest: sqlite: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	b.closers = append(b.closers, db.Close)
	st, err := sqlstore.Open(ctx, db, sqlstore.SQLite)
	if err != nil {
		return fmt.Errorf("loadtest: sqlite: %w", err)
	}
	b.observer, b.shared, b.db, b.dialect = st, st, db, sqlstore.SQLite
	return nil
}

// withParams returns the PostgreSQL DSN with runtime parameters set, in
// either DSN form (URL or key=value).
func withParams(dsn string, params map[string]string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("loadtest: the PostgreSQL DSN is not a valid URL: %w", err)
		}
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	for k, v := range params {
		dsn += " " + k + "=" + v
	}
	return dsn, nil
}

// openPostgres creates a fresh schema, opens the harness's own pool on it
// and, for a single process, the distributors' pool.
func (b *backend) openPostgres(ctx context.Context, cfg *Config) error {
	admin, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		return fmt.Errorf("loadtest: postgres: %w", err)
	}
	b.closers = append(b.closers, admin.Close)
	schema := randomName("bd_loadtest_")
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return fmt.Errorf("loadtest: postgres: create schema: %w", err)
	}
	b.closers = append(b.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			return fmt.Errorf("loadtest: postgres: drop schema %s: %w", schema, err)
		}
		return nil
	})
	b.appName = schema + "_node"
	obsDSN, err := withParams(cfg.DSN, map[string]string{"search_path": schema, "application_name": schema + "_harness"})
	if err != nil {
		return err
	}
	if b.nodeDSN, err = withParams(cfg.DSN, map[string]string{"search_path": schema, "application_name": b.appName}); err != nil {
		return err
	}
	obs, err := sql.Open("pgx", obsDSN)
	if err != nil {
		return fmt.Errorf("loadtest: postgres: %w", err)
	}
	obs.SetMaxOpenConns(4)
	obs.SetMaxIdleConns(4)
	b.closers = append(b.closers, obs.Close)
	st, err := sqlstore.Open(ctx, obs, sqlstore.Postgres)
	if err != nil {
		return fmt.Errorf("loadtest: postgres: %w", err)
	}
	b.observer, b.db, b.dialect = st, obs, sqlstore.Postgres
	if cfg.Processes == 1 {
		db, st, err := openNodePostgres(ctx, b.nodeDSN)
		if err != nil {
			return err
		}
		b.closers = append(b.closers, db.Close)
		b.shared = st
	}
	return nil
}

// openNodePostgres opens a distributor process's pool and store.
func openNodePostgres(ctx context.Context, dsn string) (*sql.DB, *sqlstore.Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("loadtest: postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	st, err := sqlstore.Open(ctx, db, sqlstore.Postgres)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("loadtest: postgres: %w", err)
	}
	return db, st, nil
}

// rawUpdateRate runs single-row UPDATE transactions one after another for
// d on the backend's database and returns how many committed per second.
// It measures what one commit at a time costs on this database, the yardstick
// the store's throughput is compared with.
func (b *backend) rawUpdateRate(ctx context.Context, d time.Duration) (float64, error) {
	if b.db == nil || d <= 0 {
		return 0, nil
	}
	if _, err := b.db.ExecContext(ctx, `CREATE TABLE lt_raw_update (id integer NOT NULL PRIMARY KEY, n bigint NOT NULL)`); err != nil {
		return 0, fmt.Errorf("loadtest: raw update table: %w", err)
	}
	if _, err := b.db.ExecContext(ctx, `INSERT INTO lt_raw_update (id, n) VALUES (1, 0)`); err != nil {
		return 0, fmt.Errorf("loadtest: raw update table: %w", err)
	}
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		tx, err := b.db.BeginTx(ctx, nil)
		if err != nil {
			return 0, fmt.Errorf("loadtest: raw update: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE lt_raw_update SET n = n + 1 WHERE id = $1`, 1); err != nil {
			_ = tx.Rollback()
			return 0, fmt.Errorf("loadtest: raw update: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("loadtest: raw update: %w", err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// killConnections terminates every PostgreSQL backend of the distributors
// and returns how many it terminated.
func (b *backend) killConnections(ctx context.Context) (int, error) {
	if b.dialect != sqlstore.Postgres {
		return 0, nil
	}
	var n int
	err := b.db.QueryRowContext(ctx,
		`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		b.appName).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("loadtest: pg_terminate_backend: %w", err)
	}
	return n, nil
}
