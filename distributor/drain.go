package distributor

import (
	"context"
	"errors"
	"fmt"

	"github.com/botdistributor/botdistributor/store"
)

// drainBatch is how many waiting dialogs a drain reads at first.
const drainBatch = 64

// drain hands free slots to waiting dialogs, oldest first within each pool
// of managers, until no waiting dialog can be assigned.
//
// Requests coalesce: while one goroutine drains an account, others only
// register their request and return; the draining goroutine runs again
// until every request is served. Several processes may drain one account
// at once; the store's atomic Assign keeps that safe.
//
// recover asks the drain to finish the reservations of waiting dialogs it
// finds (see assignWaiting): a drain job tried again after its process died
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
		if err := d.drainOnce(ctx, a); err != nil && first == nil {
			first = err
		}
		if err := d.greetParked(ctx, a); err != nil && first == nil {
			first = err
		}
		if a.drainRequests.Add(-n) == 0 {
			return first
		}
	}
}

func (d *Distributor) drainOnce(ctx context.Context, a *account) error {
	snap := a.snap.Load()
	recover := a.drainRecover.Swap(false)
	full := make(map[*pool]bool) // pools with no free slot for now
	limit := drainBatch
	// failed is the first dialog that failed: the drain goes on with the
	// others and then fails, so that its job is tried again and finishes
	// what was left half-done (see assignWaiting).
	var failed error
	for {
		ws, err := d.store.Waiting(ctx, a.id, limit)
		if err != nil {
			return fmt.Errorf("distributor: waiting dialogs of %s: %w", a.id, err)
		}
		progressed := false
		for _, w := range ws {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := snap.poolFor(w.Dialog.Channel)
			if p != nil && full[p] {
				continue
			}
			done, err := d.assignWaiting(ctx, a, snap, w, recover)
			if err != nil {
				d.fail(a.id, "drain", err)
				if failed == nil {
					failed = err
				}
				if p != nil {
					full[p] = true // no retrying it at once
				}
				continue
			}
			if done {
				progressed = true
			} else if p != nil {
				full[p] = true
			}
		}
		switch {
		case progressed:
			limit = drainBatch
		case len(ws) < limit || len(full) >= snap.pools:
			return failed
		default:
			limit *= 4
		}
	}
}

// assignWaiting tries to assign one waiting dialog. done reports whether
// the dialog left the queue or has a responsible now.
//
// A waiting dialog the store holds already is being assigned by a worker,
// here or in another process, that has not heard back from MG yet: it is
// left alone, unless recover is set. A drain that is tried again after its
// process died sets it: the reservations it finds may be its own, made
// before MG heard of them, and MG is told (repeating an assignment MG has is
// harmless).
func (d *Distributor) assignWaiting(ctx context.Context, a *account, snap *snapshot, w store.Waiting, recover bool) (done bool, err error) {
	dl := w.Dialog
	unlock := d.locks.lock(a.id, dl.ID)
	defer unlock()
	tr := Trace{Account: a.id, Dialog: dl.ID, Channel: dl.Channel, At: d.cfg.now(), FromQueue: true}
	defer tr.release()
	if r, err := d.store.Responsible(ctx, a.id, dl.ID); err == nil {
		if !recover {
			return false, nil
		}
		tr.Responsible = r
		return true, d.finish(ctx, a, snap, dl, &tr)
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	v, err := d.decide(ctx, snap, dl, tr.At, &tr)
	if err != nil || v == wait {
		return false, err
	}
	if err := d.assign(ctx, a, snap, dl, &tr, v, d.assignedJobs(snap, dl, fresh(w) && v == pickManager)); err != nil {
		return false, err
	}
	return tr.Outcome != "" && tr.Outcome != OutcomeQueued, nil
}
