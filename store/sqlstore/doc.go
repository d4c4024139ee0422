// Package sqlstore implements [store.Store] over database/sql, for SQLite and
// PostgreSQL. One or many bot processes can share a PostgreSQL database; a
// SQLite file suits one process (and tolerates a few).
//
// The package imports no SQLite or pgx driver. (River's database/sql
// driver, the job engine's, imports github.com/lib/pq, which registers a
// "postgres" database/sql driver; the store does not use it.) The program
// registers one and passes the opened *sql.DB with the matching [Dialect]:
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
//	pool, err := pgxpool.New(ctx, "postgres://bot@db.internal/bot?sslmode=require")
//	s, err := sqlstore.Open(ctx, db, sqlstore.Postgres, sqlstore.WithPgxListener(pool))
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
// bd_schema_migrations table. Every table of the store starts with "bd_"
// and every table of its job engine with "river_" (see below), so the
// store can share a database (or, in PostgreSQL, a schema) with other
// tables. Several processes may call Open at once: PostgreSQL serialises
// them with a transaction-scoped advisory lock per schema, SQLite with its
// write lock; the later ones find nothing left to do. Open
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
// Version 3 adds the job engine: the store's bd_job_queues table, and
// River's own tables (river_job, river_queue, river_leader, river_client,
// river_client_queue, river_migration; in SQLite also river_notification)
// with River's own migrations, which Open runs after the store's, so
// nothing is left for the user to run. SQLite runs them in the store's
// migration transaction; in PostgreSQL some of River's migrations must
// commit before the next one runs, so River applies each in a transaction
// of its own while Open holds a session-level advisory lock (one per
// schema), on a connection of its own, that keeps concurrent Opens apart.
// River's tables sit beside the bd_* tables, in the same schema. Do not
// share that schema with another program that uses River for its own
// jobs: River elects one leader per schema to rescue, schedule and clean
// jobs, and a leader that does not know the store's job kind would
// discard its rescued jobs. To keep the store's tables apart from others,
// give it a schema of its own through search_path.
//
// Version 4 adds the leases of accounts' event streams ([store.Leases]):
// bd_lease_members and bd_leases; see Store.Lease.
//
// Version 5 gives the PostgreSQL function bd_assign a tenth parameter,
// p_wait boolean DEFAULT true, which Store.Assign sets to the opposite of
// [store.Assignment].NoWait. With p_wait false, a new assignment to a
// manager whose row of bd_manager_loads another transaction holds locked
// (another assignment to them in flight) returns 'busy' at once, which
// Assign reports as [store.ErrBusy], instead of waiting for that
// transaction to end; nothing changes then. A move always waits. The
// default keeps a process of version 2 to 4 that is still running, which
// calls bd_assign with nine arguments, working and waiting as it always
// did, so processes sharing a database need not be upgraded together this
// time (one started anew with the old version refuses the database with
// [ErrSchemaTooNew], as after every upgrade). SQLite's version 5 changes
// nothing: a SQLite writer never waits on another's row locks.
//
// Version 6 adds the column profile to bd_bindings: the customer's
// retailCRM profile ([store.Binding].Profile) as a JSON document of
// bd.CustomerProfile, NULL when none was read. SaveBinding decides
// whether to keep the stored profile (a zero Profile.ReadAt with the same
// CRMCustomer) or drop it (another CRMCustomer) inside its one upsert
// statement. A process of version 5 still running saves bindings without
// touching the column, so a profile it should have dropped lives on until
// the next read replaces it; upgrade processes together when that matters.
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
// # Jobs
//
// The durable work pipeline ([store.Jobs]) is River
// (github.com/riverqueue/river): riverdatabasesql over the store's *sql.DB
// for PostgreSQL, riversqlite for SQLite. Every [store.Job] is one River
// job of kind "botdistributor" whose args are the job's fields as JSON.
//
// A store-changing method given jobs (ClaimEvent when its claim is the
// first, Assign and Record through Assignment.Then when they succeed,
// Close, Enqueue) runs as one transaction that makes the change and then
// inserts the jobs through River's InsertManyTx, so the jobs and the change
// commit together or not at all; a failed or refused change stores no
// job. (Under PostgreSQL, Assign and Close take the dialog's lock, insert
// the jobs and make the change last, so that managers' load rows stay
// locked for the change's round trip and the commit only; a refused
// assignment rolls its jobs back.) Such a method first checks its jobs with [store.CheckJobs] and, if
// one is invalid, fails with [store.ErrInvalid] and changes nothing. A
// reply job is inserted only when its claim, the row of bd_replies that
// ClaimReply takes, is inserted new in the same transaction: the claim
// makes it unique for good. (A job of two replies, store.Job.First, claims
// both in one statement and keeps the replies whose claim was new.) Distribute, bind and move jobs are River
// unique jobs by args over (account, kind, dialog) among the jobs
// available, pending, scheduled, retryable or running, so an equal job is
// dropped while one waits or runs; equal jobs in one batch are stored
// once. Drain jobs are not unique. Job.Delay schedules the first attempt.
//
// Each account's jobs go to a River queue of their own, named "bd_" and
// 32 hex digits of the SHA-256 of the account id (River restricts queue
// names; a hash is valid for any id and does not collide in practice), so
// a Work of some accounts, e.g. one Distributor with its own MessageGateway
// connection, takes only their jobs. The table bd_job_queues records each
// account that ever had a job (written in the transaction of its first
// job), so that a Work of every account knows the queues: it reads them
// when it starts and every 2 seconds after, and is told at once of the
// queues that jobs stored through the same *Store open, also while it
// starts.
//
// A store opened [WithSharedQueue] keeps every account's jobs in one queue
// instead: a River client polls each queue it works, so one queue serves
// hundreds of accounts for the cost of one, and every Work then takes
// every account's jobs (package fleet runs one such Work per process).
//
// Work starts a River client of its own working those queues. River takes
// each job with FOR UPDATE SKIP LOCKED (and in SQLite, under the write
// lock), so any number of Work calls, in one process or in many, share the
// work and never run one job twice at once. WorkOptions.Workers bounds the
// handlers running at once across all the queues of the Work (each queue
// may fetch as many). A handler runs with a timeout of 15 seconds. A
// failed attempt is tried again after WorkOptions.Backoff (River's retry
// policy), or after the delay of a [*store.RetryAfterError]; the attempt
// counts either way. When the last attempt allowed by
// WorkOptions.MaxAttempts fails, the worker cancels the job (River's
// JobCancel): cancelled and discarded jobs are the dead letters
// [Store.DeadJobs] lists, with their last error and when they were given
// up. (River stores a job's attempt budget with the job; the store stores
// 1000, a backstop, and enforces WorkOptions.MaxAttempts in the worker.)
// When Work's context ends it stops River, canceling the handlers'
// context; a job whose handler returns a context error then becomes
// available again without its attempt counting, and Work returns. A job
// whose process died during an attempt is taken up again by River's
// rescuer, run by the elected leader among the running Work calls every 30
// seconds, once the attempt started 20 seconds before: within 20 to 50
// seconds of the crash; that attempt counts. Sooner where the processes
// keep leases ([Store.Lease]) and name their workers after their member
// (WorkOptions.Member, the River client's id): the first lease round that
// finds a dead member lapsed makes the jobs it was running available again
// (PostgreSQL), one lease TTL after the crash. [Store.PendingJobs] counts
// the account's jobs available, pending, scheduled, retryable or running;
// River records completions in batches, so a job counts as pending for a
// few milliseconds after its handler returned.
//
// Finished jobs are deleted by River's cleaner (completed ones after 10
// minutes, dead letters after 7 days) and by PruneEvents, which deletes
// the jobs finished before its cut as well.
//
// River's logs go to the logger of [WithLogger]; by default nowhere.
//
// # Job latency
//
// How soon a stored job starts depends on how River learns of it. With
// [WithPgxListener], PostgreSQL wakes the workers of every process through
// LISTEN/NOTIFY: the store sends River's notification itself right after
// the commit that stored the jobs, instead of letting River's insert send
// it inside the transaction — PostgreSQL makes every transaction that
// notified wait for one lock at its commit, held through the commit's
// flush, and the store's transactions hold managers' load rows until they
// commit. A queue is announced at most every 10 ms; jobs committed
// meanwhile are announced when those 10 ms are up. Each queue is also
// polled, every 250 ms, as a backstop for a lost notification. Without a
// listener, polling is how workers learn of jobs: every 25 ms. A queue
// fetches at most every 10 ms, so that a busy one takes its jobs in
// batches. SQLite has no notifications of its own: riversqlite writes them
// to a table that its listener reads every 50 ms. A retried job, and a job
// stored with a delay, becomes available within 100 ms of its time: each
// Work makes its queues' due jobs available that often (River's own
// scheduler, every 5 s, stays the backstop).
// Measured from the commit that stores a job to the start of its handler,
// on 2 cores (BenchmarkJobPickup, 1000 jobs, one transaction each, 200 per
// second; "burst": as fast as they commit):
//
//	PostgreSQL with WithPgxListener  p50 7.0 ms   p99 14 ms   max 18 ms
//	  the same, burst                p50 6.7 ms   p99 20 ms   max 42 ms
//	PostgreSQL polling               p50 17 ms    p99 34 ms   max 36 ms
//	SQLite (file, WAL)               p50 9 ms     p99 71 ms   max 131 ms
//
// (The listener lines were measured with other work on the machine.)
// River's pickup is a small part of a MessageGateway round trip, so the
// store works every job through River, with no in-process shortcut; use
// the listener in production on PostgreSQL.
// Reproduce with
//
//	BOTDISTRIBUTOR_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test ./store/sqlstore/ -run '^$' -bench BenchmarkJobPickup -benchtime 1000x
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
// write as a transaction whose first statement is a write that changes
// nothing (DELETE FROM bd_schema_migrations WHERE 0): it takes the write
// lock at once, waiting as busy_timeout allows, exactly as BEGIN IMMEDIATE
// would, so the transaction never fails at a lock upgrade; and it is a
// *sql.Tx, which River needs to insert jobs in it. Reads run
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
// only with db.SetMaxOpenConns(1), or use a temporary file. Should the pool
// drop that connection (database/sql does when a query a canceled context
// interrupted leaves it unusable), the database goes with it: for more
// than a throwaway, name it ("file:name?mode=memory&cache=shared") and
// keep one connection to it open in a second pool for its lifetime.
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
