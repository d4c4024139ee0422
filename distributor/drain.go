package distributor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// drainBatch is how many waiting dialogs a drain reads at first.
const drainBatch = 64

// drain hands free slots to waiting dialogs, oldest first within each pool
// of managers, until no waiting dialog can be assigned.
//
// Requests coalesce: while one goroutine drains an account, others only
// register their request and return; the draining goroutine runs again
// until every request is served. A drain MG asked to pause (a rate limit)
// serves the requests made meanwhile too: the drain stored with that
// refusal runs once the pause is over. Several processes may drain one
// account at once; the store's atomic Assign keeps that safe.
//
// recover asks the drain to finish the reservations of waiting dialogs it
// finds (see beginWaiting): a drain job tried again after its process died
// asks for it.
func (d *Distributor) drain(ctx context.Context, a *account, recover bool) error {
	if recover {
		a.drainRecover.Store(true)
	}
	if a.drainRequests.Add(1) != 1 {
		return nil
	}
	var first error
	for {
		n := a.drainRequests.Load()
		paused, err := d.drainOnce(ctx, a)
		if err != nil && first == nil {
			first = err
		}
		if err := d.greetParked(ctx, a); err != nil && first == nil {
			first = err
		}
		if paused {
			for !a.drainRequests.CompareAndSwap(n, 0) {
				n = a.drainRequests.Load()
			}
			return first
		}
		if a.drainRequests.Add(-n) == 0 {
			return first
		}
	}
}

// mgPause is why a drain, or a dialog reserved by one, waits: MessageGateway
// asked for a pause, and this much of it is left.
type mgPause time.Duration

func (p mgPause) Error() string {
	return fmt.Sprintf("distributor: MessageGateway asked for a pause; %s of it left", time.Duration(p))
}

// RetryAfter makes the rest of the pause the delay of a retry.
func (p mgPause) RetryAfter() time.Duration { return time.Duration(p) }

// pauseDrain keeps the account's drains from running for the next pause,
// when MessageGateway asked for it: drain requests made during it (a close,
// a roster change, the sweep) wait for its end too. MG's pause is real
// time, as the store's job delays are, not the distributor's clock (which
// tests and simulations move at will).
func (a *account) pauseDrain(pause time.Duration) {
	n := time.Now().Add(pause).UnixNano()
	for {
		cur := a.drainPausedUntil.Load()
		if cur >= n || a.drainPausedUntil.CompareAndSwap(cur, n) {
			return
		}
	}
}

// drainPause returns how long drains still wait; 0 when they do not.
func (a *account) drainPause() time.Duration {
	return max(0, time.Duration(a.drainPausedUntil.Load()-time.Now().UnixNano()))
}

// drainParallel bounds the waiting dialogs one drain assigns at once: each
// assignment waits on an MG round trip, and one at a time a drain would
// hand out fewer than 50 slots a second with MG 20 ms away.
const drainParallel = 16

// drainOnce is one pass of drain; paused reports that MG asked for a pause.
func (d *Distributor) drainOnce(ctx context.Context, a *account) (paused bool, err error) {
	snap := a.snap.Load()
	recover := a.drainRecover.Swap(false)
	var (
		mu   sync.Mutex
		full = make(map[*pool]bool) // pools with no free slot for now
		// failed is the first dialog that failed: the drain goes on with
		// the others and then fails, so that its job is tried again and
		// finishes what was left half-done (see beginWaiting).
		failed error
		// refused are the dialogs MG refused in this drain: each waits
		// for the drain stored with its refusal instead of being tried
		// again at once, while the dialogs behind it go on getting the
		// free slots.
		refused = make(map[bd.DialogID]bool)
	)
	limit := drainBatch
	for {
		ws, err := d.store.Waiting(ctx, a.id, limit)
		if err != nil {
			return false, fmt.Errorf("distributor: waiting dialogs of %s: %w", a.id, err)
		}
		// Dialogs are decided and reserved one at a time, oldest first, so
		// that a freed slot goes to the one that waited longest; then up to
		// drainParallel of them wait on MG at once.
		progressed := false
		note := func(p *pool, id bd.DialogID, res waitingResult, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				d.fail(a.id, "drain", err)
				if failed == nil {
					failed = err
				}
				if p != nil {
					full[p] = true // no retrying it at once
				}
			case res == placed:
				progressed = true
			case res == refusedByMG:
				refused[id] = true
			case res == slowedDown:
				// The account's drains wait for MG's pause to end (see
				// pauseDrain); the drain stored with the refusal goes on.
			case p != nil:
				full[p] = true
			}
		}
		// A slot among the drainParallel is taken before the reservation,
		// so that no dialog is reserved while MG's answers are awaited:
		// one that asked for a pause stops the next at once.
		sem := semaphore.NewWeighted(drainParallel)
		var wg sync.WaitGroup
		for _, w := range ws {
			if sem.Acquire(ctx, 1) != nil {
				break // stopped
			}
			// Dialogs of a pool with no free slot are skipped; not so while
			// personal managers route, as whose turn it is depends on
			// each dialog's customer.
			var p *pool
			if !snap.settings.PersonalManager {
				p, _ = snap.poolAt(w.Dialog.Channel, waitedOf(w.Dialog, d.cfg.now()))
			}
			mu.Lock()
			skip := p != nil && full[p] || refused[w.Dialog.ID]
			mu.Unlock()
			if skip {
				sem.Release(1)
				continue
			}
			if a.drainPause() > 0 {
				sem.Release(1)
				break // MG asked for a pause: nothing more goes to it before its end
			}
			rest, res, err := d.beginWaiting(ctx, a, snap, w, recover)
			if rest == nil {
				note(p, w.Dialog.ID, res, err)
				sem.Release(1)
				continue
			}
			wg.Go(func() {
				defer sem.Release(1)
				res, err := rest()
				note(p, w.Dialog.ID, res, err)
			})
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return false, err
		}
		switch {
		case a.drainPause() > 0:
			return true, failed
		case progressed:
			limit = drainBatch
		case len(ws) < limit || len(full) >= len(snap.all):
			return false, failed
		default:
			limit *= 4
		}
	}
}

// waitingResult is how an attempt at a waiting dialog ended.
type waitingResult uint8

const (
	// stillWaits: nobody in its pool has room (or another worker is
	// assigning it).
	stillWaits waitingResult = iota
	// placed: the dialog left the queue or has a responsible now.
	placed
	// refusedByMG: MG refused the assignment; the dialog waits again and
	// a drain is stored to try it after a pause. The pool's slots are
	// still free for the dialogs behind it.
	refusedByMG
	// slowedDown: MG refused it asking for a pause (a rate limit): no
	// more assignments until the stored drain runs.
	slowedDown
)

// beginWaiting starts an attempt at one waiting dialog: the decision and
// the reservation, which keep the queue's order. It returns the attempt's
// result, or, once the store holds the dialog for someone, rest: the part
// that waits on MG and returns the result, which may run beside the next
// dialogs' beginnings. The dialog's lock is held until the attempt ends.
//
// A waiting dialog the store holds already is being assigned by a worker,
// here or in another process, that has not heard back from MG yet: it is
// left alone, unless recover is set. A drain that is tried again after its
// process died sets it: the reservations it finds may be its own, made
// before MG heard of them, and MG is told (repeating an assignment MG has is
// harmless).
func (d *Distributor) beginWaiting(ctx context.Context, a *account, snap *snapshot, w store.Waiting, recover bool) (rest func() (waitingResult, error), res waitingResult, err error) {
	dl := w.Dialog
	if dl.OpenedAt.IsZero() {
		dl.OpenedAt = w.Since
	}
	lk := d.locks.lock(dl.ID)
	tr := &Trace{Account: a.id, Dialog: dl.ID, Channel: dl.Channel, At: d.cfg.now(), FromQueue: true, greet: fresh(w)}
	end := func() {
		tr.release()
		d.locks.unlock(lk)
	}
	if r, err := d.store.Responsible(ctx, a.id, dl.ID); err == nil {
		if !recover {
			end()
			return nil, stillWaits, nil
		}
		tr.Responsible = r
		return func() (waitingResult, error) {
			defer end()
			return placed, d.finish(ctx, a, snap, dl, tr)
		}, 0, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		end()
		return nil, stillWaits, err
	}
	v, err := d.decide(ctx, snap, dl, tr.At, tr)
	if err != nil || v == wait {
		if v == wait {
			d.wakeWhenDue(a, tr)
		}
		end()
		return nil, stillWaits, err
	}
	rsv, err := d.reserveFor(ctx, snap, dl, tr, v, d.assignedJobs(snap, dl, fresh(w) && v == pickManager))
	if err != nil {
		end()
		return nil, stillWaits, err
	}
	a.drainingWaits.add(dl.ID, time.Now())
	return func() (waitingResult, error) {
		defer end()
		defer a.drainingWaits.remove(dl.ID)
		if err := d.conclude(ctx, a, snap, dl, tr, rsv); err != nil {
			return stillWaits, err
		}
		switch {
		case tr.slowDown:
			return slowedDown, nil
		case tr.refused:
			return refusedByMG, nil
		case tr.Outcome != "" && tr.Outcome != OutcomeQueued:
			return placed, nil
		}
		return stillWaits, nil
	}, 0, nil
}
