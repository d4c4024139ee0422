package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/strategy"
)

// refusedRetry is how long a dialog MG refused to assign waits before the
// queue is drained for it again (on the SQL stores up to 5 s more: a
// delayed job waits for River's scheduler).
const refusedRetry = time.Second

// distribute gives a dialog with no responsible to a manager or a bot, or
// puts it in the queue with the right replies: the work of a distribute
// job. It is idempotent. Decisions use the distributor's clock, not the
// event's time: working hours and round robin's last-assigned times must be
// exact, and MG's event times are coarse.
//
// The assignment waits on one MG round trip (the assignment itself); the
// replies and the binding it causes are jobs stored with the reservation.
// A dialog found reserved already (an earlier attempt reserved it and
// stopped before MG heard of it) is finished: MG is told.
func (d *Distributor) distribute(ctx context.Context, a *account, dl bd.Dialog) error {
	snap := a.snap.Load()
	tr := Trace{Account: a.id, Dialog: dl.ID, Channel: dl.Channel, At: d.cfg.now()}
	defer tr.release()
	v, err := d.decide(ctx, snap, dl, tr.At, &tr)
	if err != nil {
		return err
	}
	if v == pickManager {
		// Dialogs already waiting were there first: this one joins the queue
		// and the drain hands out free slots oldest first.
		n, err := d.store.QueueLen(ctx, a.id)
		if err != nil {
			return fmt.Errorf("distributor: queue length of %s: %w", a.id, err)
		}
		if n > 0 {
			v, tr.Situation = wait, bd.AllManagersBusy
			tr.Choice = strategy.Choice{}
		}
	}
	if v == wait {
		// An earlier attempt of this job may have reserved the dialog and
		// lost its commit's answer (the connection dropped): the slot it
		// took is why nobody is free now. Finish that instead of queueing
		// a dialog the store holds.
		r, err := d.store.Responsible(ctx, a.id, dl.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if !r.IsZero() {
			tr.Responsible = r
			return d.finish(ctx, a, snap, dl, &tr)
		}
		return d.enqueue(ctx, a, snap, dl, &tr)
	}
	return d.assign(ctx, a, snap, dl, &tr, v, d.assignedJobs(snap, dl, v == pickManager)) // a bot's dialog is the bot's to greet
}

// assign reserves the dialog for the bot or the chosen manager (who may fill
// up concurrently: then the strategy is asked again) and tells MG. then
// gives the jobs stored with the reservation.
func (d *Distributor) assign(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog, tr *Trace, v verdict, then func(bd.Responsible) []store.Job) error {
	var res reservation
	var err error
	if v == toBot {
		res, err = d.reserveBot(ctx, dl, tr, then(tr.Responsible))
	} else {
		res, err = d.reserve(ctx, snap, dl, tr, bd.Responsible{}, then)
	}
	if err != nil {
		return err
	}
	switch res {
	case reserved:
		return d.finish(ctx, a, snap, dl, tr)
	case full:
		if tr.FromQueue {
			return nil // it waits where it is
		}
		return d.enqueue(ctx, a, snap, dl, tr)
	case taken:
		if !tr.FromQueue && tr.Reassigned == 0 && !tr.Responsible.IsZero() {
			// The dialog was reserved before this decision: by an attempt of
			// this job that stopped before MG heard of it (MG failed, or its
			// process died), or by a person in MG. Either way MG is told
			// what the store holds; repeating an assignment MG has is
			// harmless.
			return d.finish(ctx, a, snap, dl, tr)
		}
		tr.Outcome = OutcomeAlreadyAssigned
	case gone:
		tr.Outcome = OutcomeClosed
	}
	d.remember(a, *tr)
	return nil
}

// assignedJobs returns the jobs stored with an assignment's reservation:
// the greeting and the binding of a dialog new to distribution. (The
// "manager assigned" reply is stored once MG took the assignment, by
// finish.)
func (d *Distributor) assignedJobs(snap *snapshot, dl bd.Dialog, fresh bool) func(bd.Responsible) []store.Job {
	return func(bd.Responsible) []store.Job {
		if !fresh {
			return nil
		}
		return d.receivedJobs(snap, dl, nil)
	}
}

// receivedJobs appends the greeting and the binding of a dialog taken into
// distribution.
func (d *Distributor) receivedJobs(snap *snapshot, dl bd.Dialog, jobs []store.Job) []store.Job {
	if snap.settings.Replies[bd.DialogReceived] != "" {
		jobs = append(jobs, store.Job{Kind: store.JobReply, Account: dl.Account, Dialog: dl, Situation: bd.DialogReceived})
	}
	if d.cfg.binder != nil && snap.settings.AutoBind && dl.Customer.ID != 0 {
		jobs = append(jobs, store.Job{Kind: store.JobBind, Account: dl.Account, Dialog: dl})
	}
	return jobs
}

// waitReplyJob appends the reply telling why the dialog waits (sent only if
// it still waits when its job runs). It is not put off: on the SQL stores a
// delayed job waits for River's scheduler, which runs every 5 s.
func (d *Distributor) waitReplyJob(snap *snapshot, dl bd.Dialog, why bd.Situation, jobs []store.Job) []store.Job {
	if snap.settings.Replies[why] == "" {
		return jobs
	}
	return append(jobs, store.Job{Kind: store.JobReply, Account: dl.Account, Dialog: dl, Situation: why})
}

// reservation is how an attempt to reserve a dialog ended.
type reservation uint8

const (
	// reserved: tr.Responsible holds the dialog in the store.
	reserved reservation = iota + 1
	// full: every candidate filled up; tr.Situation says so.
	full
	// taken: the dialog's responsible is not the one expected (another
	// process got it first, or it moved).
	taken
	// gone: the dialog closed.
	gone
)

// reserve reserves a slot with tr.Choice.Manager in one atomic store write,
// together with the jobs then gives, asking the strategy again while the
// chosen manager fills up concurrently. The dialog must be held by from
// (nobody when zero). Distribution, the drain and reassignment all reserve
// through here.
func (d *Distributor) reserve(ctx context.Context, snap *snapshot, dl bd.Dialog, tr *Trace, from bd.Responsible, then func(bd.Responsible) []store.Job) (reservation, error) {
	for {
		m := tr.Choice.Manager
		i := slices.IndexFunc(tr.Candidates, func(c strategy.Candidate) bool { return c.Manager == m })
		to := bd.ManagerOf(m)
		err := d.store.Assign(ctx, store.Assignment{
			Account: dl.Account, Dialog: dl.ID, Customer: dl.Customer.ID,
			From: from, To: to, Capacity: tr.Candidates[i].Capacity, At: tr.At, Then: then(to),
		})
		switch {
		case err == nil:
			tr.Responsible = to
			return reserved, nil
		case errors.Is(err, store.ErrClosed):
			return gone, nil
		case errors.Is(err, store.ErrAssigned), errors.Is(err, store.ErrNotFound):
			tr.Responsible = bd.Responsible{}
			if r, err := d.store.Responsible(ctx, dl.Account, dl.ID); err == nil {
				tr.Responsible = r
			}
			return taken, nil
		case errors.Is(err, store.ErrCapacity):
			tr.Retries++
			tr.Removed = append(tr.Removed, Removal{Manager: m, Filter: FilterCapacity, Detail: "filled up concurrently"})
			tr.Candidates = slices.Delete(slices.Clone(tr.Candidates), i, i+1)
			v, err := d.pick(ctx, snap, dl, tr)
			if err != nil {
				return 0, err
			}
			if v == wait {
				return full, nil
			}
		default:
			return 0, fmt.Errorf("distributor: reserve dialog %d for manager %d: %w", dl.ID, m, err)
		}
	}
}

// reserveBot reserves the dialog for the bot in tr.Responsible.
func (d *Distributor) reserveBot(ctx context.Context, dl bd.Dialog, tr *Trace, then []store.Job) (reservation, error) {
	err := d.store.Assign(ctx, store.Assignment{Account: dl.Account, Dialog: dl.ID, Customer: dl.Customer.ID, To: tr.Responsible, At: tr.At, Then: then})
	switch {
	case err == nil:
		return reserved, nil
	case errors.Is(err, store.ErrClosed):
		return gone, nil
	case errors.Is(err, store.ErrAssigned):
		tr.Responsible = bd.Responsible{}
		if r, err := d.store.Responsible(ctx, dl.Account, dl.ID); err == nil {
			tr.Responsible = r
		}
		return taken, nil
	}
	return 0, fmt.Errorf("distributor: reserve dialog %d for %s: %w", dl.ID, tr.Responsible, err)
}

// finish tells MG who holds a dialog reserved in the store — the one MG
// round trip on an assignment's path — and records the outcome. It is the
// one finishing path for managers and bots, new, waiting and reassigned
// dialogs.
func (d *Distributor) finish(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog, tr *Trace) error {
	if err := d.gateway.Assign(ctx, a.id, dl.ID, tr.Responsible); err != nil {
		return d.refused(ctx, a, snap, dl, tr, err)
	}
	if m, ok := tr.Responsible.Manager(); ok && snap.settings.Replies[bd.ManagerAssigned] != "" {
		// Stored only now that MG took it, so that a refused assignment
		// never announces a manager. Should this process die first, the
		// job that reserved the dialog is retried and comes back here.
		reply := store.Job{Kind: store.JobReply, Account: a.id, Dialog: dl, Situation: bd.ManagerAssigned, Manager: m}
		if err := d.store.Submit(ctx, reply); err != nil {
			return fmt.Errorf("distributor: store the %s reply of dialog %d: %w", bd.ManagerAssigned, dl.ID, err)
		}
	}
	if tr.FromQueue {
		if err := d.store.Dequeue(ctx, a.id, dl.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("distributor: dequeue dialog %d: %w", dl.ID, err)
		}
	}
	switch {
	case tr.Reassigned != 0:
		tr.Outcome = OutcomeReassigned
		a.presence.moved(dl, tr.Reassigned, tr.At)
	case tr.Responsible.Kind == bd.BotResponsible:
		tr.Outcome = OutcomeBot
	default:
		tr.Outcome = OutcomeAssigned
		if snap.settings.Reassign != bd.ReassignOff || snap.settings.ReassignAfter > 0 {
			a.presence.noteAssigned(dl, tr.At)
		}
	}
	d.remember(a, *tr)
	if tr.Reassigned != 0 {
		if d.cfg.hooks.Reassigned != nil {
			d.cfg.hooks.Reassigned(a.id, tr.Reassigned, tr.Responsible)
		}
		d.cfg.logger.Info("distributor: dialog reassigned", slog.String("account", string(a.id)), slog.Int64("dialog", int64(dl.ID)),
			slog.Int64("from", int64(tr.Reassigned)), slog.String("to", tr.Responsible.String()), slog.String("why", tr.Why))
	} else if d.cfg.hooks.Assigned != nil {
		opened := dl.OpenedAt
		if opened.IsZero() {
			opened = tr.At
		}
		d.cfg.hooks.Assigned(a.id, tr.Responsible, d.cfg.now().Sub(opened), tr.FromQueue)
	}
	return nil
}

// refused handles MG refusing an assignment reserved in the store. A dialog
// MG reports gone is closed. Otherwise MG keeps what it had: a dialog being
// reassigned goes back to its manager if they have room, and any other
// dialog waits in the queue (put there before the reservation is given back,
// so that no crash leaves it neither held nor waiting) until the queue is
// drained for it again.
func (d *Distributor) refused(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog, tr *Trace, cause error) error {
	if errors.Is(cause, ErrDialogGone) {
		d.cfg.logger.Info("distributor: dialog gone in MessageGateway; closing it", slog.String("account", string(a.id)),
			slog.Int64("dialog", int64(dl.ID)), slog.Any("error", cause))
		tr.Outcome = OutcomeClosed
		d.remember(a, *tr)
		return d.closeDialog(ctx, a, dl.ID, tr.At)
	}
	d.fail(a.id, "gateway.assign", cause)
	// The store follows MG even when the work is being stopped: no
	// reservation is left behind that MG does not know.
	ctx = context.WithoutCancel(ctx)
	if from := tr.Reassigned; from != 0 {
		err := d.store.Assign(ctx, store.Assignment{Account: a.id, Dialog: dl.ID, Customer: dl.Customer.ID,
			From: tr.Responsible, To: bd.ManagerOf(from), Capacity: snap.settings.CapacityOf(from), At: tr.At})
		if err == nil || !errors.Is(err, store.ErrCapacity) {
			if err != nil && !errors.Is(err, store.ErrAssigned) && !errors.Is(err, store.ErrClosed) {
				return errors.Join(cause, err)
			}
			return fmt.Errorf("distributor: MessageGateway refused to move dialog %d to %s (it stays with manager %d): %w", dl.ID, tr.Responsible, from, cause)
		}
		// The old manager filled up meanwhile: the dialog waits instead.
	}
	var then []store.Job
	if !tr.FromQueue && tr.Reassigned == 0 {
		// The customer is greeted and told why they wait.
		then = d.receivedJobs(snap, dl, nil)
		then = d.waitReplyJob(snap, dl, bd.AllManagersBusy, then)
	}
	then = append(then, drainJob(a.id, refusedRetry))
	_, err := d.store.Enqueue(ctx, store.Waiting{Dialog: dl, Reason: bd.AllManagersBusy, Since: dl.OpenedAt}, then...)
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	if err != nil {
		return errors.Join(cause, err)
	}
	if _, err := d.store.Release(ctx, a.id, dl.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return errors.Join(cause, err)
	}
	tr.Outcome, tr.Situation = OutcomeQueued, bd.AllManagersBusy
	d.remember(a, *tr)
	return nil
}

// enqueue puts the dialog in the queue, storing with it the replies it
// causes and a drain (a slot may have freed since the decision).
func (d *Distributor) enqueue(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog, tr *Trace) error {
	if snap.settings.ReturningFirst && tr.LastManager != 0 {
		tr.Priority = 1
	}
	then := d.receivedJobs(snap, dl, nil)
	then = d.waitReplyJob(snap, dl, tr.Situation, then)
	then = append(then, drainJob(a.id, 0))
	added, err := d.store.Enqueue(ctx, store.Waiting{Dialog: dl, Reason: tr.Situation, Priority: tr.Priority, Since: dl.OpenedAt}, then...)
	if errors.Is(err, store.ErrClosed) {
		tr.Outcome = OutcomeClosed
		d.remember(a, *tr)
		return nil
	}
	if err != nil {
		return fmt.Errorf("distributor: enqueue dialog %d: %w", dl.ID, err)
	}
	tr.Outcome = OutcomeQueued
	d.remember(a, *tr)
	if added && d.cfg.hooks.Queued != nil {
		d.cfg.hooks.Queued(a.id, tr.Situation)
	}
	return nil
}
