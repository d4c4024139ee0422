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

// Decide returns the trace of what distributing the dialog would do now,
// without acting: nothing is reserved, sent or stored.
func (d *Distributor) Decide(ctx context.Context, dialog bd.Dialog) (Trace, error) {
	if err := d.sameAccount("dialog", dialog.Account); err != nil {
		return Trace{}, err
	}
	dialog.Account = d.id
	if err := checkDialog(dialog); err != nil {
		return Trace{}, err
	}
	a, err := d.account(ctx)
	if err != nil {
		return Trace{}, err
	}
	tr := Trace{DryRun: true}
	defer tr.release()
	v, err := d.decide(ctx, a.snap.Load(), dialog, d.cfg.now(), &tr)
	if err != nil {
		return Trace{}, err
	}
	switch v {
	case toBot:
		tr.Outcome = OutcomeBot
	case wait:
		tr.Outcome = OutcomeQueued
	case pickManager:
		if r, err := d.store.Responsible(ctx, dialog.Account, dialog.ID); err == nil {
			tr.Outcome, tr.Responsible = OutcomeAlreadyAssigned, r
		} else {
			tr.Outcome, tr.Responsible = OutcomeAssigned, bd.ManagerOf(tr.Choice.Manager)
		}
	}
	out := tr
	out.Candidates = slices.Clone(tr.Candidates)
	out.CandidateCount = len(out.Candidates)
	out.buf = nil
	return out, nil
}

// verdict is what a decision asks for.
type verdict uint8

const (
	// pickManager: the strategy chose tr.Choice.Manager; reserve the slot.
	pickManager verdict = iota + 1
	// toBot: the channel's rule gives the dialog to the bot in tr.Responsible.
	toBot
	// wait: nobody can take the dialog now; tr.Situation says why.
	wait
)

// decide fills tr with everything up to the strategy's choice and returns
// what the caller should do.
func (d *Distributor) decide(ctx context.Context, snap *snapshot, dialog bd.Dialog, at time.Time, tr *Trace) (verdict, error) {
	tr.Account, tr.Dialog, tr.Channel, tr.At = dialog.Account, dialog.ID, dialog.Channel, at
	tr.Rule = snap.settings.RuleFor(dialog.Channel)
	tr.Strategy = snap.strategyName
	if tr.Rule.Target == bd.ToBot {
		tr.Responsible = bd.BotOf(tr.Rule.Bot)
		return toBot, nil
	}
	if err := d.lastManager(ctx, dialog, tr); err != nil {
		return 0, err
	}
	p := snap.poolFor(dialog.Channel)
	tr.Pool = p.name
	tr.Removed = slices.Clip(p.removed)
	if !snap.settings.Hours.Open(at) {
		for _, m := range p.ids {
			tr.Removed = append(tr.Removed, Removal{Manager: m, Filter: FilterHours, Detail: "the account is closed now"})
		}
		tr.Situation = bd.OutsideWorkingHours
		return wait, nil
	}
	if len(p.ids) == 0 {
		tr.Situation = bd.NoManagerOnline
		return wait, nil
	}
	away := d.away(snap, p, at, tr)
	buf := loadBuffers.Get().(*[]store.Load)
	defer loadBuffers.Put(buf)
	loads, err := d.store.Loads(ctx, dialog.Account, p.ids, *buf)
	if err != nil {
		return 0, fmt.Errorf("distributor: loads of %s: %w", dialog.Account, err)
	}
	*buf = loads
	if tr.buf == nil {
		tr.buf = candidateBuffers.Get().(*[]strategy.Candidate)
	}
	if cap(*tr.buf) < len(loads) {
		*tr.buf = make([]strategy.Candidate, 0, len(loads))
	}
	cands := (*tr.buf)[:len(loads)]
	ids, caps := p.ids[:len(loads)], p.caps[:len(loads)]
	n := 0
	for i := range loads {
		l := &loads[i]
		if away != nil && away[i] {
			continue
		}
		if l.Open >= caps[i] {
			tr.Removed = append(tr.Removed, Removal{Manager: ids[i], Filter: FilterCapacity, Open: l.Open, Capacity: caps[i]})
			continue
		}
		c := &cands[n]
		c.Manager, c.Open, c.Capacity, c.LastAssignedAt = ids[i], l.Open, caps[i], l.LastAssignedAt
		n++
	}
	cands = cands[:n]
	*tr.buf = cands
	tr.Candidates = cands
	if len(cands) == 0 {
		tr.Situation = bd.AllManagersBusy
		if away != nil && len(tr.RemovedBy(FilterCapacity)) == 0 {
			tr.Situation = bd.OutsideWorkingHours // everyone present is off shift or on leave
		}
		return wait, nil
	}
	return d.pick(ctx, snap, dialog, tr)
}

// lastManager records the customer's last manager in the trace, if any.
func (d *Distributor) lastManager(ctx context.Context, dialog bd.Dialog, tr *Trace) error {
	if dialog.Customer.ID == 0 {
		return nil
	}
	m, err := d.store.LastManager(ctx, dialog.Account, dialog.Customer.ID)
	switch {
	case err == nil:
		tr.LastManager = m
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("distributor: last manager of customer %d: %w", dialog.Customer.ID, err)
	}
	return nil
}

// away marks the pool's managers who are off shift or on leave at the given
// time, recording why in the trace; nil when nobody is.
func (d *Distributor) away(snap *snapshot, p *pool, at time.Time, tr *Trace) []bool {
	var away []bool
	loc := snap.settings.Hours.Location()
	for _, i := range p.timed {
		m := p.ids[i]
		var f Filter
		var detail string
		if shift, ok := snap.settings.Shifts[m]; ok && !shift.Open(at) {
			f, detail = FilterHours, "outside their shift"
		}
		for _, r := range snap.settings.Leave[m] {
			if r.Contains(at, loc) {
				f, detail = FilterLeave, fmt.Sprintf("on leave %s to %s", r.From, r.To)
			}
		}
		if f == "" {
			continue
		}
		if away == nil {
			away = make([]bool, len(p.ids))
		}
		away[i] = true
		tr.Removed = append(tr.Removed, Removal{Manager: m, Filter: f, Detail: detail})
	}
	return away
}

// pick asks the strategy to choose among tr.Candidates: pickManager with
// tr.Choice set, or wait when the strategy finds nobody fit.
func (d *Distributor) pick(ctx context.Context, snap *snapshot, dialog bd.Dialog, tr *Trace) (verdict, error) {
	tr.Choice = strategy.Choice{}
	if len(tr.Candidates) == 0 {
		tr.Situation = bd.AllManagersBusy
		return wait, nil
	}
	choice, err := snap.strategy.Pick(ctx, strategy.Request{Dialog: dialog, Candidates: tr.Candidates, LastManager: tr.LastManager})
	if errors.Is(err, strategy.ErrNoCandidate) {
		tr.Situation = bd.AllManagersBusy
		return wait, nil
	}
	if err != nil {
		return 0, fmt.Errorf("distributor: strategy %s: %w", snap.strategyName, err)
	}
	if !slices.ContainsFunc(tr.Candidates, func(c strategy.Candidate) bool { return c.Manager == choice.Manager }) {
		return 0, fmt.Errorf("distributor: strategy %s chose manager %d, who is not a candidate", snap.strategyName, choice.Manager)
	}
	tr.Choice = choice
	return pickManager, nil
}

// loadBuffers and candidateBuffers recycle the buffers decisions read loads
// into and pass candidates in.
var (
	loadBuffers      = sync.Pool{New: func() any { return new([]store.Load) }}
	candidateBuffers = sync.Pool{New: func() any { return new([]strategy.Candidate) }}
)

func checkDialog(dl bd.Dialog) error {
	switch {
	case dl.Account == "":
		return fmt.Errorf("%w: dialog %d has no account", ErrBadEvent, dl.ID)
	case dl.ID <= 0:
		return fmt.Errorf("%w: dialog id must be positive, got %d", ErrBadEvent, dl.ID)
	}
	return nil
}
