package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// Activation
//
// An account whose settings are not active (bd.Settings.Active is false,
// the zero value) is not distributed. Its events are accepted as usual, so
// that nothing is lost, but its jobs do nothing visible:
//
//   - a dialog to distribute is put in the waiting queue silently, with the
//     reason [ReasonInactive] and no reply: it is "parked";
//   - replies, bindings, moves and drains are dropped (a reply is sent at
//     most once, so a reply dropped now is never sent);
//   - the periodic sweep skips the account.
//
// Dialogs waiting when the account is switched off stay in the queue. When
// the settings become active (SaveSettings or Reload), the queue is drained
// as after every settings change: waiting dialogs are assigned oldest
// first, and a parked dialog is treated as new to distribution — greeted
// and bound when it is assigned; when it has to wait on, it is greeted and
// told why, once.

// ReasonInactive is the [store.Waiting] reason (and the Situation of the
// trace) of a dialog that opened while its account was not active. No reply
// is sent for it: it is not a reply situation.
const ReasonInactive bd.Situation = "account_inactive"

// active reports whether the snapshot's account is distributed.
func (s *snapshot) active() bool { return s.settings.Active }

// idle does job j of an account that is not active: a dialog to distribute
// is parked, every other job is dropped.
func (d *Distributor) idle(ctx context.Context, a *account, j store.Job) error {
	if j.Kind != store.JobDistribute {
		d.cfg.logger.Debug("distributor: job of an inactive account dropped", slog.String("account", string(a.id)), slog.String("job", j.Key()))
		return nil
	}
	dl := j.Dialog
	dl.Account = a.id
	lk := d.locks.lock(dl.ID)
	defer d.locks.unlock(lk)
	return d.park(ctx, a, dl)
}

// park puts a dialog of an inactive account in the queue without a reply,
// unless somebody holds it already.
func (d *Distributor) park(ctx context.Context, a *account, dl bd.Dialog) error {
	if _, err := d.store.Responsible(ctx, a.id, dl.ID); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if dl.OpenedAt.IsZero() {
		dl.OpenedAt = d.cfg.now()
	}
	a.parked.mark()
	_, err := d.store.Enqueue(ctx, store.Waiting{Dialog: dl, Reason: ReasonInactive, Since: dl.OpenedAt})
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("distributor: park dialog %d of inactive account %s: %w", dl.ID, a.id, err)
	}
	tr := Trace{Account: a.id, Dialog: dl.ID, Channel: dl.Channel, At: d.cfg.now(), Outcome: OutcomeQueued, Situation: ReasonInactive}
	d.remember(a, tr)
	return nil
}

// parkedState remembers, per process, whether the account may have parked
// dialogs still to greet, and which were greeted already.
type parkedState struct {
	mu sync.Mutex
	// clean is true once a look at the queue found no parked dialog left
	// to greet; a new account starts unknown (another process, or an
	// earlier run, may have parked dialogs).
	clean bool
	told  map[bd.DialogID]bool
}

func (p *parkedState) mark() {
	p.mu.Lock()
	p.clean = false
	p.mu.Unlock()
}

// fresh reports whether a waiting dialog is new to distribution: it was
// parked, so nobody greeted it yet.
func fresh(w store.Waiting) bool { return w.Reason == ReasonInactive }

// greetParked greets the parked dialogs that a drain left waiting and tells
// them why they wait, once each. It runs after every drain of an active
// account until a look at the queue finds no parked dialog left to greet.
func (d *Distributor) greetParked(ctx context.Context, a *account) error {
	snap := a.snap.Load()
	if !snap.active() {
		return nil
	}
	a.parked.mu.Lock()
	clean := a.parked.clean
	a.parked.mu.Unlock()
	if clean {
		return nil
	}
	ws, err := d.store.Waiting(ctx, a.id, 1<<30)
	if err != nil {
		return fmt.Errorf("distributor: waiting dialogs of %s: %w", a.id, err)
	}
	left := false
	var errs []error
	for _, w := range ws {
		if !fresh(w) {
			continue
		}
		a.parked.mu.Lock()
		told := a.parked.told[w.Dialog.ID]
		a.parked.mu.Unlock()
		if told {
			continue
		}
		done, err := d.greetWaiting(ctx, a, snap, w.Dialog)
		if err != nil {
			errs = append(errs, err)
		}
		if !done {
			left = true
			continue
		}
		a.parked.mu.Lock()
		if a.parked.told == nil {
			a.parked.told = make(map[bd.DialogID]bool)
		}
		a.parked.told[w.Dialog.ID] = true
		a.parked.mu.Unlock()
	}
	if !left && len(errs) == 0 {
		a.parked.mu.Lock()
		a.parked.clean = true
		a.parked.told = nil
		a.parked.mu.Unlock()
	}
	return errors.Join(errs...)
}

// greetWaiting stores the greeting, the binding and the reply saying why a
// parked dialog waits. done is false when the dialog could be assigned
// (the next drain takes it, greeting it then) or when it no longer waits.
func (d *Distributor) greetWaiting(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog) (done bool, err error) {
	lk := d.locks.lock(dl.ID)
	defer d.locks.unlock(lk)
	waits, err := d.store.Waits(ctx, a.id, dl.ID)
	if err != nil || !waits {
		return !waits && err == nil, err
	}
	tr := Trace{Account: a.id, Dialog: dl.ID, Channel: dl.Channel, At: d.cfg.now(), FromQueue: true, DryRun: true}
	defer tr.release()
	v, err := d.decide(ctx, snap, dl, tr.At, &tr)
	if err != nil {
		return false, err
	}
	if v != wait {
		return false, nil
	}
	jobs := d.receivedJobs(snap, dl, nil)
	jobs = d.waitReplyJob(snap, dl, tr.Situation, jobs)
	if len(jobs) == 0 {
		return true, nil
	}
	if err := d.store.Submit(ctx, jobs...); err != nil {
		return false, fmt.Errorf("distributor: greet parked dialog %d: %w", dl.ID, err)
	}
	return true, nil
}
