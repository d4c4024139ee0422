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

// activity is what the distributor saw of one dialog's conversation. It is
// kept in memory, per process: every process receives the same MG events,
// so each knows it. After a restart, a dialog whose messages were not seen
// counts as unanswered with the customer's message last: the customer
// opened it and no answer was observed. Assignment times are noted only
// while the account reassigns at all; dialogs assigned before ReassignAfter
// was switched on are not timed out.
type activity struct {
	dialog           bd.Dialog
	answered         bool // a manager or bot wrote
	lastFromCustomer bool
	assignedAt       time.Time // when its current manager got it; zero if unknown
	left             []bd.ManagerID
}

// presence tracks conversations and managers who became unavailable, for
// reassignment.
type presence struct {
	mu        sync.Mutex
	dialogs   map[bd.DialogID]*activity
	awaySince map[bd.ManagerID]time.Time
}

func (p *presence) dialog(id bd.DialogID) *activity {
	if p.dialogs == nil {
		p.dialogs = make(map[bd.DialogID]*activity)
	}
	a := p.dialogs[id]
	if a == nil {
		a = &activity{lastFromCustomer: true}
		p.dialogs[id] = a
	}
	return a
}

func (p *presence) noteMessage(id bd.DialogID, fromCustomer bool) {
	p.mu.Lock()
	a := p.dialog(id)
	a.lastFromCustomer = fromCustomer
	if !fromCustomer {
		a.answered = true
	}
	p.mu.Unlock()
}

func (p *presence) noteAssigned(dl bd.Dialog, at time.Time) {
	p.mu.Lock()
	a := p.dialog(dl.ID)
	a.dialog, a.assignedAt = dl, at
	p.mu.Unlock()
}

// knownDialog returns the dialog as last seen, if it was.
func (d *Distributor) knownDialog(a *account, id bd.DialogID) (bd.Dialog, bool) {
	a.presence.mu.Lock()
	defer a.presence.mu.Unlock()
	if act := a.presence.dialogs[id]; act != nil && act.dialog.ID != 0 {
		return act.dialog, true
	}
	return bd.Dialog{}, false
}

func (p *presence) forget(id bd.DialogID) {
	p.mu.Lock()
	delete(p.dialogs, id)
	p.mu.Unlock()
}

// movable reports whether a dialog moves under the mode, and the managers
// it must not go back to.
func (p *presence) movable(id bd.DialogID, mode bd.ReassignMode) (bool, []bd.ManagerID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.dialogs[id]
	if a == nil {
		return mode != bd.ReassignOff, nil
	}
	switch mode {
	case bd.ReassignUncompleted:
		return a.lastFromCustomer, slices.Clone(a.left)
	case bd.ReassignNew:
		return !a.answered, slices.Clone(a.left)
	}
	return false, nil
}

// unavailable notes that manager m stopped being available at t and
// reports whether reassignment is due now (no grace).
func (d *Distributor) unavailable(ctx context.Context, a *account, snap *snapshot, m bd.ManagerID, at time.Time) error {
	if snap.settings.Reassign == bd.ReassignOff {
		return nil
	}
	if snap.settings.PresenceGrace > 0 {
		a.presence.mu.Lock()
		if _, ok := a.presence.awaySince[m]; !ok {
			if a.presence.awaySince == nil {
				a.presence.awaySince = make(map[bd.ManagerID]time.Time)
			}
			a.presence.awaySince[m] = at
		}
		a.presence.mu.Unlock()
		return nil
	}
	return d.reassignFrom(ctx, a, m, "manager unavailable")
}

// back notes that manager m is available again: a flap within the grace
// window triggers nothing.
func (a *account) back(m bd.ManagerID) {
	a.presence.mu.Lock()
	delete(a.presence.awaySince, m)
	a.presence.mu.Unlock()
}

// reassignDue moves the dialogs of managers unavailable longer than the
// grace window, and dialogs nobody answered within ReassignAfter.
func (d *Distributor) reassignDue(ctx context.Context, a *account) error {
	snap := a.snap.Load()
	now := d.cfg.now()
	var errs []error
	if snap.settings.Reassign != bd.ReassignOff {
		a.presence.mu.Lock()
		var due []bd.ManagerID
		for m, since := range a.presence.awaySince {
			if now.Sub(since) >= snap.settings.PresenceGrace {
				due = append(due, m)
			}
		}
		a.presence.mu.Unlock()
		slices.Sort(due)
		for _, m := range due {
			if mgr, ok := snap.roster[m]; ok && available(snap.settings.Availability, mgr) {
				a.back(m)
				continue
			}
			if err := d.reassignFrom(ctx, a, m, "manager unavailable"); err != nil {
				errs = append(errs, err)
				continue
			}
			a.back(m)
		}
	}
	if after := snap.settings.ReassignAfter; after > 0 {
		a.presence.mu.Lock()
		var late []bd.DialogID
		for id, act := range a.presence.dialogs {
			if !act.answered && !act.assignedAt.IsZero() && now.Sub(act.assignedAt) >= after {
				late = append(late, id)
			}
		}
		a.presence.mu.Unlock()
		slices.Sort(late)
		for _, id := range late {
			r, err := d.store.Responsible(ctx, a.id, id)
			if err != nil {
				if !errors.Is(err, store.ErrNotFound) {
					errs = append(errs, err)
				}
				continue
			}
			if m, ok := r.Manager(); ok {
				if _, err := d.reassign(ctx, a, a.snap.Load(), id, m, fmt.Sprintf("no answer within %s", after)); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// reassignFrom moves manager m's dialogs that the account's mode selects to
// other eligible managers.
func (d *Distributor) reassignFrom(ctx context.Context, a *account, m bd.ManagerID, why string) error {
	snap := a.snap.Load()
	held, err := d.store.DialogsOf(ctx, a.id, m)
	if err != nil {
		return fmt.Errorf("distributor: dialogs of manager %d: %w", m, err)
	}
	var errs []error
	for _, id := range held {
		ok, _ := a.presence.movable(id, snap.settings.Reassign)
		if !ok {
			continue
		}
		if _, err := d.reassign(ctx, a, snap, id, m, why); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reassign moves one dialog from manager from to another eligible manager,
// never back to a manager it left. moved is false when nobody can take it
// (it stays) or it is no longer from's.
func (d *Distributor) reassign(ctx context.Context, a *account, snap *snapshot, id bd.DialogID, from bd.ManagerID, why string) (moved bool, err error) {
	_, left := a.presence.movable(id, bd.ReassignUncompleted)
	left = append(left, from)
	dl, ok := d.knownDialog(a, id)
	if !ok {
		dl = bd.Dialog{Account: a.id, ID: id}
	}
	at := d.cfg.now()
	tr := Trace{Reassigned: from, Why: why}
	defer tr.release()
	if err := d.decide(ctx, snap, dl, at, &tr); err != nil {
		return false, err
	}
	if tr.Outcome == OutcomeBot {
		return false, nil // the channel's dialogs now go to a bot; leave it to people
	}
	if tr.Outcome == "" {
		tr.Candidates = slices.DeleteFunc(slices.Clone(tr.Candidates), func(c strategy.Candidate) bool {
			if slices.Contains(left, c.Manager) {
				tr.Removed = append(tr.Removed, Removal{Manager: c.Manager, Filter: FilterLeft, Detail: "the dialog left this manager"})
				return true
			}
			return false
		})
		tr.Choice = strategy.Choice{}
		if len(tr.Candidates) == 0 {
			tr.Outcome, tr.Situation = OutcomeQueued, bd.AllManagersBusy
		} else if err := d.pick(ctx, snap, dl, &tr); err != nil {
			return false, err
		}
	}
	if tr.Outcome != "" {
		tr.Outcome = OutcomeStays
		d.remember(a, tr)
		return false, nil
	}
	for {
		to := tr.Choice.Manager
		i := slices.IndexFunc(tr.Candidates, func(c strategy.Candidate) bool { return c.Manager == to })
		err := d.store.Assign(ctx, store.Assignment{Account: a.id, Dialog: id, Customer: dl.Customer.ID,
			From: bd.ManagerOf(from), To: bd.ManagerOf(to), Capacity: tr.Candidates[i].Capacity, At: at})
		switch {
		case err == nil:
		case errors.Is(err, store.ErrAssigned), errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrNotFound):
			return false, nil // it moved or closed meanwhile
		case errors.Is(err, store.ErrCapacity):
			tr.Retries++
			tr.Removed = append(tr.Removed, Removal{Manager: to, Filter: FilterCapacity, Detail: "filled up concurrently"})
			tr.Candidates = slices.Delete(slices.Clone(tr.Candidates), i, i+1)
			if len(tr.Candidates) == 0 {
				tr.Outcome = OutcomeStays
				d.remember(a, tr)
				return false, nil
			}
			if err := d.pick(ctx, snap, dl, &tr); err != nil {
				return false, err
			}
			continue
		default:
			return false, fmt.Errorf("distributor: reassign dialog %d: %w", id, err)
		}
		break
	}
	tr.Outcome, tr.Responsible = OutcomeReassigned, bd.ManagerOf(tr.Choice.Manager)
	if err := d.gateway.Assign(ctx, a.id, id, tr.Responsible); err != nil {
		if errors.Is(err, ErrDialogGone) {
			return false, d.closeDialog(ctx, a, id, at)
		}
		// MG still has the old manager: follow MG.
		if _, rerr := d.store.Record(ctx, store.Assignment{Account: a.id, Dialog: id, Customer: dl.Customer.ID, To: bd.ManagerOf(from), At: at}); rerr != nil {
			err = errors.Join(err, rerr)
		}
		d.fail(a.id, "gateway.assign", err)
		return false, fmt.Errorf("distributor: MessageGateway refused to reassign dialog %d: %w", id, err)
	}
	a.presence.mu.Lock()
	act := a.presence.dialog(id)
	act.left = append(act.left, from)
	act.assignedAt = at
	a.presence.mu.Unlock()
	d.remember(a, tr)
	if d.cfg.hooks.Reassigned != nil {
		d.cfg.hooks.Reassigned(a.id, from, tr.Responsible)
	}
	d.cfg.logger.Info("distributor: dialog reassigned", slog.String("account", string(a.id)),
		slog.Int64("dialog", int64(id)), slog.Int64("from", int64(from)), slog.String("to", tr.Responsible.String()), slog.String("why", why))
	return true, nil
}
