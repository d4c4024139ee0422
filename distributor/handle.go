package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/strategy"
)

// Handle acts on one event. It is safe to call concurrently, also from
// several processes sharing the store, and to deliver an event more than
// once: each is acted on once.
//
// A malformed event returns an error wrapping ErrBadEvent and changes
// nothing; an event of an account not in the store returns ErrUnknownAccount.
// Other errors (store, gateway) leave the store consistent: a dialog that
// could not be assigned waits in the queue and is retried by the next drain.
func (d *Distributor) Handle(ctx context.Context, ev Event) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if err := checkEvent(ev); err != nil {
		return err
	}
	a, err := d.account(ctx, ev.Account)
	if err != nil {
		return err
	}
	at := ev.At
	if at.IsZero() {
		at = d.cfg.now()
	}
	dl := ev.Dialog
	if dl.OpenedAt.IsZero() {
		dl.OpenedAt = at
	}
	switch ev.Kind {
	case DialogOpened:
		first, err := d.store.ClaimEvent(ctx, a.id, openedKey(dl.ID), at)
		if err != nil || !first {
			return err
		}
		return d.distribute(ctx, a, dl)
	case CustomerMessage:
		a.presence.noteMessage(dl.ID, true)
		return d.customerMessage(ctx, a, dl, ev.MessageID, at)
	case ManagerMessage:
		a.presence.noteMessage(dl.ID, false)
		return nil
	case DialogClosed:
		return d.closeDialog(ctx, a, dl.ID, at)
	case DialogAssigned:
		return d.assignedInMG(ctx, a, dl, ev.Responsible, at)
	case ManagerChanged:
		return d.managerChanged(ctx, a, ev.Manager)
	}
	return fmt.Errorf("%w: unknown kind %d", ErrBadEvent, ev.Kind)
}

func checkEvent(ev Event) error {
	if ev.Account == "" {
		return fmt.Errorf("%w: %s event without an account", ErrBadEvent, ev.Kind)
	}
	switch ev.Kind {
	case DialogOpened, CustomerMessage, ManagerMessage, DialogClosed, DialogAssigned:
		if ev.Dialog.ID <= 0 {
			return fmt.Errorf("%w: %s event: dialog id must be positive, got %d", ErrBadEvent, ev.Kind, ev.Dialog.ID)
		}
		if ev.Dialog.Account != "" && ev.Dialog.Account != ev.Account {
			return fmt.Errorf("%w: %s event of account %q carries a dialog of account %q", ErrBadEvent, ev.Kind, ev.Account, ev.Dialog.Account)
		}
		if ev.Kind == DialogAssigned {
			switch ev.Responsible.Kind {
			case bd.Nobody:
			case bd.ManagerResponsible, bd.BotResponsible:
				if ev.Responsible.ID <= 0 {
					return fmt.Errorf("%w: dialog_assigned event: responsible id must be positive, got %d", ErrBadEvent, ev.Responsible.ID)
				}
			default:
				return fmt.Errorf("%w: dialog_assigned event: unknown responsible kind %d", ErrBadEvent, ev.Responsible.Kind)
			}
		}
	case ManagerChanged:
		if ev.Manager.ID <= 0 {
			return fmt.Errorf("%w: manager_changed event: manager id must be positive, got %d", ErrBadEvent, ev.Manager.ID)
		}
		if ev.Manager.Status != "" && !ev.Manager.Status.Valid() {
			return fmt.Errorf("%w: manager_changed event: unknown status %q", ErrBadEvent, ev.Manager.Status)
		}
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrBadEvent, ev.Kind)
	}
	return nil
}

// openedKey is the event key claimed once per dialog when its distribution
// starts (and when it closes, so a late duplicate dialog_opened is ignored).
func openedKey(id bd.DialogID) string { return "opened:" + strconv.FormatInt(int64(id), 10) }

func (d *Distributor) customerMessage(ctx context.Context, a *account, dl bd.Dialog, msg int64, at time.Time) error {
	if msg != 0 {
		first, err := d.store.ClaimEvent(ctx, a.id, "message:"+strconv.FormatInt(msg, 10), at)
		if err != nil || !first {
			return err
		}
	}
	if _, err := d.store.Responsible(ctx, a.id, dl.ID); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// A message on a dialog nobody distributed yet (its dialog_opened was
	// missed or is late) starts distribution; on a dialog distributed before
	// (waiting, or closed) there is nothing to do.
	first, err := d.store.ClaimEvent(ctx, a.id, openedKey(dl.ID), at)
	if err != nil || !first {
		return err
	}
	return d.distribute(ctx, a, dl)
}

// distribute gives a dialog with no responsible to a manager or a bot, or
// puts it in the queue with the right reply. It is idempotent. Decisions use
// the distributor's clock, not the event's time: working hours and round
// robin's last-assigned times must be exact, and MG's event times are
// coarse.
func (d *Distributor) distribute(ctx context.Context, a *account, dl bd.Dialog) error {
	at := d.cfg.now()
	dl.Account = a.id
	snap := a.snap.Load()
	var tr Trace
	defer tr.release()
	if err := d.decide(ctx, snap, dl, at, &tr); err != nil {
		return err
	}
	if tr.Outcome == OutcomeBot {
		return d.assignBot(ctx, a, dl, &tr, false)
	}
	if tr.Outcome == "" {
		// Dialogs already waiting were there first: this one joins the queue
		// and the drain hands out free slots oldest first.
		n, err := d.store.QueueLen(ctx, a.id)
		if err != nil {
			return fmt.Errorf("distributor: queue length of %s: %w", a.id, err)
		}
		if n > 0 {
			tr.Outcome, tr.Situation = OutcomeQueued, bd.AllManagersBusy
		} else if err := d.reserve(ctx, snap, dl, at, &tr); err != nil {
			return err
		}
	}
	switch tr.Outcome {
	case OutcomeAssigned:
		return d.assigned(ctx, a, snap, dl, &tr)
	case OutcomeAlreadyAssigned, OutcomeClosed:
		d.remember(a, tr)
		return nil
	}
	return d.enqueue(ctx, a, snap, dl, &tr)
}

// received greets the customer of a dialog taken into distribution and
// starts binding them.
func (d *Distributor) received(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog) {
	d.reply(ctx, a, snap, dl, bd.DialogReceived, bd.Manager{})
	d.bind(a, snap, dl.Customer)
}

// reserve reserves a slot with the chosen manager in the store, asking the
// strategy again when the manager filled up concurrently. It sets
// tr.Outcome to assigned, already assigned, or queued.
func (d *Distributor) reserve(ctx context.Context, snap *snapshot, dl bd.Dialog, at time.Time, tr *Trace) error {
	for {
		m := tr.Choice.Manager
		i := slices.IndexFunc(tr.Candidates, func(c strategy.Candidate) bool { return c.Manager == m })
		err := d.store.Assign(ctx, store.Assignment{
			Account: dl.Account, Dialog: dl.ID, Customer: dl.Customer.ID,
			To: bd.ManagerOf(m), Capacity: tr.Candidates[i].Capacity, At: at,
		})
		switch {
		case err == nil:
			tr.Outcome, tr.Responsible = OutcomeAssigned, bd.ManagerOf(m)
			return nil
		case errors.Is(err, store.ErrClosed):
			tr.Outcome = OutcomeClosed
			return nil
		case errors.Is(err, store.ErrAssigned):
			r, err := d.store.Responsible(ctx, dl.Account, dl.ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			tr.Outcome, tr.Responsible = OutcomeAlreadyAssigned, r
			return nil
		case errors.Is(err, store.ErrCapacity):
			tr.Retries++
			tr.Removed = append(tr.Removed, Removal{Manager: m, Filter: FilterCapacity, Detail: "filled up concurrently"})
			tr.Candidates = slices.Delete(slices.Clone(tr.Candidates), i, i+1)
			if len(tr.Candidates) == 0 {
				tr.Choice = strategy.Choice{}
				tr.Outcome, tr.Situation = OutcomeQueued, bd.AllManagersBusy
				return nil
			}
			if err := d.pick(ctx, snap, dl, tr); err != nil {
				return err
			}
			if tr.Outcome != "" {
				return nil
			}
		default:
			return fmt.Errorf("distributor: reserve dialog %d for manager %d: %w", dl.ID, m, err)
		}
	}
}

// assigned finishes an assignment reserved in the store: MG is told, the
// customer is told, the dialog leaves the queue. If MG refuses, the slot is
// given back and the dialog waits.
func (d *Distributor) assigned(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog, tr *Trace) error {
	if err := d.gateway.Assign(ctx, a.id, dl.ID, tr.Responsible); err != nil {
		return d.gatewayFailed(ctx, a, dl, tr, err)
	}
	if tr.FromQueue {
		if err := d.store.Dequeue(ctx, a.id, dl.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			d.fail(a.id, "dequeue", err)
		}
	} else {
		d.received(ctx, a, snap, dl) // greeted after MG took it: the reply is not on the assignment's path
	}
	if snap.settings.Reassign != bd.ReassignOff || snap.settings.ReassignAfter > 0 {
		a.presence.noteAssigned(dl, tr.At)
	}
	d.remember(a, *tr)
	if d.cfg.hooks.Assigned != nil {
		d.cfg.hooks.Assigned(a.id, tr.Responsible, d.cfg.now().Sub(dl.OpenedAt), tr.FromQueue)
	}
	m, _ := tr.Responsible.Manager()
	mgr, ok := snap.roster[m]
	if !ok {
		mgr = bd.Manager{ID: m}
	}
	d.reply(ctx, a, snap, dl, bd.ManagerAssigned, mgr)
	return nil
}

func (d *Distributor) gatewayFailed(ctx context.Context, a *account, dl bd.Dialog, tr *Trace, cause error) error {
	if errors.Is(cause, ErrDialogGone) {
		d.cfg.logger.Info("distributor: dialog gone in MessageGateway; closing it", slog.String("account", string(a.id)),
			slog.Int64("dialog", int64(dl.ID)), slog.Any("error", cause))
		return d.closeDialog(ctx, a, dl.ID, tr.At)
	}
	d.fail(a.id, "gateway.assign", cause)
	if _, err := d.store.Release(ctx, a.id, dl.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return errors.Join(cause, err)
	}
	if !tr.FromQueue {
		added, err := d.store.Enqueue(ctx, store.Waiting{Dialog: dl, Reason: bd.AllManagersBusy, Since: dl.OpenedAt})
		if err != nil && !errors.Is(err, store.ErrClosed) {
			return errors.Join(cause, err)
		}
		if added && tr.Outcome == OutcomeAssigned {
			d.received(ctx, a, a.snap.Load(), dl) // the customer is greeted while the dialog waits
		}
	}
	return fmt.Errorf("distributor: MessageGateway refused to assign dialog %d to %s (the dialog waits): %w", dl.ID, tr.Responsible, cause)
}

func (d *Distributor) assignBot(ctx context.Context, a *account, dl bd.Dialog, tr *Trace, fromQueue bool) error {
	err := d.store.Assign(ctx, store.Assignment{Account: a.id, Dialog: dl.ID, Customer: dl.Customer.ID, To: tr.Responsible, At: tr.At})
	if errors.Is(err, store.ErrAssigned) || errors.Is(err, store.ErrClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("distributor: reserve dialog %d for %s: %w", dl.ID, tr.Responsible, err)
	}
	if err := d.gateway.Assign(ctx, a.id, dl.ID, tr.Responsible); err != nil {
		return d.gatewayFailed(ctx, a, dl, tr, err)
	}
	if fromQueue {
		if err := d.store.Dequeue(ctx, a.id, dl.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			d.fail(a.id, "dequeue", err)
		}
	}
	d.remember(a, *tr)
	if d.cfg.hooks.Assigned != nil {
		d.cfg.hooks.Assigned(a.id, tr.Responsible, d.cfg.now().Sub(dl.OpenedAt), fromQueue)
	}
	return nil
}

// enqueue puts the dialog in the queue, lets the drain hand out any free
// slot, and replies with the queue situation if the dialog still waits.
func (d *Distributor) enqueue(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog, tr *Trace) error {
	if snap.settings.ReturningFirst && tr.LastManager != 0 {
		tr.Priority = 1
	}
	added, err := d.store.Enqueue(ctx, store.Waiting{Dialog: dl, Reason: tr.Situation, Priority: tr.Priority, Since: dl.OpenedAt})
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
	if !added {
		return nil
	}
	if d.cfg.hooks.Queued != nil {
		d.cfg.hooks.Queued(a.id, tr.Situation)
	}
	if !tr.FromQueue {
		d.received(ctx, a, snap, dl)
	}
	// A slot may have freed between the decision and the enqueue: drain.
	if err := d.drain(ctx, a); err != nil {
		return err
	}
	if _, err := d.store.Responsible(ctx, a.id, dl.ID); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	d.reply(ctx, a, snap, dl, tr.Situation, bd.Manager{})
	return nil
}

// reply sends the account's text for situation s into the dialog, at most
// once per (dialog, situation). Failures are reported, not returned: a
// missing reply never blocks distribution.
func (d *Distributor) reply(ctx context.Context, a *account, snap *snapshot, dl bd.Dialog, s bd.Situation, m bd.Manager) {
	text := snap.settings.Replies[s]
	if text == "" {
		return
	}
	first, err := d.store.ClaimReply(ctx, a.id, dl.ID, s)
	if err != nil {
		d.fail(a.id, "claim reply", err)
		return
	}
	if !first {
		return
	}
	if err := d.cfg.replier.Reply(ctx, reply.Request{Dialog: dl, Situation: s, Text: text, Manager: m}); err != nil {
		d.fail(a.id, "reply", fmt.Errorf("%s reply to dialog %d: %w", s, dl.ID, err))
		if err := d.store.ReleaseReply(ctx, a.id, dl.ID, s); err != nil {
			d.fail(a.id, "release reply", err)
		}
		return
	}
	if d.cfg.hooks.Replied != nil {
		d.cfg.hooks.Replied(a.id, s)
	}
}

// bind links the customer to a retailCRM customer in the background when the
// account asks for it. Distribution never waits for the CRM.
func (d *Distributor) bind(a *account, snap *snapshot, c bd.Customer) {
	if d.cfg.binder == nil || !snap.settings.AutoBind || c.ID == 0 || d.closed.Load() {
		return
	}
	d.binds.Add(1)
	go func() {
		defer d.binds.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := d.cfg.binder.Bind(ctx, binding.Request{Account: a.id, Customer: c, Create: snap.settings.AutoCreate})
		if err != nil {
			if !errors.Is(err, binding.ErrNoMatch) {
				d.fail(a.id, "bind", fmt.Errorf("customer %d: %w", c.ID, err))
			}
			return
		}
		d.cfg.logger.Debug("distributor: customer bound", slog.String("account", string(a.id)),
			slog.Int64("customer", int64(c.ID)), slog.Int64("crm_customer", res.CRMCustomer), slog.String("rule", string(res.Rule)))
	}()
}

func (d *Distributor) closeDialog(ctx context.Context, a *account, id bd.DialogID, at time.Time) error {
	freed, err := d.close(ctx, a, id, at)
	if err != nil || !freed {
		return err
	}
	return d.drain(ctx, a)
}

// close closes the dialog in the store and reports whether a manager's slot
// freed; the caller drains the queue (once, however many it closes).
func (d *Distributor) close(ctx context.Context, a *account, id bd.DialogID, at time.Time) (freed bool, err error) {
	prev, err := d.store.Close(ctx, a.id, id, at)
	if err != nil {
		return false, fmt.Errorf("distributor: close dialog %d: %w", id, err)
	}
	a.presence.forget(id)
	_, freed = prev.Manager()
	return freed, nil
}

// assignedInMG makes the store follow MG when a person (or another system)
// changed the responsible. The echo of the distributor's own assignment is a
// no-op. A dialog a person unassigned is distributed again.
func (d *Distributor) assignedInMG(ctx context.Context, a *account, dl bd.Dialog, to bd.Responsible, at time.Time) error {
	cur, err := d.store.Responsible(ctx, a.id, dl.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if cur == to {
		return nil
	}
	prev, err := d.store.Record(ctx, store.Assignment{Account: a.id, Dialog: dl.ID, Customer: dl.Customer.ID, To: to, At: at})
	if errors.Is(err, store.ErrClosed) {
		return nil // a late report about a closed dialog
	}
	if err != nil {
		return fmt.Errorf("distributor: record responsible of dialog %d: %w", dl.ID, err)
	}
	if !to.IsZero() {
		if err := d.store.Dequeue(ctx, a.id, dl.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	d.cfg.logger.Info("distributor: responsible changed in MessageGateway", slog.String("account", string(a.id)),
		slog.Int64("dialog", int64(dl.ID)), slog.String("from", prev.String()), slog.String("to", to.String()))
	if to.IsZero() {
		if err := d.distribute(ctx, a, dl); err != nil {
			return err
		}
	}
	if _, ok := prev.Manager(); ok {
		return d.drain(ctx, a)
	}
	return nil
}

func (d *Distributor) managerChanged(ctx context.Context, a *account, m bd.Manager) error {
	old, cur, err := d.update(a, func(_ *bd.Settings, roster map[bd.ManagerID]bd.Manager) {
		if prev, ok := roster[m.ID]; ok && m.Status == "" {
			m.Status = prev.Status // an MG presence event carries no CRM status
		}
		roster[m.ID] = m
	})
	if err != nil {
		return err
	}
	mode := cur.settings.Availability
	was, known := old.roster[m.ID]
	wasAvailable := known && available(mode, was)
	switch now := available(mode, m); {
	case now && !wasAvailable:
		a.back(m.ID)
		return d.drain(ctx, a)
	case !now && wasAvailable:
		return d.unavailable(ctx, a, cur, m.ID, d.cfg.now())
	}
	return nil
}
