package distributor

import (
	"context"
	"errors"
	"fmt"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// Resync makes the store converge to MessageGateway's truth after events
// may have been missed (the MG event stream has no replay: call it after
// every websocket (re)connect and at start-up) with every open dialog of the
// account as MG reports it:
//
//   - a dialog the store holds but MG lists with another responsible, or
//     none, is assigned in MG as the store holds it: MG's list may predate
//     an assignment made meanwhile, and the store's atomic record is what
//     keeps capacity and single ownership (a change a person made while no
//     process listened is overridden; changes seen as events are followed);
//   - a dialog only MG has a responsible for is recorded as MG says;
//   - an open dialog nobody is responsible for, and that does not wait yet,
//     is distributed (a distribute job is stored for it);
//   - a dialog the store holds for a roster manager, or has waiting, that MG
//     no longer lists as open was closed meanwhile: its load is released and
//     it leaves the queue. Only dialogs with ids up to the highest listed id
//     count: MG numbers dialogs in order, and a newer one may have opened
//     (and been assigned by another process) after MG was read.
//
// Then the queue is drained (a drain job). Errors of single dialogs are joined; the
// others are still processed.
func (d *Distributor) Resync(ctx context.Context, open []OpenDialog) error {
	id := d.id
	a, err := d.account(ctx)
	if err != nil {
		return err
	}
	now := d.cfg.now()
	var errs []error
	isOpen := make(map[bd.DialogID]bool, len(open))
	var newest bd.DialogID
	for _, o := range open {
		if err := checkDialog(withAccount(o.Dialog, id)); err != nil {
			errs = append(errs, err)
			continue
		}
		isOpen[o.Dialog.ID] = true
		newest = max(newest, o.Dialog.ID)
	}
	gone := func(dl bd.DialogID) bool { return dl <= newest && !isOpen[dl] }
	// Dialogs closed while nobody listened.
	snap := a.snap.Load()
	for m := range snap.roster {
		held, err := d.store.DialogsOf(ctx, id, m)
		if err != nil {
			errs = append(errs, fmt.Errorf("dialogs of manager %d: %w", m, err))
			continue
		}
		for _, dl := range held {
			if gone(dl) {
				errs = append(errs, d.closeDialog(ctx, a, dl, now))
			}
		}
	}
	waiting, err := d.store.Waiting(ctx, id, 1<<30)
	if err != nil {
		errs = append(errs, err)
	}
	queued := make(map[bd.DialogID]bool, len(waiting))
	for _, w := range waiting {
		queued[w.Dialog.ID] = true
		if gone(w.Dialog.ID) {
			errs = append(errs, d.closeDialog(ctx, a, w.Dialog.ID, now))
		}
	}
	// Open dialogs: follow MG's responsible, distribute the unassigned.
	var distribute []store.Job
	for _, o := range open {
		dl := withAccount(o.Dialog, id)
		if !isOpen[dl.ID] {
			continue
		}
		if dl.OpenedAt.IsZero() {
			dl.OpenedAt = now
		}
		cur, err := d.store.Responsible(ctx, id, dl.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		switch {
		case cur == o.Responsible && !cur.IsZero():
		case !cur.IsZero():
			// The store holds the dialog and MG's list says otherwise. The
			// list may be older than an assignment made meanwhile (by this
			// or another process), so MG follows the store: its atomic
			// record is what keeps capacity and single ownership.
			errs = append(errs, d.push(ctx, a, dl, cur, now))
		case !o.Responsible.IsZero():
			errs = append(errs, d.assignedInMG(ctx, a, dl, o.Responsible, now))
		case !queued[dl.ID]:
			// Whether or not its event was claimed before: a distribution
			// that never finished is asked for again (a distribute job is
			// unique while pending, and idempotent).
			distribute = append(distribute, distributeJob(dl))
		}
	}
	errs = append(errs, d.store.Submit(ctx, append(distribute, drainJob(id, 0))...))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("distributor: resync %s: %w", id, err)
	}
	return nil
}

// push tells MG the responsible the store holds for a dialog.
func (d *Distributor) push(ctx context.Context, a *account, dl bd.Dialog, to bd.Responsible, now time.Time) error {
	err := d.gateway.Assign(ctx, a.id, dl.ID, to)
	if errors.Is(err, ErrDialogGone) {
		return d.closeDialog(ctx, a, dl.ID, now)
	}
	if err != nil {
		return fmt.Errorf("distributor: tell MG that %s holds dialog %d: %w", to, dl.ID, err)
	}
	return nil
}

func withAccount(dl bd.Dialog, id bd.AccountID) bd.Dialog {
	if dl.Account == "" {
		dl.Account = id
	}
	return dl
}
