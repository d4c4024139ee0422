package memory

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// jobs is the in-process equivalent of the SQL stores' job engine: the same
// uniqueness, retries with backoff, dead letters and routing by account,
// without durability (a process that exits loses its jobs, as it loses
// everything else the memory store keeps).
//
// One lock guards it all. A dialog's jobs run one at a time, in the order
// they became due: a job due while another of its dialog is ready or
// running waits in the dialog's chain, so that the ready list holds only
// jobs a worker can start at once and taking one is O(1) (past the jobs of
// accounts the worker does not handle). A worker that finishes a job takes
// the next under the same lock hold; idle workers sleep until a job they
// handle becomes ready. Delayed jobs wait in a heap that one timer watches.
//
// Waking is paced as the Go scheduler paces its threads: up to GOMAXPROCS
// workers of a Work are woken at once, which is all the processors can
// run; the others are woken only for workers that stall, i.e. stay in one
// job (waiting for MessageGateway, say) for a whole stallAfter while jobs
// wait. Waking all of them for a burst of jobs that take microseconds of
// processor each would have them queue on the locks instead.
type jobs struct {
	mu     sync.Mutex
	nextID int64
	// ready holds the jobs due now that no other job of their dialog
	// holds up, oldest first, from ready[head] on.
	ready []*memJob
	head  int
	// delayed holds the jobs due later, soonest first; timer fires at
	// timerAt (zero when it is not armed) to make them ready.
	delayed delayHeap
	timer   *time.Timer
	timerAt time.Time
	// accounts holds each account's jobs; an entry is never removed.
	accounts map[bd.AccountID]*jobAccount
	// works are the running Work calls.
	works []*work
	// free recycles the records of finished jobs.
	free []*memJob
	// owed lists the works granted a wake-up under the lock, one entry per
	// worker to wake once it is released (see unlock).
	owed []*work
}

// maxFree bounds the finished job records kept for reuse.
const maxFree = 1024

// jobAccount is what the engine keeps for one account.
type jobAccount struct {
	id bd.AccountID
	// pending counts the jobs not finished yet: ready, chained, running or
	// delayed.
	pending int
	// unique holds the unique jobs not finished yet.
	unique map[uniqueKey]struct{}
	// dialogs holds the dialogs with a job ready or running, each with the
	// jobs of the dialog that became due since, oldest first.
	dialogs map[bd.DialogID]chain
	dead    []store.DeadJob
	// idle, when set, is closed once pending drops to 0 (see WaitIdle).
	idle chan struct{}
}

// chain links the jobs waiting for their dialog's ready or running job.
type chain struct{ first, last *memJob }

type memJob struct {
	job  store.Job
	due  time.Time
	acct *jobAccount
	next *memJob // in the dialog's chain
}

// uniqueKey identifies a unique job within its account.
type uniqueKey struct {
	dialog bd.DialogID
	kind   store.JobKind
}

type work struct {
	opts store.WorkOptions
	// wake holds one token per sleeping worker told that a job may be
	// ready for it; idle counts the workers asleep or about to be, woken
	// or not, and tokens the wake-ups granted and not yet taken (both
	// under jobs.mu).
	wake   chan struct{}
	idle   int
	tokens int
	// eager is how many workers run before more are woken only for
	// stalled ones (GOMAXPROCS when Work began).
	eager int
	// workers holds each worker's progress, which the stall watch reads.
	workers []workerState
	// watch fires stallAfter after it was armed (watching is then set) to
	// wake workers in place of those that stalled meanwhile; it is made
	// on the first arming.
	watch    *time.Timer
	watching bool
}

// workerState is a worker's progress, under jobs.mu.
type workerState struct {
	busy bool   // in a job's handler
	jobs uint64 // jobs taken so far
	seen uint64 // jobs when the stall watch was armed
}

// stallAfter is how long a worker stays in one job, while jobs wait for a
// worker, before another is woken in its place.
const stallAfter = 100 * time.Microsecond

// delayHeap orders delayed jobs by due time.
type delayHeap []*memJob

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(*memJob)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return x
}

// submit stores jobs that passed store.CheckJobs. Reply jobs take their
// reply claim first, under the account's lock; a claimed reply is dropped.
func (s *Store) submit(jobs []store.Job) { s.submitIf(jobs, true) }

// submitIf is submit for the jobs of a change that found dialogs waiting
// (waiting true) or none: jobs marked IfWaiting are dropped in the latter
// case.
func (s *Store) submitIf(jobs []store.Job, waiting bool) {
	if len(jobs) == 0 {
		return
	}
	var now time.Time
	for i := range jobs {
		j := &jobs[i]
		if j.IfWaiting && !waiting {
			continue
		}
		if j.Kind == store.JobReply {
			kept, ok := s.keepReply(*j)
			if !ok {
				continue
			}
			j = &kept // the caller's slice stays as it was
		}
		if j.Delay > 0 && now.IsZero() {
			now = time.Now()
		}
		s.jobs.add(j, now)
	}
}

// account returns the engine's record of acc, adding it if needed.
func (e *jobs) account(acc bd.AccountID) *jobAccount {
	if a, ok := e.accounts[acc]; ok {
		return a
	}
	if e.accounts == nil {
		e.accounts = make(map[bd.AccountID]*jobAccount)
	}
	a := &jobAccount{id: acc, unique: make(map[uniqueKey]struct{}), dialogs: make(map[bd.DialogID]chain)}
	e.accounts[acc] = a
	return a
}

// add stores j; now is the time its Delay counts from (unused when it has
// none).
func (e *jobs) add(j *store.Job, now time.Time) {
	e.mu.Lock()
	defer e.unlock()
	a := e.account(j.Account)
	if j.Unique() && j.Kind != store.JobReply {
		k := uniqueKey{j.Dialog.ID, j.Kind}
		if _, dup := a.unique[k]; dup {
			return
		}
		a.unique[k] = struct{}{}
	}
	e.nextID++
	mj := e.newJob()
	mj.job, mj.acct = *j, a
	mj.job.ID, mj.job.Attempt = e.nextID, 0
	if mj.job.Dialog.Account == "" {
		mj.job.Dialog.Account = j.Account
	}
	a.pending++
	if j.Delay > 0 {
		mj.due = now.Add(j.Delay)
		e.delay(mj)
		return
	}
	e.due(mj, nil)
}

func (e *jobs) newJob() *memJob {
	if n := len(e.free); n > 0 {
		mj := e.free[n-1]
		e.free[n-1] = nil
		e.free = e.free[:n-1]
		return mj
	}
	return new(memJob)
}

// recycle keeps the record of a finished job for reuse.
func (e *jobs) recycle(mj *memJob) {
	*mj = memJob{}
	if len(e.free) < maxFree {
		e.free = append(e.free, mj)
	}
}

// due makes a job that is due ready, or chains it behind the job of its
// dialog that is ready or running. The works with sleeping workers that
// handle it are woken, but for self, whose worker takes a job next anyway.
func (e *jobs) due(mj *memJob, self *work) {
	if mj.job.Kind != store.JobDrain {
		a, d := mj.acct, mj.job.Dialog.ID
		if c, held := a.dialogs[d]; held {
			if c.last == nil {
				c.first = mj
			} else {
				c.last.next = mj
			}
			c.last = mj
			a.dialogs[d] = c
			return
		}
		a.dialogs[d] = chain{}
	}
	e.ready = append(e.ready, mj)
	e.wake(mj.acct.id, self)
}

// wake tells every Work but self that handles acc that a job is ready.
func (e *jobs) wake(acc bd.AccountID, self *work) {
	for _, w := range e.works {
		if w != self && w.opts.Handles(acc) {
			e.nudge(w)
		}
	}
}

// nudge wakes a sleeping worker of w for a job that became ready, if fewer
// than w.eager are awake; otherwise the stall watch sees to it.
func (e *jobs) nudge(w *work) {
	asleep := w.idle - w.tokens
	if asleep <= 0 {
		return
	}
	if len(w.workers)-asleep < w.eager {
		e.grant(w)
		return
	}
	if !w.watching {
		e.watchStalls(w)
	}
}

// watchStalls starts w's stall watch.
func (e *jobs) watchStalls(w *work) {
	for i := range w.workers {
		w.workers[i].seen = w.workers[i].jobs
	}
	w.watching = true
	if w.watch == nil {
		w.watch = time.AfterFunc(stallAfter, func() { e.stalled(w) })
	} else {
		w.watch.Reset(stallAfter)
	}
}

// stalled is w's stall watch firing. A worker that stayed in one job since
// the watch was armed counts as stalled; sleeping workers are woken until
// w.eager awake ones are not, one per waiting job at most. The watch goes
// on while jobs still wait.
func (e *jobs) stalled(w *work) {
	e.mu.Lock()
	defer e.unlock()
	if !w.watching {
		return
	}
	w.watching = false
	asleep := w.idle - w.tokens
	if asleep <= 0 {
		return
	}
	running := 0 // awake and not stalled
	for _, ws := range w.workers {
		if !ws.busy || ws.jobs != ws.seen {
			running++
		}
	}
	running -= asleep // sleepers are not busy: they were counted above
	waiting := e.readyFor(w, asleep+1)
	n := min(waiting, asleep, max(w.eager-running, 0))
	for range n {
		e.grant(w)
	}
	if waiting > n {
		e.watchStalls(w)
	}
}

// readyFor counts the ready jobs w handles, up to limit.
func (e *jobs) readyFor(w *work, limit int) int {
	n := 0
	for _, mj := range e.ready[e.head:] {
		if n == limit {
			break
		}
		if w.opts.Handles(mj.job.Account) {
			n++
		}
	}
	return n
}

// release lets the next job of mj's dialog, if any, become ready; the
// dialog is free otherwise.
func (e *jobs) release(mj *memJob, self *work) {
	if mj.job.Kind == store.JobDrain {
		return
	}
	a, d := mj.acct, mj.job.Dialog.ID
	c, held := a.dialogs[d]
	if !held {
		return
	}
	next := c.first
	if next == nil {
		delete(a.dialogs, d)
		return
	}
	if c.first = next.next; c.first == nil {
		c.last = nil
	}
	next.next = nil
	a.dialogs[d] = c
	e.ready = append(e.ready, next)
	e.wake(a.id, self)
}

// delay puts mj in the delayed heap.
func (e *jobs) delay(mj *memJob) {
	heap.Push(&e.delayed, mj)
	e.arm()
}

// arm makes sure the timer fires when the soonest delayed job is due.
func (e *jobs) arm() {
	if len(e.delayed) == 0 {
		return
	}
	first := e.delayed[0].due
	if !e.timerAt.IsZero() && !first.Before(e.timerAt) {
		return
	}
	wait := max(time.Until(first), 0)
	if e.timer == nil {
		e.timer = time.AfterFunc(wait, e.fire)
	} else {
		e.timer.Reset(wait)
	}
	e.timerAt = first
}

// fire makes the delayed jobs that are due ready and arms the timer for
// the next.
func (e *jobs) fire() {
	e.mu.Lock()
	defer e.unlock()
	e.timerAt = time.Time{}
	e.promote(time.Now(), nil)
	e.arm()
}

// promote makes the delayed jobs due by now ready.
func (e *jobs) promote(now time.Time, self *work) {
	for len(e.delayed) > 0 && !e.delayed[0].due.After(now) {
		e.due(heap.Pop(&e.delayed).(*memJob), self)
	}
}

// take returns the first ready job w handles, or nil.
func (e *jobs) take(w *work) *memJob {
	if len(e.delayed) > 0 {
		e.promote(time.Now(), w)
	}
	for i := e.head; i < len(e.ready); i++ {
		mj := e.ready[i]
		if !w.opts.Handles(mj.job.Account) {
			continue
		}
		if i == e.head {
			e.ready[i] = nil
			e.head++
		} else {
			e.ready = slices.Delete(e.ready, i, i+1)
		}
		if e.head == len(e.ready) {
			e.ready, e.head = e.ready[:0], 0
		} else if e.head >= 1024 && 2*e.head >= len(e.ready) {
			n := copy(e.ready, e.ready[e.head:])
			clear(e.ready[n:])
			e.ready, e.head = e.ready[:n], 0
		}
		return mj
	}
	return nil
}

// finish records the outcome of an attempt: done, retried later, put back
// untouched (the worker stopped), or given up as a dead letter.
func (e *jobs) finish(w *work, mj *memJob, err error, stopped bool) {
	j := &mj.job
	switch {
	case err == nil:
		e.release(mj, w)
		e.done(mj)
	case stopped:
		j.Attempt-- // the attempt was cut short, not failed
		e.ready = append(e.ready, mj)
		e.wake(j.Account, w)
	case j.Attempt >= w.opts.MaxAttempts:
		a := mj.acct
		a.dead = append(a.dead, store.DeadJob{Job: *j, Err: err.Error(), At: time.Now()})
		e.release(mj, w)
		e.done(mj)
	default:
		delay := w.opts.Backoff(j.Attempt)
		if ra, ok := errors.AsType[*store.RetryAfterError](err); ok && ra.Delay > 0 {
			delay = ra.Delay
		}
		e.release(mj, w)
		mj.due = time.Now().Add(delay)
		e.delay(mj)
	}
}

// done forgets a finished job.
func (e *jobs) done(mj *memJob) {
	a := mj.acct
	if j := &mj.job; j.Unique() && j.Kind != store.JobReply {
		delete(a.unique, uniqueKey{j.Dialog.ID, j.Kind})
	}
	if a.pending--; a.pending <= 0 {
		a.pending = 0
		if a.idle != nil {
			close(a.idle)
			a.idle = nil
		}
	}
	e.recycle(mj)
}

var _ store.IdleWaiter = (*Store)(nil)

// WaitIdle implements [store.IdleWaiter].
func (s *Store) WaitIdle(ctx context.Context, acc bd.AccountID) error {
	if err := checkAccount("wait idle", acc); err != nil {
		return err
	}
	e := &s.jobs
	e.mu.Lock()
	a, ok := e.accounts[acc]
	if !ok || a.pending == 0 {
		e.mu.Unlock()
		return nil
	}
	if a.idle == nil {
		a.idle = make(chan struct{})
	}
	ch := a.idle
	e.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Submit implements [store.Jobs].
func (s *Store) Submit(_ context.Context, jobs ...store.Job) error {
	if err := store.CheckJobs(jobs); err != nil {
		return fmt.Errorf("memory: submit: %w", err)
	}
	s.submit(jobs)
	return nil
}

// Work implements [store.Jobs]: up to o.Workers handlers run at once in
// goroutines of this call, and the jobs of one dialog run one at a time, in
// the order they became due. A job whose handler is running when ctx ends is
// put back as it was, for the next Work call.
func (s *Store) Work(ctx context.Context, h store.JobHandler, o store.WorkOptions) error {
	if h == nil {
		return fmt.Errorf("%w: memory: work: nil handler", store.ErrInvalid)
	}
	o, err := o.Normalized()
	if err != nil {
		return fmt.Errorf("memory: work: %w", err)
	}
	e := &s.jobs
	w := &work{
		opts:    o,
		wake:    make(chan struct{}, o.Workers),
		eager:   runtime.GOMAXPROCS(0),
		workers: make([]workerState, o.Workers),
	}
	e.mu.Lock()
	e.works = append(e.works, w)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.works = slices.DeleteFunc(e.works, func(x *work) bool { return x == w })
		if w.watch != nil {
			w.watch.Stop()
		}
		w.watching = false
		e.mu.Unlock()
	}()

	var workers sync.WaitGroup
	for i := range o.Workers {
		workers.Go(func() { e.worker(ctx, w, &w.workers[i], h) })
	}
	workers.Wait()
	return ctx.Err()
}

// worker runs ready jobs one after another until ctx ends. It finishes a
// job and takes the next under one hold of the lock, and sleeps only when
// no job is ready for it.
func (e *jobs) worker(ctx context.Context, w *work, me *workerState, h store.JobHandler) {
	e.mu.Lock()
	for {
		if ctx.Err() != nil {
			e.unlock()
			return
		}
		mj := e.take(w)
		if mj == nil {
			w.idle++
			e.unlock()
			woken := false
			select {
			case <-ctx.Done():
			case <-w.wake:
				woken = true
			}
			e.mu.Lock()
			w.idle--
			if woken {
				w.tokens--
			}
			continue
		}
		if e.head < len(e.ready) {
			e.nudge(w) // another worker may take the next one
		}
		me.busy = true
		me.jobs++
		e.unlock()
		mj.job.Attempt++
		var err error
		stopped := ctx.Err() != nil
		if stopped {
			// Stopped between taking the job and running it: it goes
			// back untouched for the next Work call.
			err = ctx.Err()
		} else {
			err = h(ctx, mj.job)
			// An attempt the stop cut short (the handler gave the
			// context's error back) does not count; any other error does.
			stopped = err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
		}
		e.mu.Lock()
		me.busy = false
		e.finish(w, mj, err, stopped)
	}
}

// grant wakes a sleeping worker of w once the lock is released.
func (e *jobs) grant(w *work) {
	w.tokens++
	e.owed = append(e.owed, w)
}

// unlock releases e.mu, then wakes the workers granted under it: waking a
// goroutine can take a system call, which is not to be made with the lock
// held.
func (e *jobs) unlock() {
	if len(e.owed) == 0 {
		e.mu.Unlock()
		return
	}
	var buf [4]*work
	owed := append(buf[:0], e.owed...)
	clear(e.owed)
	e.owed = e.owed[:0]
	e.mu.Unlock()
	for _, w := range owed {
		w.wake <- struct{}{} // never blocks: tokens stay below the workers
	}
}

// DeadJobs implements [store.Jobs].
func (s *Store) DeadJobs(_ context.Context, acc bd.AccountID, limit int) ([]store.DeadJob, error) {
	if err := checkAccount("dead jobs", acc); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, invalid("dead jobs", "limit must not be negative, got %d", limit)
	}
	e := &s.jobs
	e.mu.Lock()
	defer e.mu.Unlock()
	var all []store.DeadJob
	if a, ok := e.accounts[acc]; ok {
		all = a.dead
	}
	out := make([]store.DeadJob, 0, min(limit, len(all)))
	for i := len(all) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, all[i])
	}
	return out, nil
}

// PendingJobs implements [store.Jobs].
func (s *Store) PendingJobs(_ context.Context, acc bd.AccountID) (int, error) {
	if err := checkAccount("pending jobs", acc); err != nil {
		return 0, err
	}
	e := &s.jobs
	e.mu.Lock()
	defer e.mu.Unlock()
	if a, ok := e.accounts[acc]; ok {
		return a.pending, nil
	}
	return 0, nil
}
