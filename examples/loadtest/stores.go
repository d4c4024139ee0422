package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5/pgxpool"
	mrand "math/rand/v2"
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
	// database is the run's own PostgreSQL database.
	database string
	// appName is the application_name of the distributors' connections,
	// harnessApp the one of the harness's own pool (db).
	appName, harnessApp string
	// admin is the pool on the DSN's database that created the run's
	// database; the connection kills run on it.
	admin *sql.DB
	// db is the pool the raw UPDATE loop runs on.
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
	st, err := sqlstore.Open(ctx, db, sqlstore.SQLite, sqlstore.WithSharedQueue())
	if err != nil {
		return fmt.Errorf("loadtest: sqlite: %w", err)
	}
	b.observer, b.shared, b.db, b.dialect = st, st, db, sqlstore.SQLite
	return nil
}

// withDatabase returns the PostgreSQL DSN with the database and runtime
// parameters replaced, in either DSN form (URL or key=value).
func withDatabase(dsn, database string, params map[string]string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("loadtest: the PostgreSQL DSN is not a valid URL: %w", err)
		}
		u.Path = "/" + database
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// In the key=value form a later key overrides an earlier one.
	dsn += " dbname=" + database
	for k, v := range params {
		dsn += " " + k + "=" + v
	}
	return dsn, nil
}

// openPostgres creates a fresh database for the run (dropped afterwards),
// opens the harness's own pool on it and, for a single process, the
// distributors' pool. A database of its own makes every connection to it
// the run's: the faults terminate them without touching anyone else's
// connections to the server.
func (b *backend) openPostgres(ctx context.Context, cfg *Config) error {
	admin, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		return fmt.Errorf("loadtest: postgres: %w", err)
	}
	admin.SetMaxOpenConns(2)
	b.closers = append(b.closers, admin.Close)
	b.admin = admin
	name := randomName("bd_loadtest_")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		return fmt.Errorf("loadtest: postgres: create database (the DSN's user needs CREATEDB): %w", err)
	}
	b.closers = append(b.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("loadtest: postgres: drop database %s: %w", name, err)
		}
		return nil
	})
	b.database = name
	b.appName = name + "_node"
	b.harnessApp = name + "_harness"
	obsDSN, err := withDatabase(cfg.DSN, name, map[string]string{"application_name": b.harnessApp})
	if err != nil {
		return err
	}
	if b.nodeDSN, err = withDatabase(cfg.DSN, name, map[string]string{"application_name": b.appName}); err != nil {
		return err
	}
	obs, err := sql.Open("pgx", obsDSN)
	if err != nil {
		return fmt.Errorf("loadtest: postgres: %w", err)
	}
	obs.SetMaxOpenConns(4)
	obs.SetMaxIdleConns(4)
	b.closers = append(b.closers, obs.Close)
	st, err := sqlstore.Open(ctx, obs, sqlstore.Postgres, sqlstore.WithSharedQueue())
	if err != nil {
		return fmt.Errorf("loadtest: postgres: %w", err)
	}
	b.observer, b.db, b.dialect = st, obs, sqlstore.Postgres
	if cfg.Processes == 1 {
		st, closeNode, err := openNodePostgres(ctx, b.nodeDSN)
		if err != nil {
			return err
		}
		b.closers = append(b.closers, closeNode)
		b.shared = st
	}
	return nil
}

// openNodePostgres opens a distributor process's pool and store, with the
// job engine's LISTEN/NOTIFY listener on a small pgx pool of its own. The
// store keeps every account's jobs in one queue (sqlstore.WithSharedQueue),
// as a fleet wants and as every process of the run (and the harness's own
// store) opens it: one pool per process, whatever the number of accounts.
// close closes both.
func openNodePostgres(ctx context.Context, dsn string) (st *sqlstore.Store, close func() error, err error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("loadtest: postgres: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("loadtest: postgres: %w", err)
	}
	pcfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("loadtest: postgres: %w", err)
	}
	close = func() error { pool.Close(); return db.Close() }
	st, err = sqlstore.Open(ctx, db, sqlstore.Postgres, sqlstore.WithPgxListener(pool), sqlstore.WithSharedQueue())
	if err != nil {
		_ = close()
		return nil, nil, fmt.Errorf("loadtest: postgres: %w", err)
	}
	return st, close, nil
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

// killConnections terminates every backend of the run's database but the
// harness's own (its store observer keeps sampling) and returns how many
// it terminated. The distributors' pools, and any pool the store opens for
// its job queue, are all connections to that database.
func (b *backend) killConnections(ctx context.Context) (int, error) {
	if b.admin == nil {
		return 0, nil
	}
	var n int
	err := b.admin.QueryRowContext(ctx,
		`SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		 WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name IS DISTINCT FROM $2`,
		b.database, b.harnessApp).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("loadtest: pg_terminate_backend: %w", err)
	}
	return n, nil
}

// outage terminates the distributors' connections every 50 to 100 ms
// (jittered by rnd) for d, and returns how many backends it terminated.
func (b *backend) outage(ctx context.Context, d time.Duration, rnd *mrand.Rand) (int, error) {
	n := 0
	end := time.Now().Add(d)
	for {
		k, err := b.killConnections(ctx)
		if err != nil {
			return n, err
		}
		n += k
		pause := 50*time.Millisecond + time.Duration(rnd.Int64N(int64(50*time.Millisecond)))
		if left := time.Until(end); left <= 0 {
			return n, nil
		} else if pause > left {
			pause = left
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return n, ctx.Err()
		}
	}
}
