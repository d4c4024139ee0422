// Package store defines what the distributor keeps: small role interfaces,
// the records they exchange and the sentinel errors callers branch on.
//
// A consumer asks only for the role it uses ([Assignments], [Queue],
// [Replies], [Events], [Bindings], [Accounts], [Jobs]); [Store] composes
// them all.
// Implementations live in subpackages: store/memory for one process and
// tests, store/sqlstore for SQLite and PostgreSQL. Every implementation must
// pass the public conformance suite store/storetest.
//
// All methods are safe for concurrent use, take a context first and may
// block on I/O. Errors that callers branch on are the sentinels below,
// possibly wrapped: test them with errors.Is.
package store

import (
	"context"
	"errors"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// Sentinel errors. Implementations wrap them with detail; callers use errors.Is.
var (
	// ErrNotFound: the record asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrCapacity: the manager already holds as many open dialogs as their capacity.
	ErrCapacity = errors.New("store: manager at capacity")
	// ErrAssigned: the dialog already has a responsible.
	ErrAssigned = errors.New("store: dialog already assigned")
	// ErrClosed: the dialog was closed; it cannot be assigned or queued.
	ErrClosed = errors.New("store: dialog closed")
	// ErrInvalid: the request itself is malformed (zero ids, negative capacity, ...).
	ErrInvalid = errors.New("store: invalid request")
	// ErrBusy: an Assignment with NoWait found another assignment to the
	// same manager in progress; nothing changed, and the manager may be
	// free a moment later.
	ErrBusy = errors.New("store: manager's load is being changed by another assignment")
)

// Assignment asks for a dialog to be given to a responsible.
type Assignment struct {
	Account  bd.AccountID
	Dialog   bd.DialogID
	Customer bd.CustomerID
	To       bd.Responsible
	// From, when not zero, makes Assign a move: the dialog must have exactly
	// this responsible (otherwise ErrAssigned), who loses it to To in the
	// same atomic step. Reassignment uses it.
	From bd.Responsible
	// Capacity is the most open dialogs the manager may hold, counting this
	// one. Ignored when To is a bot.
	Capacity int
	At       time.Time
	// Then are jobs stored in the same atomic step as the assignment, only
	// when it is made (see [Jobs]).
	Then []Job
	// NoWait asks a store whose assignments to one manager wait for one
	// another (row locks of a shared database) to refuse a new assignment
	// with ErrBusy instead of waiting, so that the caller can give the
	// dialog to someone else. Stores that never wait ignore it; moves
	// (From set) always wait.
	NoWait bool
}

// Load is how busy a manager is.
type Load struct {
	Manager bd.ManagerID
	// Open counts the dialogs the manager is responsible for now.
	Open int
	// LastAssignedAt is when the manager last received a dialog; zero if never.
	LastAssignedAt time.Time
}

// Assignments keeps who is responsible for which dialog and each manager's load.
//
// Invariants every implementation keeps, also across processes sharing one
// database: a dialog has at most one responsible; Assign never lets a manager
// hold more open dialogs than the Assignment's Capacity (the check and the
// write are one atomic step, never a read followed by a write); Release and
// Record keep loads equal to the number of dialogs each manager holds.
type Assignments interface {
	// Assign makes a.To responsible for a.Dialog if the dialog has no
	// responsible and, for a manager, they hold fewer than a.Capacity open
	// dialogs. It returns ErrAssigned or ErrCapacity otherwise, and changes
	// nothing then; ErrClosed for a closed dialog. A manager's
	// LastAssignedAt becomes a.At. With a.From set, the dialog must be held
	// by a.From instead of nobody, and moves to a.To in the same step. With
	// a.NoWait, a new assignment (a.From zero) that would wait for another
	// assignment to a.To in progress returns ErrBusy instead, changing
	// nothing; only stores whose assignments wait on one another do so
	// (see [Assignment].NoWait).
	Assign(ctx context.Context, a Assignment) error
	// Record sets the responsible MessageGateway reports (a person assigned
	// the dialog in the MG interface), without a capacity check: the store
	// converges to MG's truth. The previous responsible's load is released.
	// A zero a.To removes the responsible. It returns the previous
	// responsible. Record does not change anyone's LastAssignedAt (catching
	// up with MG must not skew round robin); a.From is ignored. On a closed
	// dialog it returns ErrClosed.
	Record(ctx context.Context, a Assignment) (prev bd.Responsible, err error)
	// Release removes the dialog's responsible and frees their load. It
	// returns the responsible it removed, or ErrNotFound if there was none.
	Release(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bd.Responsible, error)
	// Responsible returns the dialog's responsible, or ErrNotFound.
	Responsible(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bd.Responsible, error)
	// Loads returns the load of each manager, in the order asked; a manager
	// with no record has a zero Load (with Manager set). The result is
	// written into dst's backing array when it is large enough (dst may be
	// nil), so a caller deciding often can reuse one buffer.
	Loads(ctx context.Context, account bd.AccountID, managers []bd.ManagerID, dst []Load) ([]Load, error)
	// Close marks the dialog closed, in one atomic step: its responsible (if
	// any) is removed and their load freed, it leaves the waiting queue, and
	// from then on Assign, Record and Enqueue of it return ErrClosed. It
	// returns the responsible it removed (zero if none). Closing a closed or
	// unknown dialog is not an error. PruneEvents forgets closed dialogs.
	// The jobs in then are stored in the same atomic step.
	Close(ctx context.Context, account bd.AccountID, dialog bd.DialogID, at time.Time, then ...Job) (prev bd.Responsible, err error)
	// DialogsOf returns the dialogs manager m is responsible for, in
	// ascending id order.
	DialogsOf(ctx context.Context, account bd.AccountID, m bd.ManagerID) ([]bd.DialogID, error)
	// LastManager returns the manager most recently assigned a dialog of the
	// customer (by Assign or Record), or ErrNotFound.
	LastManager(ctx context.Context, account bd.AccountID, customer bd.CustomerID) (bd.ManagerID, error)
}

// Waiting is a dialog in the waiting queue.
type Waiting struct {
	Dialog bd.Dialog
	// Reason is the situation that put the dialog in the queue.
	Reason bd.Situation
	// Priority orders the queue: higher first.
	Priority int
	// Since orders dialogs of equal priority: oldest first, then by dialog id.
	Since time.Time
}

// Queue keeps the dialogs waiting for a manager, per account.
type Queue interface {
	// Enqueue adds w unless its dialog is already waiting; added reports
	// whether it was added. A dialog waits at most once. A closed dialog is
	// refused with ErrClosed. The jobs in then are stored in the same atomic
	// step, whether the dialog was added or was waiting already; not when
	// the call fails.
	Enqueue(ctx context.Context, w Waiting, then ...Job) (added bool, err error)
	// Waiting returns up to limit waiting dialogs of the account in queue
	// order: higher Priority first, then older Since, then lower dialog id.
	// A zero limit returns nothing; a negative one is ErrInvalid.
	Waiting(ctx context.Context, account bd.AccountID, limit int) ([]Waiting, error)
	// Dequeue removes the dialog from the queue, or returns ErrNotFound.
	Dequeue(ctx context.Context, account bd.AccountID, dialog bd.DialogID) error
	// Waits reports whether the dialog is in the queue.
	Waits(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bool, error)
	// QueueLen returns how many dialogs of the account wait.
	QueueLen(ctx context.Context, account bd.AccountID) (int, error)
}

// Replies records which automatic replies were sent, so that each
// (dialog, situation) gets at most one, also across restarts and processes.
type Replies interface {
	// ClaimReply reserves the reply for (dialog, situation): true means the
	// caller is the first and should send it. A stored JobReply holds the
	// same claim.
	ClaimReply(ctx context.Context, account bd.AccountID, dialog bd.DialogID, s bd.Situation) (bool, error)
	// ReleaseReply drops a claim whose sending failed, so a later attempt may
	// send it. Releasing an unclaimed reply is not an error.
	ReleaseReply(ctx context.Context, account bd.AccountID, dialog bd.DialogID, s bd.Situation) error
}

// Events records incoming events already acted on, so that an event
// delivered twice, or to two processes, is acted on once.
type Events interface {
	// ClaimEvent reserves the event key: true means the caller is the first.
	// The first caller's jobs in then are stored in the same atomic step,
	// so an event counts as handled only once its work is stored.
	ClaimEvent(ctx context.Context, account bd.AccountID, key string, at time.Time, then ...Job) (bool, error)
	// PruneEvents forgets event claims made before the given time, and
	// dialogs closed before it (their closed mark and reply claims), and
	// returns how many event claims it forgot.
	PruneEvents(ctx context.Context, before time.Time) (int, error)
}

// Contended is implemented by a store whose assignments to one manager
// wait for one another while in progress (row locks of a database that
// several workers and processes share) and that honours
// [Assignment.NoWait]. Contended reports whether that is so for this
// store. A Distributor over such a store spreads concurrent decisions:
// besides the store's ErrBusy, a manager another worker of its process is
// reserving with at that moment is passed over without asking the store.
type Contended interface {
	Contended() bool
}

// PruneEvery is how often a host that sweeps often still prunes event
// records (Events.PruneEvents): pruning is housekeeping over every account
// of the store, and records kept a minute longer cost nothing.
const PruneEvery = time.Minute

// Binding links a MessageGateway customer to a retailCRM customer.
type Binding struct {
	Account     bd.AccountID
	Customer    bd.CustomerID
	CRMCustomer int64
	// Rule tells how the link was found: "linked", "phone", "email", "created".
	Rule string
	At   time.Time
	// Profile is the customer's retailCRM profile as last read (routing's
	// cache of it); its ReadAt is zero when it was never read. A binding
	// saved by the binder keeps the profile stored before, unless its
	// CRMCustomer changed.
	Profile bd.CustomerProfile
}

// Bindings keeps customer bindings.
type Bindings interface {
	// Binding returns the customer's binding, or ErrNotFound.
	Binding(ctx context.Context, account bd.AccountID, customer bd.CustomerID) (Binding, error)
	// SaveBinding stores b, replacing an earlier binding of the same customer.
	// A b.Profile with a zero ReadAt carries no profile: the profile stored
	// before is kept when the earlier binding has the same CRMCustomer, and
	// dropped (a zero Profile) when the CRMCustomer changed, since it
	// described another retailCRM customer. A b.Profile with a non-zero
	// ReadAt replaces the stored one. The keep-or-drop decision and the
	// write are one atomic step. Profile slices are stored in their order;
	// empty ones read back as nil.
	SaveBinding(ctx context.Context, b Binding) error
}

// ProfileForgetter is implemented by a store that keeps profiles with
// bindings (Binding.Profile) and can drop them: when a retailCRM card
// changes (its personal manager, segments or tags), every binding to that
// retailCRM customer loses its profile, so that the next decision reads
// the card again.
type ProfileForgetter interface {
	// ForgetProfiles drops the profiles of the account's bindings to the
	// retailCRM customer; none bound to it is no error.
	ForgetProfiles(ctx context.Context, account bd.AccountID, crmCustomer int64) error
}

// Accounts keeps connected accounts and their settings.
type Accounts interface {
	// SaveAccount creates or replaces the account.
	SaveAccount(ctx context.Context, a bd.Account) error
	// Account returns the account, or ErrNotFound.
	Account(ctx context.Context, id bd.AccountID) (bd.Account, error)
	// Accounts returns every account, ordered by id.
	Accounts(ctx context.Context) ([]bd.Account, error)
	// SaveSettings replaces the settings of an existing account, or returns
	// ErrNotFound. Callers validate first; the store keeps what it is given.
	SaveSettings(ctx context.Context, id bd.AccountID, s bd.Settings) error
}

// Store is every role at once.
type Store interface {
	Assignments
	Queue
	Replies
	Events
	Bindings
	Accounts
	Jobs
}
