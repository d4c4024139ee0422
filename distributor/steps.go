package distributor

import (
	"context"
	"sync"
	"time"
)

// stepWake is an account's timer for the next moment a waiting dialog's
// turn changes on its own: its escalation step ends, or its wait for the
// personal manager does. It then asks for a drain, which decides the
// waiting dialogs again. The timer lives in this process only: should the
// process stop, the next sweep (Run's, every WithSweep) decides them
// again.
type stepWake struct {
	mu    sync.Mutex
	due   time.Time // real time; zero when no timer is set
	timer *time.Timer
}

// wakeWhenDue sets the account's timer for when the decision in tr stops
// holding: the end of the dialog's step or of its personal wait.
func (d *Distributor) wakeWhenDue(a *account, tr *Trace) {
	after := tr.NextStepIn
	if tr.PersonalWait > 0 && (after <= 0 || tr.PersonalWait < after) {
		after = tr.PersonalWait
	}
	if after <= 0 {
		return
	}
	due := time.Now().Add(after)
	w := &a.stepWake
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.due.IsZero() && !due.Before(w.due) {
		return // an earlier wake decides this dialog again too
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	w.due = due
	w.timer = time.AfterFunc(after, func() {
		w.mu.Lock()
		if !w.due.Equal(due) {
			w.mu.Unlock()
			return // replaced by an earlier one
		}
		w.due, w.timer = time.Time{}, nil
		w.mu.Unlock()
		d.goBackground(func(ctx context.Context) {
			if err := d.store.Submit(ctx, drainJob(a.id, 0)); err != nil && ctx.Err() == nil {
				d.fail(a.id, "step drain", err)
			}
		})
	})
}
