package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lib/pq"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// The job engine is River (see the package documentation): every
// [store.Job] is one River job of kind riverKind in the queue of its
// account (queueOf).

// riverKind is the River kind of every job the store keeps.
const riverKind = "botdistributor"

// Settings of the River clients.
const (
	// maxAttemptsBackstop is the max_attempts River stores with a job.
	// WorkOptions.MaxAttempts belongs to the worker, not to the job, so the
	// worker gives a job up itself (it cancels it, see worker.Work); River
	// discards a job only past this many attempts, which no worker allows.
	maxAttemptsBackstop = 1000
	// jobTimeout cancels the context of a handler that runs this long; the
	// attempt fails. A job is a few MessageGateway or CRM round trips.
	jobTimeout = 15 * time.Second
	// rescueAfter makes River's rescuer (run by the leading client every 30
	// seconds) take up again a job whose attempt started this long ago and
	// never finished: its worker's process died. It must exceed jobTimeout.
	rescueAfter = 20 * time.Second
	// queueRefresh is how often a Work of every account looks for the
	// queues of accounts other processes started to use.
	queueRefresh = 2 * time.Second
	// Finished jobs are kept this long (River's job cleaner deletes them
	// later; PruneEvents sooner): completed ones briefly, dead letters
	// (discarded or cancelled) for a week.
	completedRetention = 10 * time.Minute
	deadRetention      = 7 * 24 * time.Hour
)

// unfinished are the states in which a unique job keeps an equal one out.
var unfinished = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}

// dead are the states of a dead letter: discarded by River (past
// maxAttemptsBackstop) or cancelled by a worker whose attempts were spent.
var dead = []rivertype.JobState{rivertype.JobStateDiscarded, rivertype.JobStateCancelled}

// queueOf returns the River queue of the account's jobs: "bd_" and 128 bits
// of the SHA-256 of the account id in hex. River restricts queue names to
// lower-case letters, digits and separators, which an account id need not
// be; the hash is deterministic, valid, and does not collide in practice.
func queueOf(a bd.AccountID) string {
	h := sha256.Sum256([]byte(a))
	return "bd_" + hex.EncodeToString(h[:16])
}

// sharedQueue is the one River queue of every account's jobs in a store
// opened WithSharedQueue.
const sharedQueue = "bd_jobs"

// queueFor returns the River queue the store keeps the account's jobs in.
func (s *Store) queueFor(a bd.AccountID) string {
	if s.shared {
		return sharedQueue
	}
	return queueOf(a)
}

// WithSharedQueue keeps the jobs of every account in one River queue
// instead of a queue per account. A River client polls each of its queues
// (every 25 ms, see the package documentation), so a Work of many
// accounts over queues of their own polls the database that many times
// over, busy or idle; with one queue, one Work serves any number of
// accounts for the cost of one. The price: a Work can no longer take some
// accounts' jobs only, so [Store.Work] refuses WorkOptions.Accounts, and
// every Work of the database takes every account's jobs (as a host of
// many accounts, package fleet, wants). Every process sharing a database
// must use the same layout; jobs stored under the other layout are not
// worked (switch with no jobs pending).
func WithSharedQueue() Option {
	return optionFunc(func(o *options) error {
		o.shared = true
		return nil
	})
}

// accountFilter is the River list predicate that keeps one account's jobs
// of the shared queue: their args name the account (as JSON, read with
// ->>, which PostgreSQL's jsonb and SQLite both know).
const accountFilter = "args ->> 'account' = @account"

// jobArgs is a store.Job as River keeps it (JSON in river_job.args). The
// fields tagged unique make the uniqueness key of distribute, bind and move
// jobs: (account, kind, dialog).
type jobArgs struct {
	Account   string    `json:"account" river:"unique"`
	JobKind   string    `json:"kind" river:"unique"`
	DialogID  int64     `json:"dialog_id" river:"unique"`
	Dialog    jobDialog `json:"dialog"`
	Situation string    `json:"situation,omitempty"`
	First     string    `json:"first,omitempty"`
	Manager   int64     `json:"manager,omitempty"`
	Why       string    `json:"why,omitempty"`
}

type jobDialog struct {
	Chat              int64     `json:"chat,omitempty"`
	Channel           int64     `json:"channel,omitempty"`
	Customer          int64     `json:"customer,omitempty"`
	CustomerFirstName string    `json:"customer_first_name,omitempty"`
	CustomerLastName  string    `json:"customer_last_name,omitempty"`
	CustomerPhone     string    `json:"customer_phone,omitempty"`
	CustomerEmail     string    `json:"customer_email,omitempty"`
	OpenedAt          time.Time `json:"opened_at"`
}

// Kind implements river.JobArgs.
func (jobArgs) Kind() string { return riverKind }

func argsOf(j store.Job) jobArgs {
	d := j.Dialog
	return jobArgs{
		Account: string(j.Account), JobKind: string(j.Kind), DialogID: int64(d.ID),
		Dialog: jobDialog{
			Chat: int64(d.Chat), Channel: int64(d.Channel), Customer: int64(d.Customer.ID),
			CustomerFirstName: d.Customer.FirstName, CustomerLastName: d.Customer.LastName,
			CustomerPhone: d.Customer.Phone, CustomerEmail: d.Customer.Email,
			OpenedAt: d.OpenedAt.UTC(),
		},
		Situation: string(j.Situation), First: string(j.First), Manager: int64(j.Manager), Why: j.Why,
	}
}

// job returns the store.Job a River job carries.
func (a jobArgs) job(row *rivertype.JobRow) store.Job {
	d := a.Dialog
	return store.Job{
		ID:      row.ID,
		Kind:    store.JobKind(a.JobKind),
		Account: bd.AccountID(a.Account),
		Dialog: bd.Dialog{
			Account: bd.AccountID(a.Account), ID: bd.DialogID(a.DialogID),
			Chat: bd.ChatID(d.Chat), Channel: bd.ChannelID(d.Channel),
			Customer: bd.Customer{
				ID: bd.CustomerID(d.Customer), FirstName: d.CustomerFirstName, LastName: d.CustomerLastName,
				Phone: d.CustomerPhone, Email: d.CustomerEmail,
			},
			OpenedAt: d.OpenedAt,
		},
		Situation: bd.Situation(a.Situation),
		First:     bd.Situation(a.First),
		Manager:   bd.ManagerID(a.Manager),
		Why:       a.Why,
		Attempt:   row.Attempt,
	}
}

// newRiverDriver returns River's driver for the dialect: riversqlite, or
// riverdatabasesql (with a pgx listener when one is given).
func newRiverDriver(db *sql.DB, d Dialect, listener *pgxpool.Pool) riverdriver.Driver[*sql.Tx] {
	switch {
	case d == SQLite:
		return riversqlite.New(db)
	case listener != nil:
		return riverdatabasesql.NewWithPgxListener(db, listener)
	}
	return riverdatabasesql.New(db)
}

// listens reports whether River learns of new jobs by notification:
// LISTEN/NOTIFY in PostgreSQL when a listener pool was given; in SQLite
// riversqlite's notification table, which its listener reads every 50 ms.
func (s *Store) listens() bool { return s.driver.SupportsListener() }

// riverConfig returns the settings every River client of the store shares.
func (s *Store) riverConfig() *river.Config {
	c := &river.Config{
		Logger:                      s.logger,
		MaxAttempts:                 maxAttemptsBackstop,
		JobTimeout:                  jobTimeout,
		RescueStuckJobsAfter:        rescueAfter,
		CompletedJobRetentionPeriod: completedRetention,
		CancelledJobRetentionPeriod: deadRetention,
		DiscardedJobRetentionPeriod: deadRetention,
		// A fetch at most every 10 ms per queue, so that a busy queue
		// fetches jobs in batches; the inserting client notifies a queue
		// as often (River's limiter uses this too).
		FetchCooldown: fetchCooldown,
		// Each queue is also polled: without a listener this is how
		// workers learn of new jobs, so often. With one, every commit that
		// stores jobs is announced (wake), River's scheduler announces the
		// retries and delayed jobs it makes available, and the poll is
		// only a backstop for a lost notification: each poll is a fetch
		// on the database, for every process.
		FetchPollInterval: 25 * time.Millisecond,
	}
	if s.listens() {
		c.FetchPollInterval = 250 * time.Millisecond
	}
	return c
}

// newInsertClient returns the River client the store inserts jobs with and
// lists them through. It works no jobs.
func (s *Store) newInsertClient() (*river.Client[*sql.Tx], error) {
	driver := s.driver
	if s.dialect == Postgres && s.listens() {
		s.wakes, s.woken = true, make(map[string]*wakeState)
		driver = quietInserts{s.driver}
	}
	c, err := river.NewClient(driver, s.riverConfig())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: configuring the job engine: %w", err)
	}
	return c, nil
}

// migrateRiverTx brings River's tables (river_job, river_queue,
// river_leader, river_client, river_client_queue, river_migration and
// river_notification) up to date in a SQLite store's migration
// transaction, under its write lock.
func (s *Store) migrateRiverTx(ctx context.Context, tx *sql.Tx) error {
	m, err := rivermigrate.New(s.driver, &rivermigrate.Config{Logger: s.logger})
	if err != nil {
		return fmt.Errorf("migrating River: %w", err)
	}
	//lint:ignore SA1019 SQLite runs River's migrations in one transaction fine, and the store's write lock covers them
	if _, err := m.MigrateTx(ctx, tx, rivermigrate.DirectionUp, nil); err != nil { //nolint:staticcheck
		return fmt.Errorf("migrating River: %w", err)
	}
	return nil
}

// migrateRiverPostgres brings River's tables up to date in PostgreSQL.
// Some of River's migrations must commit before the next one runs (an enum
// value added, then used), so River applies each in a transaction of its
// own; a session-level advisory lock, held on a connection of its own for
// the while, keeps concurrent Opens from migrating at the same time.
func (s *Store) migrateRiverPostgres(ctx context.Context) (err error) {
	m, err := rivermigrate.New(s.driver, &rivermigrate.Config{Logger: s.logger})
	if err != nil {
		return fmt.Errorf("sqlstore: migrating River: %w", err)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrating River: %w", err)
	}
	defer conn.Close()
	const key = `hashtext('botdistributor/sqlstore/river/' || coalesce(current_schema(), ''))`
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+key+`)`); err != nil {
		return fmt.Errorf("sqlstore: taking the River migration lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+key+`)`); uerr != nil {
			// Closing the session is what releases the lock then.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("sqlstore: migrating River: %w", err)
	}
	return nil
}

// change runs fn in a transaction and, when fn reports that it made its
// change, stores jobs in the same transaction (see insertJobs).
func (s *Store) change(ctx context.Context, jobs []store.Job, fn func(q querier) (made bool, err error)) error {
	var ins inserted
	err := s.tx(ctx, func(tx *sql.Tx) error {
		ins = inserted{}
		made, err := fn(tx)
		if err != nil || !made || len(jobs) == 0 {
			return err
		}
		ins, err = s.insertJobs(ctx, tx, jobs)
		return err
	})
	if err == nil {
		s.committed(ctx, ins)
	}
	return err
}

// changeLast is change for a change of one dialog that is always made when
// fn succeeds and that locks rows other transactions wait for, such as a
// manager's load: the jobs are stored first and fn runs last, so that its
// locks are held for fn's own round trip and the commit, not for the jobs'
// inserts as well. An error from fn rolls the jobs back with the rest.
//
// The dialog's lock is taken before the jobs are stored, as every write
// takes it first: a job's rows (a reply's claim, a unique job) may be
// written by another transaction of the same dialog that holds its lock
// (Enqueue stores its jobs after its change), and taking the lock only in
// fn would wait for that one while it waits for these rows. A dialog found
// closed gets no jobs.
func (s *Store) changeLast(ctx context.Context, account bd.AccountID, dialog bd.DialogID, jobs []store.Job, fn func(q querier) error) error {
	var ins inserted
	err := s.tx(ctx, func(tx *sql.Tx) error {
		ins = inserted{}
		closed, err := s.isClosed(ctx, tx, account, dialog)
		if err != nil {
			return err
		}
		if closed {
			// A closed dialog's change is refused or changes nothing: fn
			// says which, with no jobs stored for it.
			return fn(tx)
		}
		if ins, err = s.insertJobs(ctx, tx, jobs); err != nil {
			return err
		}
		return fn(tx)
	})
	if err == nil {
		s.committed(ctx, ins)
	}
	return err
}

// inserted is what insertJobs stored: the accounts whose queue it
// recorded for the first time, and the queues it put jobs in.
type inserted struct {
	fresh  []bd.AccountID
	queues []string
}

// insertJobs stores jobs in tx, with the uniqueness the store.Job doc
// describes: a reply job only together with its claim in bd_replies, new
// in this transaction; distribute, bind and move jobs through River's
// unique insert over (account, kind, dialog) among unfinished jobs (and
// once per batch). It records the queue of an account not seen before in
// bd_job_queues and returns those accounts.
func (s *Store) insertJobs(ctx context.Context, tx *sql.Tx, jobs []store.Job) (ins inserted, err error) {
	params := make([]river.InsertManyParams, 0, len(jobs))
	var seen map[string]bool
	now := time.Now()
	for _, j := range jobs {
		switch {
		case j.Kind == store.JobReply:
			claimed, err := s.claimReplies(ctx, tx, j)
			if err != nil {
				return inserted{}, err
			}
			var ok bool
			if j, ok = j.Keep(func(sit bd.Situation) bool { return slices.Contains(claimed, sit) }); !ok {
				continue // claimed before: sent or being sent
			}
		case j.Unique():
			key := string(j.Account) + "\x00" + j.Key()
			if seen[key] {
				continue
			}
			if seen == nil {
				seen = make(map[string]bool)
			}
			seen[key] = true
		}
		opts := &river.InsertOpts{Queue: s.queueFor(j.Account), MaxAttempts: maxAttemptsBackstop}
		if j.Unique() && j.Kind != store.JobReply {
			opts.UniqueOpts = river.UniqueOpts{ByArgs: true, ByState: unfinished}
		}
		if j.Delay > 0 {
			opts.ScheduledAt = now.Add(j.Delay)
		}
		params = append(params, river.InsertManyParams{Args: argsOf(j), InsertOpts: opts})
		if !slices.Contains(ins.queues, opts.Queue) {
			ins.queues = append(ins.queues, opts.Queue)
		}
		if _, known := s.queues.Load(j.Account); !known && !s.shared && !containsAccount(ins.fresh, j.Account) {
			ins.fresh = append(ins.fresh, j.Account)
		}
	}
	for _, a := range ins.fresh {
		if _, err := tx.ExecContext(ctx, `INSERT INTO bd_job_queues (account, queue) VALUES ($1, $2)
			ON CONFLICT (account) DO NOTHING`, string(a), queueOf(a)); err != nil {
			return inserted{}, err
		}
	}
	if len(params) == 0 {
		ins.queues = nil
		return ins, nil
	}
	if _, err := s.river.InsertManyTx(ctx, tx, params); err != nil {
		return inserted{}, err
	}
	return ins, nil
}

// claimReplies inserts the claims of a reply job's replies (see
// store.Job.Replies) in one statement and returns the situations whose
// claim it took: those not claimed before.
func (s *Store) claimReplies(ctx context.Context, tx *sql.Tx, j store.Job) ([]bd.Situation, error) {
	sits := j.Replies()
	query := `INSERT INTO bd_replies (account, dialog, situation, claimed_at) VALUES ($1, $2, $4, $3)`
	args := []any{string(j.Account), int64(j.Dialog.ID), s.dialect.timeArg(s.now()), string(sits[0])}
	if len(sits) > 1 {
		query += `, ($1, $2, $5, $3)`
		args = append(args, string(sits[1]))
	}
	rows, err := tx.QueryContext(ctx, query+` ON CONFLICT (account, dialog, situation) DO NOTHING RETURNING situation`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var claimed []bd.Situation
	for rows.Next() {
		var sit string
		if err := rows.Scan(&sit); err != nil {
			return nil, err
		}
		claimed = append(claimed, bd.Situation(sit))
	}
	return claimed, rows.Err()
}

func containsAccount(as []bd.AccountID, a bd.AccountID) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// committed announces the jobs a committed transaction stored (see wake),
// notes the queues it recorded, and hands those to the running Work calls
// of every account in this process, so that their first jobs do not wait
// for the next refresh.
func (s *Store) committed(ctx context.Context, ins inserted) {
	s.wake(ctx, ins.queues)
	if len(ins.fresh) == 0 {
		return
	}
	for _, a := range ins.fresh {
		s.queues.Store(a, struct{}{})
	}
	s.worksMu.Lock()
	defer s.worksMu.Unlock()
	for w := range s.works {
		for _, a := range ins.fresh {
			w.addQueue(queueOf(a))
		}
	}
}

// fetchCooldown is the least time between two fetches of one queue by a
// River client, and between two announcements of a queue's new jobs by one
// store (wake): a busy queue is fetched in batches.
const fetchCooldown = 10 * time.Millisecond

// wake announces, after their commit, that jobs were stored in queues: the
// PostgreSQL notification River's own insert would send, which wakes the
// workers of every process listening. River sends it inside the inserting
// transaction, and PostgreSQL serialises the commits of all transactions
// that notified on one lock, held through each commit's flush: with many
// writers, commits queued there while holding their row locks (a manager's
// load), and assignments waited behind them. Sent after the commit, the
// notification holds nothing. A queue is announced at most once per
// fetchCooldown from this store; jobs committed meanwhile are announced
// when that time is up, so none waits for the workers' poll. A
// notification that fails to go out delays the jobs until that poll; it
// loses nothing.
func (s *Store) wake(ctx context.Context, queues []string) {
	if !s.wakes || len(queues) == 0 {
		return
	}
	now := time.Now()
	var due []string
	s.wakeMu.Lock()
	for _, q := range queues {
		w := s.woken[q]
		if w == nil {
			w = new(wakeState)
			s.woken[q] = w
		}
		switch {
		case now.Sub(w.last) >= fetchCooldown:
			w.last = now
			due = append(due, q)
		case !w.later:
			w.later = true
			time.AfterFunc(w.last.Add(fetchCooldown).Sub(now), func() { s.wakeLater(q) })
		}
	}
	s.wakeMu.Unlock()
	s.notify(ctx, due)
}

// wakeState is when a queue was last announced, and whether an
// announcement is due at the end of its cooldown.
type wakeState struct {
	last  time.Time
	later bool
}

// wakeLater sends the announcement wake put off.
func (s *Store) wakeLater(q string) {
	s.wakeMu.Lock()
	w := s.woken[q]
	w.later, w.last = false, time.Now()
	s.wakeMu.Unlock()
	s.notify(context.Background(), []string{q})
}

// notify sends River's new-jobs notification of queues.
func (s *Store) notify(ctx context.Context, queues []string) {
	if len(queues) == 0 {
		return
	}
	payloads := make([]string, len(queues))
	for i, q := range queues {
		payloads[i] = fmt.Sprintf(`{"queue": %q}`, q)
	}
	if _, err := s.db.ExecContext(context.WithoutCancel(ctx), `SELECT pg_notify(current_schema() || '.' || $1, p) FROM unnest($2::text[]) AS p`,
		riverInsertTopic, pq.Array(payloads)); err != nil {
		s.logger.LogAttrs(ctx, slog.LevelDebug, "sqlstore: announcing new jobs failed; the workers' poll finds them", slog.Any("error", err))
	}
}

// riverInsertTopic is the channel (after the schema and a dot) River's
// workers listen on for new jobs, and its insert notifies.
const riverInsertTopic = "river_insert"

// quietInserts is the River driver of the store's insert client when the
// store announces committed jobs itself (wake): River then sends no
// notification inside the store's transactions.
type quietInserts struct{ riverdriver.Driver[*sql.Tx] }

// SupportsListenNotify tells River's insert not to notify.
func (quietInserts) SupportsListenNotify() bool { return false }

// Submit implements [store.Jobs]: the jobs are stored in one transaction,
// all or none.
func (s *Store) Submit(ctx context.Context, jobs ...store.Job) error {
	if err := store.CheckJobs(jobs); err != nil {
		return err
	}
	if len(jobs) == 0 {
		return nil
	}
	err := s.change(ctx, jobs, func(querier) (bool, error) { return true, nil })
	return wrap(err, "submit %d jobs", len(jobs))
}

// checkThen checks the jobs a store-changing method was given.
func checkThen(op string, jobs []store.Job) error {
	if err := store.CheckJobs(jobs); err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return nil
}

// PendingJobs implements [store.Jobs]: the account's River jobs that are
// available, pending, scheduled, retryable or running.
func (s *Store) PendingJobs(ctx context.Context, account bd.AccountID) (int, error) {
	if account == "" {
		return 0, invalid("pending jobs: account is empty")
	}
	var n int
	var err error
	if s.shared {
		err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM river_job
			WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled') AND queue = $1
			AND args ->> 'account' = $2`, sharedQueue, string(account)).Scan(&n)
	} else {
		err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM river_job
			WHERE state IN ('available', 'pending', 'retryable', 'running', 'scheduled') AND queue = $1`,
			queueOf(account)).Scan(&n)
	}
	return n, wrap(err, "count the pending jobs of account %q", account)
}

// maxDeadJobs is the most dead letters DeadJobs returns at once (River
// lists at most this many).
const maxDeadJobs = 10_000

// DeadJobs implements [store.Jobs]: the account's River jobs that were
// discarded or cancelled (given up by a worker), by finalized_at, newest
// first. A limit above 10 000 returns 10 000.
func (s *Store) DeadJobs(ctx context.Context, account bd.AccountID, limit int) ([]store.DeadJob, error) {
	switch {
	case account == "":
		return nil, invalid("dead jobs: account is empty")
	case limit < 0:
		return nil, invalid("dead jobs: limit must not be negative, got %d", limit)
	case limit == 0:
		return nil, nil
	}
	params := river.NewJobListParams().
		Queues(s.queueFor(account)).
		States(dead...).
		OrderBy(river.JobListOrderByFinalizedAt, river.SortOrderDesc).
		First(min(limit, maxDeadJobs))
	if s.shared {
		params = params.Where(accountFilter, river.NamedArgs{"account": string(account)})
	}
	res, err := s.river.JobList(ctx, params)
	if err != nil {
		return nil, wrap(err, "list the dead jobs of account %q", account)
	}
	out := make([]store.DeadJob, 0, len(res.Jobs))
	for _, row := range res.Jobs {
		var a jobArgs
		if err := json.Unmarshal(row.EncodedArgs, &a); err != nil {
			return nil, wrap(err, "decode dead job %d", row.ID)
		}
		dj := store.DeadJob{Job: a.job(row)}
		if n := len(row.Errors); n > 0 {
			dj.Err = strings.TrimPrefix(row.Errors[n-1].Error, "JobCancelError: ")
		}
		if row.FinalizedAt != nil {
			dj.At = row.FinalizedAt.UTC()
		}
		out = append(out, dj)
	}
	return out, nil
}

// pruneJobs deletes the River jobs finished (completed, cancelled or
// discarded) before the given time, in batches.
func (s *Store) pruneJobs(ctx context.Context, before time.Time) error {
	const batch = 10_000
	for {
		n, err := s.driver.GetExecutor().JobDeleteBefore(ctx, &riverdriver.JobDeleteBeforeParams{
			CancelledDoDelete: true, CancelledFinalizedAtHorizon: before,
			CompletedDoDelete: true, CompletedFinalizedAtHorizon: before,
			DiscardedDoDelete: true, DiscardedFinalizedAtHorizon: before,
			Max: batch,
		})
		if err != nil || n < batch {
			return err
		}
	}
}

// Work implements [store.Jobs] with a River client of its own, started for
// the queues of o.Accounts (or, with none, of every account in
// bd_job_queues, looked up again every couple of seconds and at once for
// jobs this Store stores). It returns ctx.Err() once ctx ended and River
// stopped: the running handlers' context is canceled, and a handler that
// then returns a context error leaves its job to be run again without the
// attempt counting.
func (s *Store) Work(ctx context.Context, h store.JobHandler, o store.WorkOptions) error {
	if h == nil {
		return invalid("work: handler is nil")
	}
	o, err := o.Normalized()
	if err != nil {
		return err
	}
	for _, a := range o.Accounts {
		if a == "" {
			return invalid("work: WorkOptions.Accounts holds an empty account")
		}
	}
	if s.shared && len(o.Accounts) > 0 {
		return invalid("work: the store keeps every account's jobs in one queue (WithSharedQueue), so a Work takes them all: WorkOptions.Accounts must be empty, got %d accounts", len(o.Accounts))
	}
	w := &worker{s: s, h: h, o: o, sem: make(chan struct{}, o.Workers), queues: make(map[string]bool)}
	// A Work of every account is told of the queues this Store records
	// from now on before it reads those recorded so far: a queue recorded
	// in between would otherwise wait for the next refresh.
	refreshing := len(o.Accounts) == 0 && !s.shared
	if refreshing {
		s.worksMu.Lock()
		if s.works == nil {
			s.works = make(map[*worker]struct{})
		}
		s.works[w] = struct{}{}
		s.worksMu.Unlock()
		defer func() {
			s.worksMu.Lock()
			delete(s.works, w)
			s.worksMu.Unlock()
		}()
	}
	var queues []string
	if s.shared {
		queues = []string{sharedQueue}
	} else if len(o.Accounts) > 0 {
		for _, a := range o.Accounts {
			queues = append(queues, queueOf(a))
		}
	} else if queues, err = s.knownQueues(ctx); err != nil {
		return wrap(err, "work: read the queues")
	}
	if s.queuesRead != nil {
		s.queuesRead()
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return fmt.Errorf("sqlstore: work: %w", err)
	}
	c := s.riverConfig()
	if o.Member != "" {
		// River records the client's id in each job it runs (attempted_by):
		// a lease round that finds the member lapsed gives those jobs back.
		c.ID = memberClientID(o.Member)
	}
	c.Workers = workers
	c.RetryPolicy = retryPolicy{w}
	// The queues added meanwhile (see addQueue) are in w.queues already.
	w.mu.Lock()
	for _, q := range queues {
		w.queues[q] = true
	}
	if len(w.queues) == 0 {
		// River works at least one queue; no job is ever put in this one.
		w.queues["bd_idle"] = true
	}
	c.Queues = make(map[string]river.QueueConfig, len(w.queues))
	for q := range w.queues {
		c.Queues[q] = river.QueueConfig{MaxWorkers: o.Workers}
	}
	client, err := river.NewClient(s.driver, c)
	if err == nil {
		w.client = client
	}
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sqlstore: work: configuring the job engine: %w", err)
	}
	// River stops when this Work says so, not when ctx ends on its own.
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return wrap(err, "work: start the job engine")
	}
	var wg sync.WaitGroup
	wg.Go(func() { every(ctx, promoteEvery, w.promote) })
	if refreshing {
		wg.Go(func() { every(ctx, s.refreshEvery, w.refresh) })
	}
	<-ctx.Done()
	w.stopping.Store(true)
	wg.Wait()
	w.mu.Lock() // no queue is added while River stops
	defer w.mu.Unlock()
	if err := client.StopAndCancel(context.WithoutCancel(ctx)); err != nil {
		return wrap(err, "work: stop the job engine")
	}
	return ctx.Err()
}

// promoteEvery is how often a Work makes its queues' due delayed jobs and
// retries available (promote).
const promoteEvery = 100 * time.Millisecond

// promote makes the delayed jobs and retries of the worker's queues that
// are due available; Work runs it every promoteEvery: River's own
// scheduler does so only every 5 s, so a retry asked for in a second
// (MessageGateway's pause, a refused assignment's drain) would wait up to
// six. Both may move the same job; River's scheduler stays the backstop.
func (w *worker) promote(ctx context.Context) {
	if err := w.s.promoteDue(ctx, w.queueList()); err != nil && ctx.Err() == nil {
		w.s.logger.LogAttrs(ctx, slog.LevelDebug, "sqlstore: making due jobs available failed; River's scheduler does it", slog.Any("error", err))
	}
}

// every calls round every period until ctx ends.
func every(ctx context.Context, period time.Duration, round func(context.Context)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		round(ctx)
	}
}

// queueList returns the queues the worker works.
func (w *worker) queueList() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	qs := make([]string, 0, len(w.queues))
	for q := range w.queues {
		qs = append(qs, q)
	}
	return qs
}

// promoteDue makes the scheduled and retryable jobs of queues whose time
// has come available, by the database's clock, and announces the queues
// where it did. A unique job cannot meet an equal one in its new state:
// both states keep equal ones out (unfinished).
func (s *Store) promoteDue(ctx context.Context, queues []string) error {
	if len(queues) == 0 {
		return nil
	}
	if s.dialect == SQLite {
		return s.promoteDueSQLite(ctx, queues)
	}
	rows, err := s.db.QueryContext(ctx, `UPDATE river_job SET state = 'available'
		WHERE state IN ('scheduled', 'retryable') AND queue = ANY($1) AND scheduled_at <= now()
		RETURNING queue`, pq.Array(queues))
	if err != nil {
		return err
	}
	defer rows.Close()
	var due []string
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			return err
		}
		if !slices.Contains(due, q) {
			due = append(due, q)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.wake(ctx, due)
	return nil
}

// promoteDueSQLite is promoteDue on SQLite. It looks for a due job first,
// which takes no lock, and writes only when one is due: the database has
// one writer at a time. River stores times as text in the format of
// datetime('now', 'subsec'), which the comparisons rely on, as River's own
// scheduler's do. The workers' poll (every 25 ms) then fetches the jobs.
func (s *Store) promoteDueSQLite(ctx context.Context, queues []string) error {
	args := make([]any, len(queues))
	for i, q := range queues {
		args[i] = q
	}
	in := strings.Repeat("?, ", len(queues)-1) + "?"
	due := `state IN ('scheduled', 'retryable') AND scheduled_at <= datetime('now', 'subsec') AND queue IN (` + in + `)`
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM river_job WHERE `+due+` LIMIT 1`, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `UPDATE river_job SET state = 'available' WHERE `+due, args...)
		return err
	})
}

// knownQueues returns the queues of every account that has had a job.
func (s *Store) knownQueues(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT account, queue FROM bd_job_queues`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a, q string
		if err := rows.Scan(&a, &q); err != nil {
			return nil, err
		}
		s.queues.Store(bd.AccountID(a), struct{}{})
		out = append(out, q)
	}
	return out, rows.Err()
}

// worker runs one Work call's jobs: it is the River worker of jobArgs.
type worker struct {
	river.WorkerDefaults[jobArgs]
	s      *Store
	h      store.JobHandler
	o      store.WorkOptions
	client *river.Client[*sql.Tx]
	// sem bounds the handlers running at once across all queues (River
	// bounds each queue on its own).
	sem chan struct{}
	// delays holds the delay a *store.RetryAfterError asked for, by job id,
	// from the failed attempt to NextRetry.
	delays   sync.Map
	stopping atomic.Bool

	mu     sync.Mutex
	queues map[string]bool
}

// Work implements river.Worker: it runs the handler and gives the job up
// (River's JobCancel, a dead letter) when its last attempt fails.
func (w *worker) Work(ctx context.Context, rj *river.Job[jobArgs]) (err error) {
	j := rj.Args.job(rj.JobRow)
	if j.Attempt > w.o.MaxAttempts {
		// Rescued after its worker died on the last attempt.
		return river.JobCancel(fmt.Errorf("sqlstore: job %s: %d attempts spent, the last ones without an outcome", j.Key(), w.o.MaxAttempts))
	}
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.sem }()
	err = w.run(ctx, j)
	if err == nil || w.stopping.Load() {
		// While stopping, River puts a job whose handler returned a
		// context error back without counting the attempt.
		return err
	}
	if ra := (*store.RetryAfterError)(nil); errors.As(err, &ra) {
		w.delays.Store(rj.ID, max(ra.Delay, 0))
	}
	if j.Attempt >= w.o.MaxAttempts {
		w.delays.Delete(rj.ID)
		return river.JobCancel(err)
	}
	return err
}

// run calls the handler, turning a panic into the attempt's error.
func (w *worker) run(ctx context.Context, j store.Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sqlstore: job handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return w.h(ctx, j)
}

// retryPolicy is the River client's retry policy of a Work call.
type retryPolicy struct{ w *worker }

// NextRetry implements river.ClientRetryPolicy: the delay a
// *store.RetryAfterError asked for, else WorkOptions.Backoff of the attempt
// that failed. The attempt counts either way.
func (p retryPolicy) NextRetry(row *rivertype.JobRow) time.Time {
	w := p.w
	if d, ok := w.delays.LoadAndDelete(row.ID); ok {
		return time.Now().Add(d.(time.Duration))
	}
	return time.Now().Add(w.o.Backoff(max(row.Attempt, 1)))
}

// addQueue starts working queue q unless this worker does already; before
// the worker's River client is made, q is only noted, for the client's
// configuration.
func (w *worker) addQueue(q string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.queues[q] || w.stopping.Load() {
		return
	}
	if w.client == nil {
		w.queues[q] = true
		return
	}
	if err := w.client.Queues().Add(q, river.QueueConfig{MaxWorkers: w.o.Workers}); err != nil {
		w.s.logger.Error("sqlstore: adding a job queue", "queue", q, "err", err)
		return
	}
	w.queues[q] = true
}

// refresh adds the queues other processes recorded; Work runs it every
// queueRefresh (Store.refreshEvery).
func (w *worker) refresh(ctx context.Context) {
	qs, err := w.s.knownQueues(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.s.logger.Error("sqlstore: reading the job queues", "err", err)
		}
		return
	}
	for _, q := range qs {
		w.addQueue(q)
	}
}
