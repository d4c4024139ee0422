package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// Handle accepts one event: it stores the work the event causes (see
// [store.Jobs]) and returns; the distributor's workers do the work. When
// Handle returns nil the event's effect is certain: a failure of the store,
// MessageGateway or this process only delays it. Handle waits on the store
// only, never on MessageGateway, so events of other dialogs never wait
// behind an assignment.
//
// It is safe to call concurrently, also from several processes sharing the
// store, and to deliver an event more than once: each is acted on once.
//
// A malformed event, or one of another account (Event.Account may be empty,
// meaning the distributor's), returns an error wrapping ErrBadEvent and
// changes nothing; when the account is not in the store, Handle returns
// ErrUnknownAccount.
// A store error means the event was not accepted: deliver it again.
func (d *Distributor) Handle(ctx context.Context, ev Event) error {
	if d.isClosed() {
		return ErrClosed
	}
	if err := d.sameAccount("event", ev.Account); err != nil {
		return err
	}
	ev.Account = d.id
	if err := checkEvent(ev); err != nil {
		return err
	}
	a, err := d.account(ctx)
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
	dl.Account = a.id
	switch ev.Kind {
	case DialogOpened, CustomerMessage:
		// A message on a dialog nobody distributed yet (its dialog_opened
		// was missed or is late) starts distribution; on a dialog
		// distributed before there is nothing to do.
		if ev.Kind == CustomerMessage {
			a.presence.noteMessage(dl.ID, true)
		}
		_, err := d.store.ClaimEvent(ctx, a.id, openedKey(dl.ID), at, distributeJob(dl))
		return err
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
// is first asked for (by dialog_opened or a customer's message).
func openedKey(id bd.DialogID) string {
	var b [32]byte
	return string(strconv.AppendInt(append(b[:0], "opened:"...), int64(id), 10))
}

// distributeJob asks for the dialog to be distributed.
func distributeJob(dl bd.Dialog) store.Job {
	return store.Job{Kind: store.JobDistribute, Account: dl.Account, Dialog: dl}
}

// drainJob asks for the account's waiting dialogs to get free slots.
func drainJob(id bd.AccountID, after time.Duration) store.Job {
	return store.Job{Kind: store.JobDrain, Account: id, Delay: after}
}

// closeDialog closes the dialog in the store and, in the same step, asks
// for the queue to be drained if dialogs wait: a manager's slot may have
// freed. (A dialog queued afterwards is stored with a drain of its own.)
func (d *Distributor) closeDialog(ctx context.Context, a *account, id bd.DialogID, at time.Time) error {
	drain := drainJob(a.id, 0)
	drain.IfWaiting = true
	prev, err := d.store.Close(ctx, a.id, id, at, drain)
	if err != nil {
		return fmt.Errorf("distributor: close dialog %d: %w", id, err)
	}
	a.snap.Load().released(prev)
	a.presence.forget(id)
	a.refusedWaits.remove(id)
	return nil
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
	// A dialog a person unassigned is distributed again; a manager's slot
	// may have freed.
	then := []store.Job{drainJob(a.id, 0)}
	if to.IsZero() {
		then = append(then, distributeJob(dl))
	}
	prev, err := d.store.Record(ctx, store.Assignment{Account: a.id, Dialog: dl.ID, Customer: dl.Customer.ID, To: to, At: at, Then: then})
	if errors.Is(err, store.ErrClosed) {
		return nil // a late report about a closed dialog
	}
	if err != nil {
		return fmt.Errorf("distributor: record responsible of dialog %d: %w", dl.ID, err)
	}
	a.snap.Load().released(prev)
	if !to.IsZero() {
		if err := d.store.Dequeue(ctx, a.id, dl.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	d.cfg.logger.Info("distributor: responsible changed in MessageGateway", slog.String("account", string(a.id)),
		slog.Int64("dialog", int64(dl.ID)), slog.String("from", prev.String()), slog.String("to", to.String()))
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
		return d.store.Submit(ctx, drainJob(a.id, 0))
	case !now && wasAvailable:
		return d.unavailable(ctx, a, cur, m.ID, d.cfg.now())
	}
	return nil
}
