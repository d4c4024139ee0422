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
	tr := Trace{DryRun: true, scan: true} // a dry run explains every manager
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
	waited := waitedOf(dialog, at)
	if d.cfg.profiler != nil && snap.settings.UsesProfiles() {
		d.readProfile(ctx, snap, dialog, tr)
		tr.PriorityCustomer = snap.settings.Priority(tr.profile.Segments, tr.profile.Tags) > 0
	}
	if m := tr.profile.Manager; m != 0 && snap.settings.PersonalManager {
		v, decided, err := d.decidePersonal(ctx, snap, dialog, m, at, waited, tr)
		if err != nil || decided {
			return v, err
		}
		if slices.Contains(snap.settings.Managers, m) && !slices.Contains(tr.left, m) {
			// The wait for the personal manager is over: the rule's
			// steps count from its end.
			waited -= snap.settings.PersonalWaitOrDefault()
		}
	}
	p, step := snap.poolAt(dialog.Channel, waited)
	if steps := tr.Rule.Steps; len(steps) > 0 {
		tr.Step = step
		if end, ok := tr.Rule.StepEnds(step); ok {
			tr.NextStepIn = end - waited
		}
		if b := steps[step].Bot; b != 0 {
			tr.Responsible = bd.BotOf(b)
			return toBot, nil
		}
	}
	tr.pool = p
	tr.Pool = p.name
	tr.Removed = slices.Clip(p.removed)
	if !snap.settings.Hours.Open(at) {
		for _, m := range p.ids {
			tr.Removed = append(tr.Removed, Removal{Manager: m, Filter: FilterHours, Detail: "the account is closed now"})
		}
		tr.Situation = bd.OutsideWorkingHours
		return wait, d.lastManager(ctx, dialog, tr)
	}
	if len(p.ids) == 0 {
		tr.Situation = bd.NoManagerOnline
		return wait, d.lastManager(ctx, dialog, tr)
	}
	away := d.away(snap, p, at, tr)
	buf := loadBuffers.Get().(*[]store.Load)
	defer loadBuffers.Put(buf)
	if p.index != nil && !tr.scan {
		v, ok, err := d.decideOnIndex(ctx, snap, p, dialog, away, buf, tr)
		if err != nil || ok {
			return v, err
		}
		tr.Removed, tr.Candidates = slices.Clip(p.removed), nil
		away = d.away(snap, p, at, tr) // the removals again, for the whole pool's decision
	}
	loads, err := d.readLoads(ctx, dialog, p.ids, *buf, tr)
	if err != nil {
		return 0, err
	}
	*buf = loads
	if p.index != nil {
		p.index.fill(p.ids, p.caps, p.ranks, loads)
	}
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
		c.Manager, c.Open, c.Capacity, c.LastAssignedAt, c.Rank = ids[i], l.Open, caps[i], l.LastAssignedAt, p.ranks[i]
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

// waitedOf returns how long the dialog has waited at at: since it opened.
func waitedOf(dialog bd.Dialog, at time.Time) time.Duration {
	if dialog.OpenedAt.IsZero() || dialog.OpenedAt.After(at) {
		return 0
	}
	return at.Sub(dialog.OpenedAt)
}

// decideOnIndex decides over the head of the pool's index (see index): the
// first managers in the strategy's order who are not away, and the
// customer's last manager, with their loads read fresh. ok is false when
// the whole pool must be read instead: the index is not filled or is too
// old, or nobody it shows has room.
func (d *Distributor) decideOnIndex(ctx context.Context, snap *snapshot, p *pool, dialog bd.Dialog, away []bool, buf *[]store.Load, tr *Trace) (v verdict, ok bool, err error) {
	if !p.index.fresh() {
		return 0, false, nil
	}
	skip := func(m bd.ManagerID) bool { return away != nil && away[p.pos[m]] }
	var head [indexHead + 1]bd.ManagerID
	// A head whose loads were stale is corrected by the read and read
	// again, a few times; then the whole pool is read.
	for range 3 {
		ids := p.index.head(indexHead, skip, head[:0])
		if len(ids) == 0 {
			return 0, false, nil
		}
		slices.Sort(ids)
		loads, err := d.readLoads(ctx, dialog, ids, *buf, tr)
		if err != nil {
			return 0, false, err
		}
		*buf = loads
		if lm := tr.LastManager; lm != 0 && !slices.Contains(ids, lm) {
			// Sticky prefers them: the Ordered contract has them passed along.
			if i, in := p.pos[lm]; in && (away == nil || !away[i]) {
				l, err := d.store.Loads(ctx, dialog.Account, []bd.ManagerID{lm}, nil)
				if err != nil {
					return 0, false, fmt.Errorf("distributor: loads of %s: %w", dialog.Account, err)
				}
				at, _ := slices.BinarySearch(ids, lm)
				ids = slices.Insert(ids, at, lm)
				loads = slices.Insert(loads, at, l...)
				*buf = loads
			}
		}
		if tr.buf == nil {
			tr.buf = candidateBuffers.Get().(*[]strategy.Candidate)
		}
		cands := (*tr.buf)[:0]
		for i, m := range ids {
			at := p.pos[m]
			c := strategy.Candidate{Manager: m, Open: loads[i].Open, Capacity: p.caps[at], LastAssignedAt: loads[i].LastAssignedAt, Rank: p.ranks[at]}
			cands = append(cands, c)
		}
		p.index.update(cands)
		n := 0
		for _, c := range cands {
			if c.Open >= c.Capacity {
				tr.Removed = append(tr.Removed, Removal{Manager: c.Manager, Filter: FilterCapacity, Open: c.Open, Capacity: c.Capacity})
				continue
			}
			cands[n] = c
			n++
		}
		*tr.buf = cands[:n]
		if n > 0 {
			tr.Candidates, tr.partial = cands[:n], true
			v, err := d.pick(ctx, snap, dialog, tr)
			if err != nil || v == pickManager {
				return v, err == nil, err
			}
			// The strategy refused them all: only a read of the whole
			// pool may make the dialog wait.
			tr.partial = false
			return 0, false, nil
		}
	}
	return 0, false, nil
}

// readLoads reads the loads of managers and records the customer's last
// manager in tr; with a store.DecisionReader in the same round trip, which
// also reads the queue's length for distribute (tr.waiting).
func (d *Distributor) readLoads(ctx context.Context, dialog bd.Dialog, managers []bd.ManagerID, dst []store.Load, tr *Trace) ([]store.Load, error) {
	if r, ok := d.store.(store.DecisionReader); ok {
		reads, err := r.ReadDecision(ctx, dialog.Account, managers, dialog.Customer.ID, dst)
		if err != nil {
			return nil, fmt.Errorf("distributor: loads of %s: %w", dialog.Account, err)
		}
		tr.LastManager = reads.LastManager
		tr.waiting, tr.waitingRead = reads.Waiting, true
		return reads.Loads, nil
	}
	if err := d.lastManager(ctx, dialog, tr); err != nil {
		return nil, err
	}
	loads, err := d.store.Loads(ctx, dialog.Account, managers, dst)
	if err != nil {
		return nil, fmt.Errorf("distributor: loads of %s: %w", dialog.Account, err)
	}
	return loads, nil
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
