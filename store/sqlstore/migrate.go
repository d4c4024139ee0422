package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"
)

// ErrSchemaTooNew is returned by [Open] when the database was migrated by a
// newer version of this package: running older code against it could
// corrupt what the newer code keeps. The error names both versions.
var ErrSchemaTooNew = errors.New("sqlstore: database schema is newer than this version of sqlstore supports")

//go:embed migrations
var migrationFiles embed.FS

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrationsOf returns the dialect's migrations in version order. Both
// dialects have the same versions: version n means the same logical schema
// in each.
var migrationsOf = sync.OnceValues(func() (map[Dialect][]migration, error) {
	out := make(map[Dialect][]migration)
	for _, d := range []Dialect{SQLite, Postgres} {
		ms, err := loadMigrations(migrationFiles, path.Join("migrations", d.String()))
		if err != nil {
			return nil, err
		}
		out[d] = ms
	}
	return out, nil
})

// loadMigrations reads files named NNNN_name.sql from dir and checks that
// their versions run 1, 2, 3, ... without gaps.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: reading migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if e.IsDir() || !strings.HasSuffix(name, ".sql") || !ok || rest == "" || err != nil || v < 1 {
			return nil, fmt.Errorf("sqlstore: migration %s/%s: want a file named NNNN_name.sql", dir, name)
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: reading migration %s/%s: %w", dir, name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	// fs.ReadDir sorts by name, and the names start with zero-padded versions.
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlstore: migrations in %s: %s has version %d, want %d", dir, m.name, m.version, i+1)
		}
	}
	return ms, nil
}

// migrate applies the pending migrations in one transaction that first
// takes a lock no other migrating process can hold at the same time: a
// transaction-scoped advisory lock in PostgreSQL (one per schema), the
// database write lock in SQLite (see Store.tx). A second process that
// opens the store at the same time waits, then finds nothing left to do.
// A positive upTo stops at that version (tests build the database an
// earlier version of the package left); 0 applies them all.
func (s *Store) migrate(ctx context.Context, upTo int) error {
	all, err := migrationsOf()
	if err != nil {
		return err
	}
	ms := all[s.dialect]
	if upTo > 0 && upTo < len(ms) {
		ms = ms[:upTo]
	}
	if s.dialect == SQLite {
		// The transaction below takes the write lock with a write to this
		// table (see Store.tx), so it must exist first. Concurrent creators
		// wait for each other on the write lock; the later ones do nothing.
		if err := s.write(ctx, func(q querier) error {
			_, err := q.ExecContext(ctx, s.migrationsTable())
			return err
		}); err != nil {
			return fmt.Errorf("sqlstore: creating bd_schema_migrations: %w", err)
		}
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		q := querier(tx)
		if s.dialect == Postgres {
			// Concurrent CREATE TABLE IF NOT EXISTS can fail in PostgreSQL,
			// so the lock comes before anything else.
			if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('botdistributor/sqlstore/migrate/' || coalesce(current_schema(), '')))`); err != nil {
				return fmt.Errorf("taking the migration lock: %w", err)
			}
		}
		if _, err := q.ExecContext(ctx, s.migrationsTable()); err != nil {
			return fmt.Errorf("creating bd_schema_migrations: %w", err)
		}
		var current int
		if err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM bd_schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("reading the schema version: %w", err)
		}
		if current > len(ms) {
			return fmt.Errorf("%w: the database is at version %d, this version of sqlstore knows versions up to %d; upgrade the program", ErrSchemaTooNew, current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := q.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("applying %s: %w", m.name, err)
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO bd_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, s.dialect.timeArg(s.now())); err != nil {
				return fmt.Errorf("recording %s: %w", m.name, err)
			}
		}
		if upTo > 0 || s.dialect == Postgres {
			// An earlier version of the package, as tests build it, had
			// no job engine. PostgreSQL migrates River below.
			return nil
		}
		return s.migrateRiverTx(ctx, tx)
	})
	if err == nil && upTo == 0 && s.dialect == Postgres {
		err = s.migrateRiverPostgres(ctx)
	}
	if errors.Is(err, ErrSchemaTooNew) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlstore: migrating the %s schema: %w", s.dialect, err)
	}
	if s.dialect == SQLite {
		return s.useWAL(ctx)
	}
	return nil
}

func (s *Store) migrationsTable() string {
	if s.dialect == Postgres {
		return `CREATE TABLE IF NOT EXISTS bd_schema_migrations (
			version    integer     NOT NULL PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL
		)`
	}
	return `CREATE TABLE IF NOT EXISTS bd_schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`
}

// useWAL switches a SQLite database file from a rollback journal to
// write-ahead logging, which lets readers proceed while one connection
// writes. The journal mode is a property of the file, so this is done once;
// in-memory databases keep their "memory" mode.
func (s *Store) useWAL(ctx context.Context) error {
	return s.write(ctx, func(q querier) error {
		var mode string
		if err := q.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			return fmt.Errorf("sqlstore: reading the SQLite journal mode: %w", err)
		}
		switch strings.ToLower(mode) {
		case "delete", "truncate", "persist":
			if err := q.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
				return fmt.Errorf("sqlstore: switching SQLite to WAL: %w", err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the newest schema version this version of the
// package migrates databases to.
func SchemaVersion() int {
	all, err := migrationsOf()
	if err != nil {
		return 0
	}
	return len(all[SQLite])
}
