package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/store"
)

// work does one job of the pipeline; the store's engine calls it from the
// workers the Distributor started, retries it when it fails and makes it a
// dead letter when its attempts are spent.
func (d *Distributor) work(ctx context.Context, j store.Job) error {
	if j.Account != d.id {
		// The workers take only this account's jobs; a store that hands out
		// another's has a bug, and the job stays for its own distributor.
		return fmt.Errorf("distributor: job %s of account %q given to the distributor of %q", j.Key(), j.Account, d.id)
	}
	a, err := d.account(ctx)
	if errors.Is(err, ErrUnknownAccount) {
		d.cfg.logger.Warn("distributor: job of an unknown account dropped", slog.String("account", string(j.Account)), slog.String("job", j.Key()))
		return nil
	}
	if err != nil {
		return err
	}
	if !a.snap.Load().active() {
		return d.idle(ctx, a, j) // see activation.go
	}
	dl := j.Dialog
	dl.Account = a.id
	switch j.Kind {
	case store.JobDistribute:
		lk := d.locks.lock(dl.ID)
		err = d.distribute(ctx, a, dl)
		d.locks.unlock(lk)
	case store.JobMove:
		lk := d.locks.lock(dl.ID)
		err = d.move(ctx, a, dl, j.Manager, j.Why, j.Attempt)
		d.locks.unlock(lk)
	case store.JobReply:
		// Under the dialog's lock: should the store hand a reply out again
		// while its first run still goes on (its worker looked dead), the
		// second run waits, then sees that the text landed.
		lk := d.locks.lock(dl.ID)
		err = d.sendReply(ctx, a, j)
		d.locks.unlock(lk)
	case store.JobBind:
		err = d.bindCustomer(ctx, a, dl)
	case store.JobDrain:
		if wait := a.drainPause(); wait > 0 {
			// MG asked for a pause: the drain waits for its end (a drain
			// stored with the pause runs then; this one is kept too, so that
			// nothing depends on the store's clock agreeing with ours).
			return &store.RetryAfterError{Delay: wait, Err: mgPause(wait)}
		}
		err = d.drain(ctx, a, j.Attempt > 1)
	default:
		err = fmt.Errorf("distributor: job of unknown kind %q", j.Kind)
	}
	if err == nil || ctx.Err() != nil {
		return err
	}
	op := "job " + string(j.Kind)
	if j.Attempt >= d.cfg.work.MaxAttempts {
		d.fail(a.id, op+": dead letter", fmt.Errorf("%s after %d attempts: %w", j.Key(), j.Attempt, err))
		if d.cfg.hooks.Dead != nil {
			d.cfg.hooks.Dead(a.id, j, err)
		}
		return err
	}
	d.cfg.logger.Warn("distributor: "+op+" failed; it will be retried", slog.String("account", string(a.id)),
		slog.String("job", j.Key()), slog.Int("attempt", j.Attempt), slog.Any("error", err))
	if d.cfg.hooks.Failed != nil {
		d.cfg.hooks.Failed(a.id, op, err)
	}
	if delay, ok := retryAfter(err); ok {
		return &store.RetryAfterError{Delay: delay, Err: err}
	}
	return err
}

// retryAfter finds a server's requested delay in err: any error in its
// tree with a method RetryAfter() time.Duration (as the mg client's
// rate-limit errors have) that returns a positive delay.
func retryAfter(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > 0 {
			return d, true
		}
	}
	return 0, false
}

// sendReply sends the account's text for the job's situation: the work of
// a reply job. The job's store record is the reply's claim, so it is sent
// at most once by the pipeline; on a retry the replier is told, so that it
// can look whether the previous attempt landed before sending again. A
// reply whose moment has passed (a queue reply for a dialog that left the
// queue, a "manager assigned" reply for a dialog no manager holds any more)
// is not sent. The "manager assigned" reply names the manager who
// holds the dialog when it is sent.
//
// A job with a First situation sends that reply, then its own; should the
// second fail, the retry looks whether the first landed before sending it
// again, as for any reply.
func (d *Distributor) sendReply(ctx context.Context, a *account, j store.Job) error {
	if j.First == "" {
		return d.sendOne(ctx, a, j, j.Situation)
	}
	if err := d.sendOne(ctx, a, j, j.First); err != nil {
		return err
	}
	err := d.sendOne(ctx, a, j, j.Situation)
	if err != nil && ctx.Err() != nil {
		// Stopped after the first reply went out: the attempt must count
		// (an error that does not read as a context error), so that the
		// retry is told and looks before sending the first one again.
		return fmt.Errorf("%s reply to dialog %d sent, then %s interrupted: %v", j.First, j.Dialog.ID, j.Situation, err)
	}
	return err
}

// sendOne sends the reply of situation sit, of job j.
func (d *Distributor) sendOne(ctx context.Context, a *account, j store.Job, sit bd.Situation) error {
	snap := a.snap.Load()
	text := snap.settings.Replies[sit]
	if text == "" {
		return nil
	}
	var mgr bd.Manager
	switch sit {
	case bd.DialogReceived:
	case bd.ManagerAssigned:
		r, err := d.store.Responsible(ctx, a.id, j.Dialog.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		m, ok := r.Manager()
		if !ok {
			return nil // unassigned or given to a bot meanwhile
		}
		// The manager who holds the dialog now: it may have moved since the
		// job was stored, and the customer hears this once.
		if mgr, ok = snap.roster[m]; !ok {
			mgr = bd.Manager{ID: m}
		}
	default:
		// A reason to wait is told while the dialog waits. A reservation in
		// flight does not count: should MG refuse it, the dialog waits on.
		waits, err := d.store.Waits(ctx, a.id, j.Dialog.ID)
		if err != nil {
			return err
		}
		if !waits {
			return nil
		}
	}
	dl := j.Dialog
	dl.Account = a.id
	err := d.cfg.replier.Reply(ctx, reply.Request{Dialog: dl, Situation: sit, Text: text, Manager: mgr, Attempt: j.Attempt})
	if _, ok := errors.AsType[*reply.TextError](err); ok {
		// Trying again cannot help until the account's text changes.
		d.fail(a.id, "reply", fmt.Errorf("%s reply to dialog %d not sent: %w", sit, dl.ID, err))
		return nil
	}
	if err != nil && ctx.Err() != nil {
		// Stopped mid-send: the text may have landed. The error must not
		// read as a context error, which the stores take for an attempt
		// that did not count: this one counts, so that the retry is told
		// (Attempt > 1) and looks before sending again.
		return fmt.Errorf("%s reply to dialog %d interrupted, it may have been sent: %v", sit, dl.ID, err)
	}
	if err != nil {
		return fmt.Errorf("%s reply to dialog %d: %w", sit, dl.ID, err)
	}
	if d.cfg.hooks.Replied != nil {
		d.cfg.hooks.Replied(a.id, sit)
	}
	return nil
}

// bindCustomer links the dialog's customer to a retailCRM customer: the
// work of a bind job. Distribution never waits for it.
func (d *Distributor) bindCustomer(ctx context.Context, a *account, dl bd.Dialog) error {
	snap := a.snap.Load()
	if d.cfg.binder == nil || !snap.settings.AutoBind || dl.Customer.ID == 0 {
		return nil
	}
	res, err := d.cfg.binder.Bind(ctx, binding.Request{Account: a.id, Customer: dl.Customer, Create: snap.settings.AutoCreate})
	if errors.Is(err, binding.ErrNoMatch) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bind customer %d: %w", dl.Customer.ID, err)
	}
	d.cfg.logger.Debug("distributor: customer bound", slog.String("account", string(a.id)),
		slog.Int64("customer", int64(dl.Customer.ID)), slog.Int64("crm_customer", res.CRMCustomer), slog.String("rule", string(res.Rule)))
	return nil
}

// Flush waits until every job of the account is done (or a dead letter),
// or ctx ends. Jobs waiting for a retry count as not done. It is meant for
// tests, tools and shutdown; with several processes it also waits for the
// jobs other processes work.
func (d *Distributor) Flush(ctx context.Context) error {
	if w, ok := d.store.(store.IdleWaiter); ok {
		if err := w.WaitIdle(ctx, d.id); err != nil {
			return fmt.Errorf("distributor: flush: %w", err)
		}
		return nil
	}
	wait := 20 * time.Microsecond
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		n, err := d.store.PendingJobs(ctx, d.id)
		if err != nil {
			return fmt.Errorf("distributor: flush: %w", err)
		}
		if n == 0 {
			return nil
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Millisecond)
	}
}

// DeadLetters returns up to limit jobs of the account that failed past their
// retry budget, newest first.
func (d *Distributor) DeadLetters(ctx context.Context, limit int) ([]store.DeadJob, error) {
	dead, err := d.store.DeadJobs(ctx, d.id, limit)
	if err != nil {
		return nil, fmt.Errorf("distributor: dead letters of %q: %w", d.id, err)
	}
	return dead, nil
}

// dialogLocks serialises the work on one dialog within the process: its
// distribution, moves and the drain's attempt at it run one at a time.
// Across processes the store's atomic writes keep them safe. (A
// Distributor serves one account, so the dialog's id is key enough.)
type dialogLocks struct {
	mu    sync.Mutex
	locks map[bd.DialogID]*dialogLock
	free  []*dialogLock // unused locks kept for reuse
}

type dialogLock struct {
	mu     sync.Mutex
	dialog bd.DialogID
	users  int
}

// maxFreeLocks bounds the unused dialog locks kept for reuse.
const maxFreeLocks = 256

// lock locks the dialog's lock; give it back to unlock.
func (l *dialogLocks) lock(id bd.DialogID) *dialogLock {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = make(map[bd.DialogID]*dialogLock)
	}
	dl := l.locks[id]
	if dl == nil {
		if n := len(l.free); n > 0 {
			dl = l.free[n-1]
			l.free = l.free[:n-1]
		} else {
			dl = &dialogLock{}
		}
		dl.dialog = id
		l.locks[id] = dl
	}
	dl.users++
	l.mu.Unlock()
	dl.mu.Lock()
	return dl
}

// unlock unlocks a lock lock returned.
func (l *dialogLocks) unlock(dl *dialogLock) {
	dl.mu.Unlock()
	l.mu.Lock()
	if dl.users--; dl.users == 0 {
		delete(l.locks, dl.dialog)
		if len(l.free) < maxFreeLocks {
			l.free = append(l.free, dl)
		}
	}
	l.mu.Unlock()
}
