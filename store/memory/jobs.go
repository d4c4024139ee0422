package memory

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
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
type jobs struct {
	mu      sync.Mutex
	nextID  int64
	ready   []*memJob // due now, oldest first
	delayed delayHeap // due later, soonest first
	// unique holds the keys of the unique jobs not finished yet.
	unique  map[uniqueKey]struct{}
	pending map[bd.AccountID]int
	dead    map[bd.AccountID][]store.DeadJob
	// works are the running Work calls, woken when a job becomes due.
	works map[*work]struct{}
	// busy holds the dialogs with a job running: one dialog's jobs run one
	// at a time, in the order they became due.
	busy map[uniqueKey]struct{}
	// idle holds, per account, a channel closed when its last pending job
	// is done (see WaitIdle).
	idle map[bd.AccountID]chan struct{}
}

type memJob struct {
	job store.Job
	due time.Time
}

// uniqueKey identifies a unique job (kind set) or a dialog (kind empty).
type uniqueKey struct {
	account bd.AccountID
	kind    store.JobKind
	dialog  bd.DialogID
}

func uniqueOf(j *store.Job) uniqueKey { return uniqueKey{j.Account, j.Kind, j.Dialog.ID} }

type work struct {
	opts store.WorkOptions
	wake chan struct{}
}

// delayHeap orders delayed jobs by due time.
type delayHeap []*memJob

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(*memJob)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
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
	now := time.Now()
	for _, j := range jobs {
		if j.IfWaiting && !waiting {
			continue
		}
		if j.Kind == store.JobReply && !s.claimReply(j.Account, j.Dialog.ID, j.Situation) {
			continue
		}
		s.jobs.add(j, now)
	}
}

func (e *jobs) add(j store.Job, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.unique == nil {
		e.unique = make(map[uniqueKey]struct{})
		e.pending = make(map[bd.AccountID]int)
		e.dead = make(map[bd.AccountID][]store.DeadJob)
	}
	if j.Unique() && j.Kind != store.JobReply {
		k := uniqueOf(&j)
		if _, dup := e.unique[k]; dup {
			return
		}
		e.unique[k] = struct{}{}
	}
	e.nextID++
	j.ID, j.Attempt = e.nextID, 0
	if j.Dialog.Account == "" {
		j.Dialog.Account = j.Account
	}
	mj := &memJob{job: j, due: now.Add(j.Delay)}
	e.pending[j.Account]++
	if j.Delay > 0 {
		heap.Push(&e.delayed, mj)
	} else {
		e.ready = append(e.ready, mj)
	}
	e.wakeLocked()
}

func (e *jobs) wakeLocked() {
	for w := range e.works {
		w.signal()
	}
}

// take returns the first due job w handles and whether more are ready, or
// nil and when the next delayed job is due (zero if none).
func (e *jobs) take(w *work, now time.Time) (*memJob, time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.delayed.Len() > 0 && !e.delayed[0].due.After(now) {
		e.ready = append(e.ready, heap.Pop(&e.delayed).(*memJob))
	}
	var blocked map[uniqueKey]bool // dialogs with an earlier job waiting
	for i, mj := range e.ready {
		if !w.opts.Handles(mj.job.Account) {
			continue
		}
		d := dialogOf(mj.job)
		if d != (uniqueKey{}) {
			if _, running := e.busy[d]; running || blocked[d] {
				if blocked == nil {
					blocked = make(map[uniqueKey]bool)
				}
				blocked[d] = true
				continue
			}
			if e.busy == nil {
				e.busy = make(map[uniqueKey]struct{})
			}
			e.busy[d] = struct{}{}
		}
		if i == 0 {
			e.ready[0] = nil
			e.ready = e.ready[1:]
		} else {
			e.ready = slices.Delete(e.ready, i, i+1)
		}
		return mj, time.Time{}, len(e.ready) > 0
	}
	var next time.Time
	for _, mj := range e.delayed {
		if w.opts.Handles(mj.job.Account) && (next.IsZero() || mj.due.Before(next)) {
			next = mj.due
		}
	}
	return nil, next, false
}

// finish records the outcome of an attempt: done, retried later, put back
// untouched (the worker stopped), or given up as a dead letter.
func (e *jobs) finish(w *work, mj *memJob, err error, stopped bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	j := &mj.job
	now := time.Now()
	delete(e.busy, dialogOf(*j))
	switch {
	case err == nil:
		e.done(j)
	case stopped:
		j.Attempt-- // the attempt was cut short, not failed
		e.ready = append(e.ready, mj)
		e.wakeLocked()
	case j.Attempt >= w.opts.MaxAttempts:
		e.done(j)
		e.dead[j.Account] = append(e.dead[j.Account], store.DeadJob{Job: *j, Err: err.Error(), At: now})
	default:
		delay := w.opts.Backoff(j.Attempt)
		if ra, ok := errors.AsType[*store.RetryAfterError](err); ok && ra.Delay > 0 {
			delay = ra.Delay
		}
		mj.due = now.Add(delay)
		heap.Push(&e.delayed, mj)
		e.wakeLocked()
	}
}

func (e *jobs) done(j *store.Job) {
	if j.Unique() && j.Kind != store.JobReply {
		delete(e.unique, uniqueOf(j))
	}
	if e.pending[j.Account]--; e.pending[j.Account] <= 0 {
		delete(e.pending, j.Account)
		if ch, ok := e.idle[j.Account]; ok {
			close(ch)
			delete(e.idle, j.Account)
		}
	}
}

var _ store.IdleWaiter = (*Store)(nil)

// WaitIdle implements [store.IdleWaiter].
func (s *Store) WaitIdle(ctx context.Context, acc bd.AccountID) error {
	if err := checkAccount("wait idle", acc); err != nil {
		return err
	}
	e := &s.jobs
	e.mu.Lock()
	if e.pending[acc] == 0 {
		e.mu.Unlock()
		return nil
	}
	if e.idle == nil {
		e.idle = make(map[bd.AccountID]chan struct{})
	}
	ch, ok := e.idle[acc]
	if !ok {
		ch = make(chan struct{})
		e.idle[acc] = ch
	}
	e.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dialogOf returns the key of the job's dialog; zero for a drain job.
func dialogOf(j store.Job) uniqueKey {
	if j.Kind == store.JobDrain {
		return uniqueKey{}
	}
	return uniqueKey{account: j.Account, dialog: j.Dialog.ID}
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
	w := &work{opts: o, wake: make(chan struct{}, 1)}
	e.mu.Lock()
	if e.works == nil {
		e.works = make(map[*work]struct{})
	}
	e.works[w] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.works, w)
		e.mu.Unlock()
	}()

	var workers sync.WaitGroup
	for range o.Workers {
		workers.Go(func() { e.worker(ctx, w, h) })
	}
	workers.Wait()
	return ctx.Err()
}

// worker runs due jobs one after another until ctx ends.
func (e *jobs) worker(ctx context.Context, w *work, h store.JobHandler) {
	var timer *time.Timer
	for ctx.Err() == nil {
		mj, next, more := e.take(w, time.Now())
		if mj != nil {
			mj.job.Attempt++
			if ctx.Err() != nil {
				// Stopped between taking the job and running it: it goes
				// back untouched for the next Work call.
				e.finish(w, mj, ctx.Err(), true)
				return
			}
			if more {
				w.signal() // another worker may take the next one
			}
			err := h(ctx, mj.job)
			// An attempt the stop cut short (the handler gave the context's
			// error back) does not count; any other error does.
			e.finish(w, mj, err, ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)))
			continue
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-timer.C:
		}
	}
}

func (w *work) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
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
	all := e.dead[acc]
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
	return e.pending[acc], nil
}
