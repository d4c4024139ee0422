// Package sqlstore implements [store.Store] over database/sql, for SQLite and
// PostgreSQL. One or many bot processes can share a PostgreSQL database; a
// SQLite file suits one process (and tolerates a few).
//
// The package imports no driver. The program registers one and passes the
// opened *sql.DB with the matching [Dialect]:
//
//	import _ "modernc.org/sqlite" // driver "sqlite"
//
//	db, err := sql.Open("sqlite", "file:/var/lib/bot/bot.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
//	...
//	s, err := sqlstore.Open(ctx, db, sqlstore.SQLite)
//
// or, for PostgreSQL,
//
//	import _ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
//
//	db, err := sql.Open("pgx", "postgres://bot@db.internal/bot?sslmode=require")
//	s, err := sqlstore.Open(ctx, db, sqlstore.Postgres)
//
// The caller owns db: the Store never closes it nor changes its pool
// settings, and db must outlive the Store. Size the pool for the expected
// concurrency, and keep idle connections (db.SetMaxIdleConns) at about the
// same number, or busy stores keep opening connections.
//
// # Schema and migrations
//
// Open applies the embedded, numbered migrations the database has not seen,
// all in one transaction, and records each applied version in the
// bd_schema_migrations table. Every table name starts with "bd_", so the
// store can share a database (or, in PostgreSQL, a schema) with other
// tables. Several processes may call Open at once: PostgreSQL serialises
// them with a transaction-scoped advisory lock per schema, SQLite with its
// write lock (BEGIN IMMEDIATE); the later ones find nothing left to do. Open
// refuses a database migrated by a newer version of this package with
// [ErrSchemaTooNew], before touching anything. [SchemaVersion] is the newest
// version this package knows.
//
// Version 2 (closed dialogs and moves) replaces the PostgreSQL function
// bd_assign with one of more parameters: a process of an earlier version
// still running then fails its assignments with an error, rather than
// assign closed dialogs. Upgrade all processes sharing a database together.
//
// PostgreSQL tables live in the first schema of the connection's search_path
// (pgx takes a search_path parameter in the connection string).
//
// # The invariants and how they hold
//
// A dialog's responsible is a row whose primary key is (account, dialog): a
// second responsible cannot be inserted, so the loser of a race gets
// [store.ErrAssigned]. A manager's load is a row in bd_manager_loads, and the
// capacity rule is one conditional write on it: an upsert that adds the
// dialog only WHERE the open count is below the request's capacity, and
// otherwise changes nothing ([store.ErrCapacity]). The check and the
// increment are the same statement, so they cannot be separated by another
// writer: PostgreSQL re-evaluates the condition on the newest committed row
// after waiting for a concurrent writer, even at READ COMMITTED (the default,
// and all the store needs); SQLite admits one writer at a time. The dialog
// row and the load change commit together or not at all; Release and Record
// change both in one transaction as well, so loads always equal the dialogs
// held. A move (an Assignment with From set) locks the dialog's row, checks
// that From holds it, takes To's load with the same guarded upsert and frees
// From's, in one transaction; a refused move changes nothing.
//
// A closed dialog is a row of bd_closed. Close writes it, deletes the
// dialog's responsible and frees their load, and deletes its queue entry, in
// one transaction; Assign, Record and Enqueue read it in their own
// transaction and refuse the dialog with [store.ErrClosed]. A row that does
// not exist yet cannot be locked, so under PostgreSQL these four writes
// first take a transaction-scoped advisory lock on the dialog (the key is
// hashtextextended(account, dialog), in the single-bigint key space), and
// only then read: a Close and an Assign of one dialog never overlap, in
// whatever processes they run. Another program taking advisory locks in the
// same database may, rarely, wait on a key of this store, and the other way
// round; nothing worse follows. Under SQLite the write lock already keeps
// them apart. PruneEvents forgets dialogs closed before its cut, with their
// reply claims, in the same transaction as the event claims.
//
// Under PostgreSQL, Assign, Release, Close and Enqueue are each one call of
// a PL/pgSQL function the migrations create (bd_assign, bd_release,
// bd_close, bd_enqueue), and PruneEvents is one statement: one round trip
// each. Record is a transaction of a few statements.
//
// Every write takes locks in the same order: the dialog first (under
// PostgreSQL its advisory lock, then its rows), then managers' load rows by
// ascending id, then the customer's row or the queue entry, so writers do
// not deadlock. Should the database still report a serialization failure or
// deadlock (SQLSTATE 40001, 40P01) or, in SQLite, a busy or locked database,
// the transaction is run again, up to [DefaultMaxRetries] times (see
// [WithMaxRetries]) with a short randomised backoff.
//
// Claims of replies and events are rows inserted with ON CONFLICT DO
// NOTHING: exactly one caller, in whatever process, is told it was first.
//
// # Reads
//
// Reads run on the pool without a transaction. Loads answers any number of
// managers with one query and writes into the caller's buffer when it is
// large enough, so a caller deciding often can keep one.
//
// # SQLite
//
// SQLite 3.37 or newer is needed (RETURNING, upsert, STRICT tables). The
// store serialises its own writes in process, and runs each multi-statement
// write as BEGIN IMMEDIATE, so it never fails at a lock upgrade; reads run
// concurrently with writes once the database is in WAL mode. After
// migrating, Open switches a database file that uses a rollback journal to
// WAL (a lasting property of the file). The per-connection settings belong in the DSN:
//
//   - busy_timeout (modernc.org/sqlite: _pragma=busy_timeout(10000)):
//     how long a connection waits for another process's write lock. Without
//     it such a write fails at once and is only retried a few times.
//   - synchronous: the SQLite default (FULL) loses nothing on power loss;
//     NORMAL, common with WAL, is faster and may lose the last commits.
//   - foreign_keys is irrelevant: the schema declares no foreign keys.
//
// An in-memory database (":memory:") is private to one connection: use it
// only with db.SetMaxOpenConns(1), or use a temporary file.
//
// # Data
//
// Times are stored in UTC with microsecond precision (timestamptz in
// PostgreSQL, integer microseconds since the Unix epoch in SQLite) and read
// back in UTC. Settings are stored as JSON. The CRM API key and the MG bot
// token are [bd.Secret] values, which marshal as a mask, so they are kept in
// columns of their own through Secret.Reveal and never inside the JSON; no
// error the store returns contains them. Errors for bad input match
// [store.ErrInvalid] and name the problem; driver errors are wrapped with the
// operation that failed; sql.ErrNoRows becomes [store.ErrNotFound].
package sqlstore
