package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/internal/restart"
)

// JobKind names the work a [Job] asks for.
type JobKind string

// The kinds of work the distributor does.
const (
	// JobDistribute gives a dialog with no responsible to a manager or a
	// bot, or puts it in the queue with the right reply.
	JobDistribute JobKind = "distribute"
	// JobReply sends the account's automatic reply for Job.Situation,
	// after the one for Job.First if set.
	JobReply JobKind = "reply"
	// JobBind links the dialog's customer to a retailCRM customer.
	JobBind JobKind = "bind"
	// JobMove moves a dialog away from Job.Manager (reassignment).
	JobMove JobKind = "move"
	// JobDrain hands free slots of the account to waiting dialogs.
	JobDrain JobKind = "drain"
)

// Valid reports whether k is one of the kinds above.
func (k JobKind) Valid() bool {
	switch k {
	case JobDistribute, JobReply, JobBind, JobMove, JobDrain:
		return true
	}
	return false
}

// Job is one unit of work an event causes. Jobs are stored before the event
// counts as handled and done by retrying workers (see [Jobs]): a failure
// delays a job, never drops it.
//
// Uniqueness, per account:
//   - a reply exists at most once per (dialog, situation), ever: storing it
//     is the reply's claim (the one [Replies.ClaimReply] takes), so a reply
//     claimed before is not stored again;
//   - distribute, bind and move jobs are unique per (kind, dialog) among the
//     jobs not finished yet: one stored while an equal one waits or runs is
//     dropped, as the one stored first does the work;
//   - drain jobs are not unique; the worker coalesces them.
type Job struct {
	// ID is set by the store; zero in a job being submitted.
	ID   int64
	Kind JobKind
	// Account is the account the job belongs to; required.
	Account bd.AccountID
	// Dialog is the dialog concerned (its id is required but for drain
	// jobs), with what the work needs of it: channel, chat, customer.
	Dialog bd.Dialog
	// Situation is the reply's situation, for JobReply.
	Situation bd.Situation
	// First, for JobReply, is the situation of a reply sent before
	// Situation's in the same job: the greeting before "manager assigned",
	// one job where there would be two. Each of the two replies holds a
	// claim of its own (see [Replies]): a store keeps only the replies not
	// claimed before and drops the job when neither is left, and a job
	// keeping only First's reply has it as its Situation.
	First bd.Situation
	// Manager is the assigned manager a JobReply names, or the manager a
	// JobMove takes the dialog away from.
	Manager bd.ManagerID
	// Why says why a dialog moves, for JobMove.
	Why string
	// Delay puts off the first attempt by this long after the job is stored.
	Delay time.Duration
	// IfWaiting, on a job stored with a store change (the then jobs of
	// ClaimEvent, Assign, Record, Close, Enqueue), asks the store to keep
	// the job only if the account has dialogs waiting in its queue when
	// the change takes effect: a drain after a close is pointless when
	// nothing waits, and a dialog queued later brings its own drain. A
	// store that cannot tell it within the same atomic step keeps the job
	// regardless; Submit always keeps it.
	IfWaiting bool
	// Attempt counts the tries, this one included: 1 on the first. It is set
	// by the store when it hands the job to a handler.
	Attempt int
}

// Key identifies the job within its account for uniqueness and logs, e.g.
// "reply:1042:manager_assigned".
func (j Job) Key() string {
	k := string(j.Kind)
	if j.Kind != JobDrain {
		k += ":" + strconv.FormatInt(int64(j.Dialog.ID), 10)
	}
	if j.Kind == JobReply {
		k += ":" + string(j.Situation)
	}
	return k
}

// Replies returns the situations of a reply job's replies in the order
// they are sent: First, if set, then Situation.
func (j Job) Replies() []bd.Situation {
	if j.First == "" {
		return []bd.Situation{j.Situation}
	}
	return []bd.Situation{j.First, j.Situation}
}

// Keep returns the reply job j with only the replies whose claim was taken
// just now (claimed reports it for each of j.Replies()), and false when
// none is left. Stores use it to store a reply job with its claims.
func (j Job) Keep(claimed func(bd.Situation) bool) (Job, bool) {
	first := j.First != "" && claimed(j.First)
	switch {
	case claimed(j.Situation):
		if !first {
			j.First = ""
		}
		return j, true
	case first:
		j.Situation, j.First = j.First, ""
		return j, true
	}
	return j, false
}

// Unique reports whether a job of this kind is deduplicated by its key.
func (j Job) Unique() bool { return j.Kind != JobDrain }

// Check returns an error wrapping ErrInvalid that names what is wrong with a
// job being submitted, or nil.
func (j Job) Check() error {
	switch {
	case !j.Kind.Valid():
		return fmt.Errorf("%w: job of unknown kind %q", ErrInvalid, j.Kind)
	case j.Account == "":
		return fmt.Errorf("%w: %s job: account is empty", ErrInvalid, j.Kind)
	case j.Dialog.Account != "" && j.Dialog.Account != j.Account:
		return fmt.Errorf("%w: %s job of account %q carries a dialog of account %q", ErrInvalid, j.Kind, j.Account, j.Dialog.Account)
	case j.Kind != JobDrain && j.Dialog.ID <= 0:
		return fmt.Errorf("%w: %s job: dialog id must be positive, got %d", ErrInvalid, j.Kind, j.Dialog.ID)
	case j.Kind == JobReply && j.Situation == "":
		return fmt.Errorf("%w: reply job of dialog %d: situation is empty", ErrInvalid, j.Dialog.ID)
	case j.First != "" && j.Kind != JobReply:
		return fmt.Errorf("%w: %s job: only a reply job has a first situation, got %q", ErrInvalid, j.Key(), j.First)
	case j.First != "" && j.First == j.Situation:
		return fmt.Errorf("%w: reply job of dialog %d: first situation %q repeats its situation", ErrInvalid, j.Dialog.ID, j.First)
	case j.Kind == JobMove && j.Manager <= 0:
		return fmt.Errorf("%w: move job of dialog %d: manager id must be positive, got %d", ErrInvalid, j.Dialog.ID, j.Manager)
	case j.Delay < 0:
		return fmt.Errorf("%w: %s job: negative delay %s", ErrInvalid, j.Key(), j.Delay)
	}
	return nil
}

// CheckJobs checks every job as [Job.Check] does and joins the problems.
func CheckJobs(jobs []Job) error {
	var errs []error
	for _, j := range jobs {
		if err := j.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// JobHandler does one job. A nil error completes it. Any other error makes
// the store try it again later (after WorkOptions.Backoff, or after the
// delay of a [*RetryAfterError]), until its attempts are spent: then it
// becomes a dead letter. A handler must be safe for concurrent use; it may
// be given the same job again after a crash, so its work must be
// idempotent. When Work stops, the handlers' context is canceled: a handler
// that then returns an error matching context.Canceled (or
// DeadlineExceeded) is taken to have been cut short before any effect,
// and its attempt does not count; one whose attempt may have had an effect
// returns another error, so that the next attempt's Attempt tells it.
type JobHandler func(ctx context.Context, j Job) error

// RetryAfterError asks for the job to be tried again after Delay, e.g. what
// a server's Retry-After said. The attempt still counts.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.Delay)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// Defaults of [WorkOptions].
const (
	// DefaultWorkers suits 2 cores and a MessageGateway 20–100 ms away:
	// workers mostly wait on the network.
	DefaultWorkers = 32
	// DefaultMaxAttempts with DefaultBackoff retries a job for about an hour.
	DefaultMaxAttempts = 20
)

// WorkOptions tune [Jobs.Work]. The zero value means the defaults.
type WorkOptions struct {
	// Accounts limits the worker to the jobs of these accounts; empty means
	// every account.
	Accounts []bd.AccountID
	// Workers is how many jobs run at once in this worker; 0 means
	// DefaultWorkers.
	Workers int
	// MaxAttempts is how many times a job is tried before it becomes a dead
	// letter; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Backoff is the wait before the next try after a failed attempt
	// (1 after the first); nil means DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// Member, when set, names these workers after the process's member in
	// [Leases] (LeaseRound.Member). Once that member lapses (its process
	// died), a store that can hands the jobs these workers were running
	// to other workers at the next lease round, instead of after the job
	// engine's own timeout for stuck jobs. At most one Work call at a time
	// may use a member name.
	Member string
}

// Normalized returns o with the defaults filled in, or an error naming a
// negative count.
func (o WorkOptions) Normalized() (WorkOptions, error) {
	switch {
	case o.Workers < 0:
		return o, fmt.Errorf("%w: WorkOptions.Workers must not be negative, got %d", ErrInvalid, o.Workers)
	case o.MaxAttempts < 0:
		return o, fmt.Errorf("%w: WorkOptions.MaxAttempts must not be negative, got %d", ErrInvalid, o.MaxAttempts)
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Backoff == nil {
		o.Backoff = DefaultBackoff
	}
	return o, nil
}

// Handles reports whether the options take jobs of the account.
func (o WorkOptions) Handles(account bd.AccountID) bool {
	if len(o.Accounts) == 0 {
		return true
	}
	for _, a := range o.Accounts {
		if a == account {
			return true
		}
	}
	return false
}

// DefaultBackoff waits 50 ms after the first failed attempt, doubling up to
// 5 minutes, with ±25% jitter so that jobs failing together spread out.
func DefaultBackoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(max(attempt-1, 0), 13)
	d = min(d, 5*time.Minute)
	return d - d/4 + rand.N(d/2+1)
}

// DeadJob is a job past its retry budget.
type DeadJob struct {
	Job
	// Err is the last attempt's error.
	Err string
	// At is when it was given up.
	At time.Time
}

// Jobs keeps and runs the work events cause: the durable work pipeline.
//
// Submit stores jobs; the store-changing methods that take jobs too
// ([Events.ClaimEvent], [Assignments.Assign] and Record through
// Assignment.Then, [Assignments.Close], [Queue.Enqueue]) store them in the
// same atomic step as their change, only when the change is made. Work runs
// them with a handler, in this process and in every other process working
// the same store: a job is done by one worker at a time, and a job whose
// worker died is taken up again.
type Jobs interface {
	// Submit stores jobs, dropping the duplicates the [Job] doc describes.
	// A job that fails [Job.Check] fails the whole call with ErrInvalid and
	// nothing is stored.
	Submit(ctx context.Context, jobs ...Job) error
	// Work runs h on the jobs that are due until ctx ends, then waits for
	// the running handlers (whose context is canceled) and returns
	// ctx.Err(). Several Work calls, in one process or many, may share a
	// store; each takes the jobs of its WorkOptions.Accounts.
	Work(ctx context.Context, h JobHandler, o WorkOptions) error
	// DeadJobs returns up to limit dead letters of the account, newest
	// first.
	DeadJobs(ctx context.Context, account bd.AccountID, limit int) ([]DeadJob, error)
	// PendingJobs counts the account's jobs not finished yet: waiting,
	// running or waiting to be retried.
	PendingJobs(ctx context.Context, account bd.AccountID) (int, error)
}

// DecisionReader is implemented by a store that reads what a decision
// needs in one round trip: the loads of the managers (as
// [Assignments.Loads], into dst), the number of dialogs waiting in the
// account's queue (as [Queue.QueueLen]) and the customer's last manager (as
// [Assignments.LastManager]; zero when customer is zero or was never
// assigned). A Distributor uses it when its store has it, and the three
// reads otherwise.
type DecisionReader interface {
	ReadDecision(ctx context.Context, account bd.AccountID, managers []bd.ManagerID, customer bd.CustomerID, dst []Load) (DecisionReads, error)
}

// DecisionReads is what [DecisionReader.ReadDecision] read.
type DecisionReads struct {
	Loads       []Load
	Waiting     int
	LastManager bd.ManagerID
}

// IdleWaiter is implemented by a [Jobs] store that can tell without polling
// when an account has no job left: WaitIdle returns nil once PendingJobs of
// the account would be 0 (at once if it is), or ctx's error. Callers that
// wait for the jobs to be done (a flush, a test) use it when the store has
// it and poll PendingJobs otherwise.
type IdleWaiter interface {
	WaitIdle(ctx context.Context, account bd.AccountID) error
}

// KeepWorking runs j.Work until ctx ends, starting it again whenever it
// stops with an error (e.g. the database was unreachable as it started),
// after a pause that doubles up to a minute and falls back to 100 ms once
// a run lasted a minute. stopped, when not nil, hears of each error with
// the pause before the next start. It returns when ctx ends.
func KeepWorking(ctx context.Context, j Jobs, h JobHandler, o WorkOptions, stopped func(err error, pause time.Duration)) {
	restart.Loop(ctx, 100*time.Millisecond, func(ctx context.Context) error { return j.Work(ctx, h, o) }, stopped)
}
