package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/strategy"
)

// refusedRetry is how long a dialog MG refused to assign waits before the
// queue is drained for it again (on the SQL stores up to 100 ms more: a
// delayed job waits for the store's next look at due jobs).
const refusedRetry = time.Second

// distribute gives a dialog with no responsible to a manager or a bot, or
// puts it in the queue with the right replies: the work of a distribute
// job. It is idempotent. Decisions use the distributor's clock, not the
// event's time: working hours and round robin's last-assigned times must be
// exact, and MG's event times are coarse.
//
// The assignment waits on one MG round trip (the assignment itself); the
// binding it causes is a job stored with the reservation, the greeting and
// the "manager assigned" reply one job stored once MG took it. A dialog
// found reserved already (an earlier attempt reserved it and
// stopped before MG heard of it) is finished: MG is told.
func (d *Distributor) distribute(ctx context.Context, a *account, dl bd.Dialog) error {
	snap := a.snap.Load()
	tr := Trace{Account: a.id, Dialog: dl.ID, Channel: dl.Channel, At: d.cfg.now(), greet: true}
	defer tr.release()
	v, err := d.decide(ctx, snap, dl, tr.At, &tr)
	if err != nil {
		return err
	}
	if v == pickManager {
		// Dialogs already waiting were there first: unless the pool has
		// room for them all and this one too, it joins the queue and the
		// drain hands out free slots oldest first.
		n := tr.waiting
		if !tr.waitingRead {
			var err error
			if n, err = d.store.QueueLen(ctx, a.id); err != nil {
				return fmt.Errorf("distributor: queue length of %s: %w", a.id, err)
			}
		}
		// Those waiting for MG (refused or paused here, or reserved by a
		// drain here and not answered yet) are no claim on the free
		// manager.
		if n > 0 {
			now := time.Now()
			n -= a.refusedWaits.count(now) + a.drainingWaits.count(now)
		}
		if n > 0 && freeSlots(tr.Candidates) <= n {
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
	res, err := d.reserveFor(ctx, snap, dl, tr, v, then)
	if err != nil {
		return err
	}
	return d.conclude(ctx, a, snap, dl, tr, res)
}

// reserveFor is the store's half of assign: the reservation for the bot or
// the chosen manager.
func (d *Distributor) reserveFor(ctx context.Context, snap *snapshot, dl bd.Dialog, tr *Trace, v verdict, then func(bd.Responsible) []store.Job) (reservation, error) {
	if v == toBot {
		return d.reserveBot(ctx, dl, tr, then(tr.Responsible))
	}
	return d.reserve(ctx, snap, dl, tr, bd.Responsible{}, then)
}

// conclude is the rest of assign once the reservation ended as res: MG is
// told, or the dialog queued, and the decision recorded.
func (d *Distributor) conclude(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog, tr *Trace, res reservation) error {
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
// the binding of a dialog new to distribution. (Its greeting and the
// "manager assigned" reply are stored once MG took the assignment, by
// finish; see assignedReply.)
func (d *Distributor) assignedJobs(snap *snapshot, dl bd.Dialog, fresh bool) func(bd.Responsible) []store.Job {
	return func(bd.Responsible) []store.Job {
		if !fresh {
			return nil
		}
		return d.bindJob(snap, dl, nil)
	}
}

// receivedJobs appends the greeting and the binding of a dialog taken into
// distribution.
func (d *Distributor) receivedJobs(snap *snapshot, dl bd.Dialog, jobs []store.Job) []store.Job {
	if snap.settings.Replies[bd.DialogReceived] != "" {
		jobs = append(jobs, store.Job{Kind: store.JobReply, Account: dl.Account, Dialog: dl, Situation: bd.DialogReceived})
	}
	return d.bindJob(snap, dl, jobs)
}

// bindJob appends the binding of the dialog's customer, when the account
// binds customers.
func (d *Distributor) bindJob(snap *snapshot, dl bd.Dialog, jobs []store.Job) []store.Job {
	if d.cfg.binder != nil && snap.settings.AutoBind && dl.Customer.ID != 0 {
		jobs = append(jobs, store.Job{Kind: store.JobBind, Account: dl.Account, Dialog: dl})
	}
	return jobs
}

// assignedReply returns the reply job of a dialog MG gave to manager m: the
// "manager assigned" reply, after the greeting when greet is set (the
// dialog is new to distribution). One job sends both, in order; each
// reply keeps its own claim, so a greeting sent before is not sent again.
// It reports false when the account has neither text.
func (d *Distributor) assignedReply(snap *snapshot, dl bd.Dialog, m bd.ManagerID, greet bool) (store.Job, bool) {
	j := store.Job{Kind: store.JobReply, Account: dl.Account, Dialog: dl, Situation: bd.ManagerAssigned, Manager: m}
	if greet && snap.settings.Replies[bd.DialogReceived] != "" {
		j.First = bd.DialogReceived
	}
	if snap.settings.Replies[bd.ManagerAssigned] == "" {
		j.Situation, j.First = j.First, ""
	}
	return j, j.Situation != ""
}

// waitReplyJob appends the reply telling why the dialog waits (sent only if
// it still waits when its job runs). It is not put off: on the SQL stores a
// delayed job can wait up to 100 ms past its time.
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
//
// A new assignment does not wait behind another one in flight to the same
// manager (another worker or process holding their load in a shared
// database): the store refuses it as busy, the manager is passed over and
// the strategy asked again among the others. With such a store
// ([store.Contended]) a manager another worker of this process is
// reserving with at that moment is passed over the same way, without
// asking the store; with a store whose assignments never wait for one
// another (memory) there is nothing to pass over. Should nobody else be
// left, the passed managers come back and the next attempt waits. A
// returning customer's last manager is always waited for.
func (d *Distributor) reserve(ctx context.Context, snap *snapshot, dl bd.Dialog, tr *Trace, from bd.Responsible, then func(bd.Responsible) []store.Job) (reservation, error) {
	var passed []strategy.Candidate
	mayPass := from.IsZero()
	for {
		m := tr.Choice.Manager
		i := slices.IndexFunc(tr.Candidates, func(c strategy.Candidate) bool { return c.Manager == m })
		to := bd.ManagerOf(m)
		noWait := mayPass && m != tr.LastManager && len(tr.Candidates) > 1
		err := d.assignOnce(ctx, store.Assignment{
			Account: dl.Account, Dialog: dl.ID, Customer: dl.Customer.ID,
			From: from, To: to, Capacity: tr.Candidates[i].Capacity, At: tr.At, Then: then(to),
			NoWait: noWait,
		})
		switch {
		case err == nil:
			tr.Responsible = to
			if p := tr.pool; p != nil && p.index != nil {
				p.index.assigned(m, tr.At)
			}
			snap.released(from) // a moved dialog
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
			tr.Candidates = slices.Delete(tr.Candidates, i, i+1) // in place: the trace's buffer, or its own copy
		case errors.Is(err, store.ErrBusy):
			tr.Passed = append(tr.Passed, m)
			passed = append(passed, tr.Candidates[i])
			tr.Candidates = slices.Delete(tr.Candidates, i, i+1)
		default:
			return 0, fmt.Errorf("distributor: reserve dialog %d for manager %d: %w", dl.ID, m, err)
		}
		v, err := d.pick(ctx, snap, dl, tr)
		if err != nil {
			return 0, err
		}
		if v == wait && tr.partial {
			// The head of the pool's index filled up or is busy: the
			// whole pool is read, once (see index).
			tr.partial, tr.scan = false, true
			passed = nil
			if v, err = d.decide(ctx, snap, dl, tr.At, tr); err != nil {
				return 0, err
			}
		}
		if v == wait && len(passed) > 0 {
			// Only managers busy a moment ago are left: wait for them.
			tr.Candidates = append(tr.Candidates, passed...)
			passed, mayPass = nil, false
			if v, err = d.pick(ctx, snap, dl, tr); err != nil {
				return 0, err
			}
		}
		if v == wait {
			return full, nil
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
	if wait := a.drainPause(); wait > 0 && tr.FromQueue && tr.Reassigned == 0 {
		// MG asked for a pause after this waiting dialog was reserved: it
		// waits again, and nothing goes to MG before the pause is over.
		return d.refused(ctx, a, snap, dl, tr, mgPause(wait))
	}
	if err := d.gateway.Assign(ctx, a.id, dl.ID, tr.Responsible); err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrDialogGone) {
			// Cut short (the job's deadline, a stop): MG may have taken
			// the assignment. The reservation stays, so that nobody else
			// gets the dialog meanwhile, and the job's retry finishes it
			// (MG is told again). The error must not read as a context
			// error, so that the attempt counts and the retry knows.
			return fmt.Errorf("distributor: assigning dialog %d to %s was cut short and MG may have taken it; the retry finishes it: %v", dl.ID, tr.Responsible, err)
		}
		return d.refused(ctx, a, snap, dl, tr, err)
	}
	if m, ok := tr.Responsible.Manager(); ok {
		// Stored only now that MG took it, so that a refused assignment
		// never announces a manager. Should this process die first, the
		// job that reserved the dialog is retried and comes back here.
		if reply, ok := d.assignedReply(snap, dl, m, tr.greet); ok {
			if err := d.store.Submit(ctx, reply); err != nil {
				return fmt.Errorf("distributor: store the replies of dialog %d: %w", dl.ID, err)
			}
		}
	}
	if tr.FromQueue {
		if err := d.store.Dequeue(ctx, a.id, dl.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("distributor: dequeue dialog %d: %w", dl.ID, err)
		}
		a.refusedWaits.remove(dl.ID)
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
	var ours mgPause
	if !errors.As(cause, &ours) { // a pause MG asked for before is not news
		d.fail(a.id, "gateway.assign", cause)
	}
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
	retry := refusedRetry
	if ours > 0 {
		tr.slowDown = true
		retry = time.Duration(ours) // the pause goes on as MG asked, no longer
	} else if delay, ok := retryAfter(cause); ok {
		tr.slowDown = true
		retry = max(retry, delay)
		a.pauseDrain(retry)
	}
	then = append(then, drainJob(a.id, retry))
	_, err := d.store.Enqueue(ctx, store.Waiting{Dialog: dl, Reason: bd.AllManagersBusy, Priority: queuePriority(snap, tr), Since: dl.OpenedAt}, then...)
	if errors.Is(err, store.ErrClosed) {
		return nil
	}
	if err != nil {
		return errors.Join(cause, err)
	}
	if prev, err := d.store.Release(ctx, a.id, dl.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return errors.Join(cause, err)
	} else if err == nil {
		snap.released(prev)
	}
	a.refusedWaits.add(dl.ID, time.Now())
	tr.Outcome, tr.Situation = OutcomeQueued, bd.AllManagersBusy
	tr.refused = true
	d.remember(a, *tr)
	return nil
}

// freeSlots counts the open dialogs the candidates may still take (all
// of the pool's managers with room, or, decided over an index, the first
// of them: then fewer than the pool has).
func freeSlots(cs []strategy.Candidate) int {
	n := 0
	for _, c := range cs {
		n += max(c.Capacity-c.Open, 0)
	}
	return n
}

// queuePriority is a waiting dialog's place among the queue's groups:
// priority customers (by retailCRM segment or tag, tr.Priority from the
// decision) first, then, within each group, returning customers (with
// Settings.ReturningFirst).
func queuePriority(snap *snapshot, tr *Trace) int {
	p := 2 * snap.settings.Priority(tr.profile.Segments, tr.profile.Tags)
	if snap.settings.ReturningFirst && tr.LastManager != 0 {
		p++
	}
	return p
}

// enqueue puts the dialog in the queue, storing with it the replies it
// causes and a drain (a slot may have freed since the decision).
func (d *Distributor) enqueue(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog, tr *Trace) error {
	tr.Priority = queuePriority(snap, tr)
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
	d.wakeWhenDue(a, tr)
	if added && d.cfg.hooks.Queued != nil {
		d.cfg.hooks.Queued(a.id, tr.Situation)
	}
	return nil
}

// assignOnce asks the store for one assignment. Over a contended store it
// counts the reservation in progress with a.To meanwhile, and refuses with
// store.ErrBusy, without asking the store, one that may pass a manager
// over (a.NoWait) while another worker of this process reserves with them.
func (d *Distributor) assignOnce(ctx context.Context, a store.Assignment) error {
	if !d.contended {
		return d.store.Assign(ctx, a)
	}
	m, _ := a.To.Manager()
	busy := d.reserving.begin(m)
	defer d.reserving.end(m)
	if busy && a.NoWait {
		return store.ErrBusy
	}
	return d.store.Assign(ctx, a)
}

// reservations counts, per manager, the reservations this Distributor's
// workers are making with them at this moment, so that concurrent
// decisions (which read the same loads and so tend to choose the same
// manager) spread over the managers instead of queueing on one.
type reservations struct {
	mu sync.Mutex
	n  map[bd.ManagerID]int
}

// begin counts a reservation with m and reports whether another one was
// in progress already. Every begin is followed by an end.
func (r *reservations) begin(m bd.ManagerID) (busy bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = make(map[bd.ManagerID]int)
	}
	busy = r.n[m] > 0
	r.n[m]++
	return busy
}

// end uncounts a reservation begin counted.
func (r *reservations) end(m bd.ManagerID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n[m]--; r.n[m] <= 0 {
		delete(r.n, m)
	}
}
