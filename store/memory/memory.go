// Package memory is a [store.Store] that keeps everything in the memory of
// one process.
//
// IT IS NOT DURABLE AND NOT SHARED. Everything is lost when the process
// exits, and two processes (two bot replicas) using memory stores know
// nothing of each other: each would enforce capacities, claim replies and
// claim events on its own, so the invariants of the distributor hold only
// within one process. Use it for tests, demos and single-process tools;
// production deployments want store/sqlstore.
//
// Within one process it keeps the whole [store.Store] contract and is safe
// for concurrent use. Each account has its own lock, so accounts never wait
// for one another; every operation runs in time proportional to the data it
// touches and never blocks on anything but that lock, so the contexts the
// methods take are not consulted.
//
// Every method taking an account fails with [store.ErrInvalid] when the
// account id is empty, as do the requests the method docs name.
//
// Values are copied in and out: changing a slice or map after passing it to
// the store, or after receiving it from the store, never changes what the
// store holds.
//
// Memory grows with use: bindings, each customer's last manager and a row
// for every manager ever given a dialog are kept for the store's lifetime.
// Released dialogs and dequeued entries are dropped at once; event claims,
// and closed dialogs with their reply claims, by [Store.PruneEvents]. Reply
// claims of dialogs that never close are kept.
package memory

import (
	"fmt"
	"math"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// Store keeps the distributor's state in memory. Create it with [New]; the
// zero value is ready to use as well. A Store must not be copied after first
// use. All methods are safe for concurrent use.
type Store struct {
	// shards maps a bd.AccountID to its *shard. A shard is created by the
	// first write to the account and never removed.
	shards sync.Map

	accountsMu sync.RWMutex
	accounts   map[bd.AccountID]bd.Account

	jobs   jobs
	leases leases
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{} }

// shard is everything the store keeps for one account, under one lock but
// for the event claims and the customers' last managers, which have their
// own, and the slots of the loads plans, read without it.
//
// The lock is a plain mutex, for readers too: every section under it is
// short, and a mutex spins a moment before it parks, where a reader-writer
// lock's readers and writers park at once whenever they meet. With many
// workers on few cores each such park became a convoy on the account.
type shard struct {
	mu sync.Mutex

	// Assignments: the responsible of each dialog, and a dense table of the
	// managers ever assigned a dialog, found through index.
	resp     map[bd.DialogID]bd.Responsible
	index    map[bd.ManagerID]int
	managers []managerState
	// last maps a customer to the manager last given one of their dialogs.
	last lastManagers
	// plans speed up Loads over lists of managers asked for before.
	plans loadsPlans

	queue queue
	// dialogs holds what is kept of a dialog beyond its responsible: when
	// it closed, and its claimed replies of the built-in situations. One
	// map, not one per kind of record, so that the store calls of a
	// dialog's life find its entry where the previous one left it.
	dialogs      map[bd.DialogID]dialogRecord
	otherReplies map[replyKey]struct{}
	events       eventClaims
	bindings     map[bd.CustomerID]store.Binding
}

// dialogRecord is a shard's entry for a dialog in dialogs. It holds no
// pointer (the time is in Unix nanoseconds), so that the collector skips
// the table, which keeps every closed dialog until it is pruned.
type dialogRecord struct {
	closedAt int64 // when the dialog closed, if closed, in Unix nanoseconds
	closed   bool
	replies  replyBits
}

// lastManagers maps customers to the manager last given one of their
// dialogs. It has a lock of its own, taken inside the shard's or alone:
// the table grows with every new customer, and looking one up, seldom in
// the processor's caches, should not hold up the account.
type lastManagers struct {
	mu sync.Mutex
	m  map[bd.CustomerID]bd.ManagerID
}

// get returns the last manager of c.
func (l *lastManagers) get(c bd.CustomerID) (bd.ManagerID, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.m[c]
	return m, ok
}

// set makes m the last manager of c.
func (l *lastManagers) set(c bd.CustomerID, m bd.ManagerID) {
	l.mu.Lock()
	l.m[c] = m
	l.mu.Unlock()
}

// unixNanos returns t in Unix nanoseconds, clamped to what an int64 holds
// (years 1678 to 2262), where time.Time.UnixNano is undefined.
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

// isClosed reports whether the dialog closed. Callers hold sh.mu.
func (sh *shard) isClosed(d bd.DialogID) bool {
	r, ok := sh.dialogs[d]
	return ok && r.closed
}

func newShard() *shard {
	return &shard{
		resp:         make(map[bd.DialogID]bd.Responsible),
		index:        make(map[bd.ManagerID]int),
		last:         lastManagers{m: make(map[bd.CustomerID]bd.ManagerID)},
		queue:        queue{pos: make(map[bd.DialogID]queueKey)},
		dialogs:      make(map[bd.DialogID]dialogRecord),
		otherReplies: make(map[replyKey]struct{}),
		events:       newEventClaims(),
		bindings:     make(map[bd.CustomerID]store.Binding),
	}
}

// shardOf returns the account's shard, or nil when the account has none yet.
func (s *Store) shardOf(acc bd.AccountID) *shard {
	if v, ok := s.shards.Load(acc); ok {
		return v.(*shard)
	}
	return nil
}

// shardFor returns the account's shard, creating it if needed.
func (s *Store) shardFor(acc bd.AccountID) *shard {
	if v, ok := s.shards.Load(acc); ok {
		return v.(*shard)
	}
	v, _ := s.shards.LoadOrStore(acc, newShard())
	return v.(*shard)
}

// invalid returns an error matching store.ErrInvalid that names the problem.
func invalid(op, format string, args ...any) error {
	return fmt.Errorf("%w: memory: %s: %s", store.ErrInvalid, op, fmt.Sprintf(format, args...))
}

// checkAccount rejects the empty account id.
func checkAccount(op string, acc bd.AccountID) error {
	if acc == "" {
		return invalid(op, "account is empty")
	}
	return nil
}

// checkDialog rejects the empty account id and a non-positive dialog id.
func checkDialog(op string, acc bd.AccountID, d bd.DialogID) error {
	if acc == "" {
		return invalid(op, "account is empty")
	}
	if d <= 0 {
		return invalid(op, "dialog id must be positive, got %d", d)
	}
	return nil
}
