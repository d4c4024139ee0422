package distributor

import (
	"context"
	"errors"
	"fmt"
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

// known returns the dialog as last seen, if it was.
func (p *presence) known(id bd.DialogID) (bd.Dialog, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if act := p.dialogs[id]; act != nil && act.dialog.ID != 0 {
		return act.dialog, true
	}
	return bd.Dialog{}, false
}

// left returns the managers the dialog was moved away from.
func (p *presence) left(id bd.DialogID) []bd.ManagerID {
	p.mu.Lock()
	defer p.mu.Unlock()
	if act := p.dialogs[id]; act != nil {
		return slices.Clone(act.left)
	}
	return nil
}

// moved notes that the dialog moved away from manager from at t.
func (p *presence) moved(dl bd.Dialog, from bd.ManagerID, at time.Time) {
	p.mu.Lock()
	act := p.dialog(dl.ID)
	act.left = append(act.left, from)
	act.assignedAt = at
	if act.dialog.ID == 0 && dl.Channel != 0 {
		act.dialog = dl
	}
	p.mu.Unlock()
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

// away notes that manager m stopped being available at t, unless they were
// away already.
func (p *presence) away(m bd.ManagerID, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.awaySince[m]; ok {
		return
	}
	if p.awaySince == nil {
		p.awaySince = make(map[bd.ManagerID]time.Time)
	}
	p.awaySince[m] = at
}

// back notes that manager m is available again.
func (p *presence) back(m bd.ManagerID) {
	p.mu.Lock()
	delete(p.awaySince, m)
	p.mu.Unlock()
}

// awayFor returns the managers away for at least grace by now, in order.
func (p *presence) awayFor(now time.Time, grace time.Duration) []bd.ManagerID {
	p.mu.Lock()
	var due []bd.ManagerID
	for m, since := range p.awaySince {
		if now.Sub(since) >= grace {
			due = append(due, m)
		}
	}
	p.mu.Unlock()
	slices.Sort(due)
	return due
}

// unanswered returns the dialogs assigned at least after ago by now that
// no manager answered, in order.
func (p *presence) unanswered(now time.Time, after time.Duration) []bd.DialogID {
	p.mu.Lock()
	var late []bd.DialogID
	for id, act := range p.dialogs {
		if !act.answered && !act.assignedAt.IsZero() && now.Sub(act.assignedAt) >= after {
			late = append(late, id)
		}
	}
	p.mu.Unlock()
	slices.Sort(late)
	return late
}

// unavailable notes that manager m stopped being available at t and, when
// the account reassigns without a grace window, moves their dialogs now.
func (d *Distributor) unavailable(ctx context.Context, a *account, snap *snapshot, m bd.ManagerID, at time.Time) error {
	if snap.settings.Reassign == bd.ReassignOff {
		return nil
	}
	if snap.settings.PresenceGrace > 0 {
		a.presence.away(m, at)
		return nil
	}
	return d.reassignFrom(ctx, a, m, "manager unavailable")
}

// back notes that manager m is available again: a flap within the grace
// window triggers nothing.
func (a *account) back(m bd.ManagerID) { a.presence.back(m) }

// reassignDue moves the dialogs of managers unavailable longer than the
// grace window, and dialogs nobody answered within ReassignAfter.
func (d *Distributor) reassignDue(ctx context.Context, a *account) error {
	snap := a.snap.Load()
	now := d.cfg.now()
	var errs []error
	if snap.settings.Reassign != bd.ReassignOff {
		for _, m := range a.presence.awayFor(now, snap.settings.PresenceGrace) {
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
		var jobs []store.Job
		for _, id := range a.presence.unanswered(now, after) {
			r, err := d.store.Responsible(ctx, a.id, id)
			if err != nil {
				if !errors.Is(err, store.ErrNotFound) {
					errs = append(errs, err)
				}
				continue
			}
			if m, ok := r.Manager(); ok {
				jobs = append(jobs, d.moveJob(a, id, m, fmt.Sprintf("no answer within %s", after)))
			}
		}
		errs = append(errs, d.store.Submit(ctx, jobs...))
	}
	return errors.Join(errs...)
}

// reassignFrom asks for manager m's dialogs that the account's mode selects
// to be moved to other eligible managers: one move job each.
func (d *Distributor) reassignFrom(ctx context.Context, a *account, m bd.ManagerID, why string) error {
	snap := a.snap.Load()
	held, err := d.store.DialogsOf(ctx, a.id, m)
	if err != nil {
		return fmt.Errorf("distributor: dialogs of manager %d: %w", m, err)
	}
	var jobs []store.Job
	for _, id := range held {
		if ok, _ := a.presence.movable(id, snap.settings.Reassign); ok {
			jobs = append(jobs, d.moveJob(a, id, m, why))
		}
	}
	return d.store.Submit(ctx, jobs...)
}

// moveJob asks for the dialog to move away from manager from.
func (d *Distributor) moveJob(a *account, id bd.DialogID, from bd.ManagerID, why string) store.Job {
	dl, ok := a.presence.known(id)
	if !ok {
		dl = bd.Dialog{Account: a.id, ID: id}
	}
	return store.Job{Kind: store.JobMove, Account: a.id, Dialog: dl, Manager: from, Why: why}
}

// move moves one dialog from manager from to another eligible manager,
// never back to a manager it left: the work of a move job. Nothing happens
// when the dialog is no longer from's; when nobody can take it, it stays.
//
// A move tried again (attempt > 1) that finds the dialog with another
// manager may have made that move itself and stopped before MG heard of it:
// MG is told who holds the dialog.
func (d *Distributor) move(ctx context.Context, a *account, dl bd.Dialog, from bd.ManagerID, why string, attempt int) error {
	if r, err := d.store.Responsible(ctx, a.id, dl.ID); err != nil || r != bd.ManagerOf(from) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if attempt > 1 && !r.IsZero() {
			return d.push(ctx, a, dl, r, d.cfg.now())
		}
		return nil // it moved or closed meanwhile
	}
	snap := a.snap.Load()
	left := append(a.presence.left(dl.ID), from)
	tr := Trace{Account: a.id, Dialog: dl.ID, Channel: dl.Channel, At: d.cfg.now(), Reassigned: from, Why: why, left: left}
	defer tr.release()
	v, err := d.decide(ctx, snap, dl, tr.At, &tr)
	if err != nil {
		return err
	}
	if v == toBot {
		return nil // the channel's dialogs now go to a bot; leave it to people
	}
	if v == pickManager {
		tr.Candidates = slices.DeleteFunc(slices.Clone(tr.Candidates), func(c strategy.Candidate) bool {
			if slices.Contains(left, c.Manager) {
				tr.Removed = append(tr.Removed, Removal{Manager: c.Manager, Filter: FilterLeft, Detail: "the dialog left this manager"})
				return true
			}
			return false
		})
		if v, err = d.pick(ctx, snap, dl, &tr); err != nil {
			return err
		}
	}
	if v == wait {
		tr.Outcome = OutcomeStays
		d.remember(a, tr)
		return nil
	}
	res, err := d.reserve(ctx, snap, dl, &tr, bd.ManagerOf(from), d.assignedJobs(snap, dl, false))
	if err != nil {
		return err
	}
	switch res {
	case reserved:
		return d.finish(ctx, a, snap, dl, &tr)
	case full:
		tr.Outcome = OutcomeStays
		d.remember(a, tr)
	}
	return nil
}
