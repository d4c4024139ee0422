package bot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"

	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// Storage is an opened store with what the bot needs around it: a health
// check and a way to close the database.
//
// Its methods are safe for concurrent use. Close must be called once,
// after everything using Store has stopped.
type Storage struct {
	// Store keeps accounts, settings, assignments and the queue.
	Store store.Store
	// Kind is "sqlite", "postgres" or "memory".
	Kind string
	db   *sql.DB
	pool *pgxpool.Pool // the job engine's listener, for PostgreSQL
}

// sqliteParams are the per-connection settings of SQLite files: wait up to
// 10s for another writer, write-ahead log for concurrent reads.
const sqliteParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"

// OpenStorage opens the store a DSN names and applies its migrations:
//
//   - "postgres://..." or "postgresql://...": PostgreSQL through pgx, with
//     every account's jobs in one queue (sqlstore.WithSharedQueue), so
//     that several bot processes over the database share the accounts;
//   - "memory:": an in-memory store, lost on exit (tests, experiments);
//   - "file:...": a SQLite URI as modernc.org/sqlite takes it;
//   - anything else: the path of a SQLite file, created when missing.
//
// Errors never contain the DSN's password.
func OpenStorage(ctx context.Context, dsn string) (*Storage, error) {
	dsn = strings.TrimSpace(dsn)
	switch {
	case dsn == "":
		return nil, errors.New("storage: empty database DSN")
	case dsn == "memory:":
		return &Storage{Store: memory.New(), Kind: "memory"}, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("storage: open PostgreSQL %s: %w", redact(dsn), err)
		}
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		// A small pgx pool of its own lets the job engine hear of new jobs
		// through LISTEN/NOTIFY: a job is picked up within milliseconds.
		pcfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("storage: open PostgreSQL %s: %w", redact(dsn), err)
		}
		pcfg.MaxConns = 4 // LISTEN takes one; the rest is headroom
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("storage: open PostgreSQL %s: %w", redact(dsn), err)
		}
		// One job queue for every account: each process's one worker set
		// takes the jobs of all accounts (package fleet). Every process of
		// a deployment must open the database with the same layout.
		st, err := openSQL(ctx, db, sqlstore.Postgres, "postgres", redact(dsn), sqlstore.WithPgxListener(pool), sqlstore.WithSharedQueue())
		if err != nil {
			pool.Close()
			return nil, err
		}
		st.pool = pool
		return st, nil
	}
	uri := dsn
	if !strings.HasPrefix(uri, "file:") {
		uri = "file:" + dsn
	}
	if !strings.Contains(uri, "busy_timeout") {
		if strings.Contains(uri, "?") {
			uri += "&" + sqliteParams
		} else {
			uri += "?" + sqliteParams
		}
	}
	db, err := sql.Open("sqlite", uri)
	if err != nil {
		return nil, fmt.Errorf("storage: open SQLite %s: %w", dsn, err)
	}
	if strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
		db.SetMaxOpenConns(1) // an in-memory database is private to one connection
	} else {
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	}
	return openSQL(ctx, db, sqlstore.SQLite, "sqlite", dsn)
}

func openSQL(ctx context.Context, db *sql.DB, d sqlstore.Dialect, kind, name string, opts ...sqlstore.Option) (*Storage, error) {
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: cannot reach %s database %s: %w", kind, name, err)
	}
	st, err := sqlstore.Open(ctx, db, d, opts...)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: %s database %s: %w", kind, name, err)
	}
	return &Storage{Store: st, Kind: kind, db: db}, nil
}

// Ping reports whether the database answers; an in-memory store always does.
func (s *Storage) Ping(ctx context.Context) error {
	if s.db == nil {
		return nil
	}
	return s.db.PingContext(ctx)
}

// Close closes the database.
func (s *Storage) Close() error {
	if s.pool != nil {
		s.pool.Close()
	}
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

// redact hides the password of a URL DSN.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}
