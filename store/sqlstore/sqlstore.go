package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	bd "github.com/botdistributor/botdistributor"
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
}

var _ store.Store = (*Store)(nil)

// DefaultMaxRetries is how many times a write is run again after a transient
// conflict (a PostgreSQL serialization failure or deadlock, a busy SQLite
// database) unless [WithMaxRetries] says otherwise.
const DefaultMaxRetries = 8

// Option configures [Open]. A nil Option is ignored.
type Option func(*options)

type options struct {
	now        func() time.Time
	maxRetries int
}

// WithClock sets the clock the store reads for times the caller does not
// give: when a reply was claimed and when a migration was applied. Nil means
// time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithMaxRetries sets how many times a write is run again after a transient
// conflict with a concurrent transaction, with a short randomised backoff
// between attempts; 0 disables retrying. Open rejects a negative n. The
// default is [DefaultMaxRetries].
func WithMaxRetries(n int) Option {
	return func(o *options) { o.maxRetries = n }
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
func Open(ctx context.Context, db *sql.DB, dialect Dialect, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlstore: Open: db is nil")
	}
	if !dialect.valid() {
		return nil, fmt.Errorf("sqlstore: Open: unknown dialect %s (want sqlstore.SQLite or sqlstore.Postgres)", dialect)
	}
	o := options{now: time.Now, maxRetries: DefaultMaxRetries}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.maxRetries < 0 {
		return nil, fmt.Errorf("sqlstore: Open: WithMaxRetries(%d): must not be negative", o.maxRetries)
	}
	s := &Store{db: db, dialect: dialect, now: o.now, maxRetries: o.maxRetries}
	if dialect == SQLite {
		s.writer = make(chan struct{}, 1)
	}
	if err := s.migrate(ctx, 0); err != nil {
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
	return s.retry(ctx, func() error {
		if s.dialect == SQLite {
			return s.sqliteTx(ctx, fn)
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// sqliteTx runs fn in a BEGIN IMMEDIATE transaction on one connection.
// IMMEDIATE takes the write lock up front, so a transaction that reads before
// it writes never fails at its first write because another connection wrote
// in between. database/sql cannot ask for IMMEDIATE without a driver-specific
// DSN setting, so the transaction is driven by hand.
func (s *Store) sqliteTx(ctx context.Context, fn func(q querier) error) (err error) {
	release, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer release()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err = fn(conn); err == nil {
		if _, err = conn.ExecContext(ctx, "COMMIT"); err == nil {
			return nil
		}
	}
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
		// The connection may still be inside a transaction: never hand it
		// back to the pool.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

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
	for _, sentinel := range []error{store.ErrNotFound, store.ErrCapacity, store.ErrAssigned, store.ErrClosed, store.ErrInvalid} {
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
