package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/internal/option"
	"github.com/botdistributor/botdistributor/store"
)

// Store keeps the distributor's state in a SQL database. Create it with
// [Open]. All methods are safe for concurrent use, also by several processes
// sharing one database; see the package documentation for the guarantees.
type Store struct {
	db         *sql.DB
	dialect    Dialect
	now        func() time.Time
	maxRetries int
	// writer holds one token: SQLite admits one writer at a time, and
	// queueing writers here, in order and cancellable by their context, is
	// cheaper than letting them poll the database lock.
	writer chan struct{}

	// The job engine (jobs.go): River's driver over db, an insert-only
	// River client for the jobs the store's writes store, and River's logs.
	driver riverdriver.Driver[*sql.Tx]
	river  *river.Client[*sql.Tx]
	logger *slog.Logger
	// queues remembers the accounts whose queue is known to be in
	// bd_job_queues, so that a write need not record it again.
	queues sync.Map // bd.AccountID → struct{}
	// works are the running Work calls that take every account: a job of an
	// account new to them is announced right after its commit.
	worksMu sync.Mutex
	works   map[*worker]struct{}
	// refreshEvery is how often such a Work looks for other processes'
	// queues (queueRefresh; tests change it), and queuesRead, when set,
	// is called once a Work has read the queues it starts with (tests).
	refreshEvery time.Duration
	queuesRead   func()
	// shared keeps every account's jobs in one queue (WithSharedQueue).
	shared bool
	// wakes, on PostgreSQL with a listener, says that the store announces
	// committed jobs itself (see wake); woken limits it per queue.
	wakes  bool
	wakeMu sync.Mutex
	woken  map[string]*wakeState
}

var _ store.Store = (*Store)(nil)

// DefaultMaxRetries is how many times a write is run again after a transient
// conflict (a PostgreSQL serialization failure or deadlock, a busy SQLite
// database) unless [WithMaxRetries] says otherwise.
const DefaultMaxRetries = 8

// Option configures [Open]. Each option checks its own argument, and Open
// returns the error of every option that refused one.
type Option interface {
	apply(*options) error
}

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

type options struct {
	now        func() time.Time
	maxRetries int
	listener   *pgxpool.Pool
	logger     *slog.Logger
	shared     bool // WithSharedQueue
}

// WithClock sets the clock the store reads for times the caller does not
// give: when a reply was claimed and when a migration was applied. The
// default (and nil) is time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(o *options) error {
		if now == nil {
			now = time.Now
		}
		o.now = now
		return nil
	})
}

// WithMaxRetries sets how many times a write is run again after a transient
// conflict with a concurrent transaction, with a short randomised backoff
// between attempts; 0 disables retrying, a negative n is refused. The
// default is [DefaultMaxRetries].
func WithMaxRetries(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 0 {
			return fmt.Errorf("WithMaxRetries: negative count %d", n)
		}
		o.maxRetries = n
		return nil
	})
}

// WithPgxListener makes the job engine of a PostgreSQL store learn of new
// jobs through LISTEN/NOTIFY, over a connection it takes from pool, instead
// of looking for them periodically: a job is then picked up within
// milliseconds of its commit, and idle workers do not poll. pool must reach
// the same database as db and resolve the same schema (the same search_path);
// each running [Store.Work] holds one of its connections for as long as it
// runs (taken out of the pool). Use a pool that connects directly to
// PostgreSQL or through a session-pooling proxy. The default (and nil) is no
// listener; a SQLite store ignores it.
func WithPgxListener(pool *pgxpool.Pool) Option {
	return optionFunc(func(o *options) error {
		o.listener = pool
		return nil
	})
}

// WithLogger sets where the job engine (River) logs what goes wrong inside
// it: failed fetches, rescued jobs, a failed attempt. The default (and nil)
// discards its logs; the errors of jobs are kept with the jobs anyway (see
// [Store.DeadJobs]).
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) error {
		o.logger = l
		return nil
	})
}

// Open returns a Store over db, first bringing the database schema up to
// date (see the package documentation on migrations).
//
// The caller owns db: Open neither configures its pool nor closes it, and db
// must stay open for as long as the Store is used. dialect must match the
// driver behind db. Open fails, and changes nothing, when the database holds
// a schema newer than this version of the package knows ([ErrSchemaTooNew]).
//
// Several goroutines or processes may open stores on one database at once;
// Open may then block while another one migrates, for as long as ctx allows.
// A bad argument, an option's included, is refused with an error naming it
// before the database is touched.
func Open(ctx context.Context, db *sql.DB, dialect Dialect, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: Open: db is nil")
	}
	if !dialect.valid() {
		return nil, fmt.Errorf("sqlstore: Open: unknown dialect %s (want sqlstore.SQLite or sqlstore.Postgres)", dialect)
	}
	o := options{now: time.Now, maxRetries: DefaultMaxRetries}
	if err := option.Apply(opts, func(opt Option) error { return opt.apply(&o) }); err != nil {
		return nil, fmt.Errorf("sqlstore: Open: %w", err)
	}
	s, err := newStore(db, dialect, o)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx, 0); err != nil {
		return nil, err
	}
	return s, nil
}

// newStore returns a store over db without touching the database.
func newStore(db *sql.DB, dialect Dialect, o options) (*Store, error) {
	s := &Store{db: db, dialect: dialect, now: o.now, maxRetries: o.maxRetries, logger: o.logger, shared: o.shared, refreshEvery: queueRefresh}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if dialect == SQLite {
		s.writer = make(chan struct{}, 1)
	}
	s.driver = newRiverDriver(db, dialect, o.listener)
	var err error
	if s.river, err = s.newInsertClient(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dialect returns the dialect the store was opened with.
func (s *Store) Dialect() Dialect { return s.dialect }

// querier is what a write runs its statements on: the pool, a transaction
// or a single connection.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn, whose statements each commit on their own, retrying
// transient conflicts. Under SQLite it holds the store's writer token.
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	return s.retry(ctx, func() error {
		if s.writer != nil {
			release, err := s.lockWriter(ctx)
			if err != nil {
				return err
			}
			defer release()
		}
		return fn(s.db)
	})
}

// inTx runs fn in one transaction, retrying the whole transaction after
// transient conflicts. fn must run every statement on the querier it is
// given and nothing on the pool. An error from fn rolls the transaction
// back and is returned as it is.
func (s *Store) inTx(ctx context.Context, fn func(q querier) error) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return fn(tx) })
}

// tx is inTx for a function that needs the *sql.Tx itself, to store jobs
// through River in it.
//
// Under SQLite it holds the store's writer token, and the transaction's
// first statement is a write (sqliteWriteLock): a deferred transaction that
// writes before it reads takes the write lock at once, waiting for it as
// busy_timeout allows, exactly like BEGIN IMMEDIATE, so a transaction that
// reads before it writes never fails at a lock upgrade because another
// connection wrote in between. (database/sql cannot ask for BEGIN IMMEDIATE
// without a driver-specific DSN setting, and River needs a *sql.Tx.)
func (s *Store) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.retry(ctx, func() error {
		if s.writer != nil {
			release, err := s.lockWriter(ctx)
			if err != nil {
				return err
			}
			defer release()
		}
		var tx *sql.Tx
		if s.dialect == Postgres {
			// On a connection of its own, to tune its pgx type map first
			// (see tunePgx); closing it after the commit returns it to
			// the pool.
			conn, err := s.db.Conn(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			if err := tunePgx(conn); err != nil {
				return err
			}
			if tx, err = conn.BeginTx(ctx, nil); err != nil {
				return err
			}
		} else {
			var err error
			if tx, err = s.db.BeginTx(ctx, nil); err != nil {
				return err
			}
		}
		if s.dialect == SQLite {
			if _, err := tx.ExecContext(ctx, sqliteWriteLock); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// sqliteWriteLock changes nothing, but as a write it takes SQLite's write
// lock. bd_schema_migrations exists before any transaction runs (migrate
// creates it first, on its own).
const sqliteWriteLock = `DELETE FROM bd_schema_migrations WHERE 0`

// lockWriter waits for the store's SQLite writer token.
func (s *Store) lockWriter(ctx context.Context) (release func(), err error) {
	select {
	case s.writer <- struct{}{}:
		return func() { <-s.writer }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// retry runs op until it succeeds, fails for a reason other than a transient
// conflict, or has been retried s.maxRetries times.
func (s *Store) retry(ctx context.Context, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || !s.dialect.retryable(err) {
			return err
		}
		if attempt >= s.maxRetries {
			return fmt.Errorf("gave up after %d attempts: %w", attempt+1, err)
		}
		t := time.NewTimer(backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// backoff returns a random wait in [d/2, d) where d doubles from 1ms with
// every attempt up to 64ms, so conflicting writers spread out.
func backoff(attempt int) time.Duration {
	d := time.Millisecond << min(attempt, 6)
	return d/2 + rand.N(d/2)
}

// wrap names the failed operation on a driver or context error. Errors that
// already carry a store sentinel, and so their own detail, pass through.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{store.ErrNotFound, store.ErrCapacity, store.ErrAssigned, store.ErrClosed, store.ErrInvalid, store.ErrBusy} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	return fmt.Errorf("sqlstore: "+format+": %w", append(args, err)...)
}

// invalid returns an error matching store.ErrInvalid that names the problem.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: sqlstore: %s", store.ErrInvalid, fmt.Sprintf(format, args...))
}

// validDialog checks an account and dialog id a call names.
func validDialog(op string, account bd.AccountID, dialog bd.DialogID) error {
	if account == "" {
		return invalid("%s: account is empty", op)
	}
	if dialog <= 0 {
		return invalid("%s: dialog id must be positive, got %d", op, dialog)
	}
	return nil
}
