package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/strategy"
)

// Sentinel errors of the distributor; test them with errors.Is.
var (
	// ErrUnknownAccount: the account is not in the store.
	ErrUnknownAccount = errors.New("distributor: unknown account")
	// ErrBadEvent: the event is malformed; the error names the problem.
	ErrBadEvent = errors.New("distributor: bad event")
	// ErrClosed: the distributor was closed.
	ErrClosed = errors.New("distributor: closed")
)

// Distributor distributes the dialogs of one account. A service hosting
// many accounts runs one Distributor per account over one shared store (the
// store is multi-tenant; package fleet does the hosting).
//
// It is safe for concurrent use: events may be handled from many goroutines
// at once, and several processes may run distributors of the same account
// over one shared store. Correctness never rests on in-process state: the
// store's atomic operations decide every assignment, claim and reply.
//
// The distributor caches the account's settings and roster of managers.
// Settings saved through another process become visible after
// [Distributor.Reload]; the roster is fed by [Distributor.SetRoster] and
// ManagerChanged events.
type Distributor struct {
	id      bd.AccountID
	store   store.Store
	gateway Gateway
	cfg     config

	loadMu sync.Mutex // serialises loading the account from the store
	acct   atomic.Pointer[account]
	locks  dialogLocks
	// profiles dedupes reads of customers' retailCRM profiles.
	profiles profiles
	// reserving counts the reservations in progress per manager
	// (reserve), when the store is contended.
	reserving reservations
	contended bool
	alerts    waitAlerts // see checkWait

	// base is canceled by Close; every goroutine the distributor starts
	// derives its context from it and is counted in background. closed
	// is set, and read before background.Add, under closeMu, so that no
	// goroutine starts once Close waits; it is read alone elsewhere.
	base       context.Context
	cancel     context.CancelFunc
	closeMu    sync.Mutex
	closed     atomic.Bool
	background sync.WaitGroup
}

// New returns the Distributor of account over st that acts in
// MessageGateway through gw. Options are validated; nil-able parts default
// to round robin, reply.Nop, no binder and a discarding logger. The account
// is read from the store when first needed: an account the store does not
// hold makes the calls that need it fail with ErrUnknownAccount.
func New(account bd.AccountID, st store.Store, gw Gateway, opts ...Option) (*Distributor, error) {
	if account == "" {
		return nil, errors.New("distributor: empty account id")
	}
	if st == nil {
		return nil, errors.New("distributor: nil store")
	}
	if gw == nil {
		return nil, errors.New("distributor: nil gateway")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	switch {
	case len(cfg.work.Accounts) == 0:
		cfg.work.Accounts = []bd.AccountID{account}
	case len(cfg.work.Accounts) != 1 || cfg.work.Accounts[0] != account:
		return nil, fmt.Errorf("distributor: WithWork: Accounts must be empty or name only the distributor's account %q, got %q", account, cfg.work.Accounts)
	}
	work, err := cfg.work.Normalized()
	if err != nil {
		return nil, fmt.Errorf("distributor: %w", err)
	}
	cfg.work = work
	d := &Distributor{id: account, store: st, gateway: gw, cfg: cfg}
	if c, ok := st.(store.Contended); ok {
		d.contended = c.Contended()
	}
	d.base, d.cancel = context.WithCancel(context.Background())
	if runsWorkers(opts) { // see WithoutWorkers
		d.goBackground(d.runWorkers)
	}
	return d, nil
}

// runWorkers runs the store's workers until ctx ends, starting them again
// (after a pause that grows to a minute) whenever they stop with an error,
// e.g. when the database was unreachable as they started.
func (d *Distributor) runWorkers(ctx context.Context) {
	store.KeepWorking(ctx, d.store, d.work, d.cfg.work, func(err error, pause time.Duration) {
		d.fail("", "work", fmt.Errorf("the workers stopped (starting again in %s): %w", pause, err))
	})
}

// goBackground runs fn in a goroutine that Close cancels and waits for. It
// reports false, and runs nothing, once the distributor is closed.
func (d *Distributor) goBackground(fn func(ctx context.Context)) bool {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed.Load() {
		return false
	}
	d.background.Go(func() { fn(d.base) })
	return true
}

func (d *Distributor) isClosed() bool { return d.closed.Load() }

// account is the distributor's per-account state.
type account struct {
	id   bd.AccountID
	mu   sync.Mutex // serialises snapshot rebuilds
	snap atomic.Pointer[snapshot]

	drainRequests atomic.Int64
	drainRecover  atomic.Bool // the next drain finishes reservations it finds
	// drainPausedUntil is when MG's last pause (a rate limit) ends, in Unix
	// nanoseconds of real time: no drain runs before it.
	drainPausedUntil atomic.Int64
	parked           parkedState // dialogs parked while the account was not active
	stepWake         stepWake    // the next end of a waiting dialog's step or personal wait
	refusedWaits     dialogSince // dialogs waiting for MG, not for a free manager
	drainingWaits    dialogSince // waiting dialogs a drain here has reserved, MG not answered yet
	presence         presence

	recentMu sync.Mutex
	recent   []Trace
	next     int
}

// snapshot is an immutable view of an account's settings and roster, with
// the pools of managers each channel rule draws from.
type snapshot struct {
	settings     bd.Settings
	strategy     strategy.Strategy
	strategyName string
	roster       map[bd.ManagerID]bd.Manager
	// byChannel and fallback hold the pools of the channels' rules and of
	// the default rule: one pool, or one per step of a rule with steps;
	// none for a bot rule.
	byChannel map[bd.ChannelID][]*pool
	fallback  []*pool
	// everyone is the pool of every manager of the distribution: a step
	// without a group draws from it, and the personal manager is looked
	// up in it.
	everyone *pool
	// all holds every distinct pool once.
	all []*pool
}

// pool is the managers a channel rule draws from who are present and
// available, with everyone else already explained.
type pool struct {
	name    string
	ids     []bd.ManagerID // sorted
	caps    []int          // capacity of ids[i]
	ranks   []int          // place of ids[i] in the admin's order (Settings.Managers)
	timed   []int          // indexes into ids of managers with a shift or leave
	removed []Removal      // not in channel, unknown, inactive, offline, status
	// index holds the managers with room in the strategy's order, for a
	// large pool with a strategy.Ordered strategy; nil otherwise.
	index *index
	pos   map[bd.ManagerID]int // manager → position in ids, with index
}

// poolsOf returns the pools of channel c's rule; nil for a bot rule.
func (s *snapshot) poolsOf(c bd.ChannelID) []*pool {
	if ps, ok := s.byChannel[c]; ok {
		return ps
	}
	return s.fallback
}

// poolAt returns the pool a dialog of channel c draws from once it has
// waited waited (for a rule with steps, the pool of the step it is at),
// and the step's index; nil for a bot rule.
func (s *snapshot) poolAt(c bd.ChannelID, waited time.Duration) (*pool, int) {
	ps := s.poolsOf(c)
	switch len(ps) {
	case 0:
		return nil, 0
	case 1:
		return ps[0], 0
	}
	i := s.settings.RuleFor(c).StepAt(waited)
	return ps[i], i
}

// Account returns the id of the account the distributor serves.
func (d *Distributor) Account() bd.AccountID { return d.id }

// account returns the account's state, reading its settings from the store
// the first time.
func (d *Distributor) account(ctx context.Context) (*account, error) {
	if a := d.acct.Load(); a != nil {
		return a, nil
	}
	d.loadMu.Lock()
	defer d.loadMu.Unlock()
	if a := d.acct.Load(); a != nil {
		return a, nil
	}
	acc, err := d.store.Account(ctx, d.id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAccount, d.id)
	}
	if err != nil {
		return nil, fmt.Errorf("distributor: load account %q: %w", d.id, err)
	}
	a := &account{id: d.id}
	snap, err := d.build(acc.Settings, nil)
	if err != nil {
		return nil, fmt.Errorf("distributor: account %q: %w", d.id, err)
	}
	a.snap.Store(snap)
	d.acct.Store(a)
	return a, nil
}

// sameAccount checks that id, when set, names the distributor's account.
func (d *Distributor) sameAccount(what string, id bd.AccountID) error {
	if id != "" && id != d.id {
		return fmt.Errorf("%w: %s of account %q given to the distributor of %q", ErrBadEvent, what, id, d.id)
	}
	return nil
}

// build makes a snapshot from settings and a roster (which it keeps; the
// caller must not modify it afterwards).
func (d *Distributor) build(s bd.Settings, roster map[bd.ManagerID]bd.Manager) (*snapshot, error) {
	strat, name := d.cfg.strategy, "default"
	if s.Strategy != "" {
		st, ok := d.cfg.strategies.Lookup(s.Strategy)
		if !ok {
			return nil, fmt.Errorf("unknown strategy %q (known: %v)", s.Strategy, d.cfg.strategies.Names())
		}
		strat, name = st, s.Strategy
	}
	if s.Sticky {
		sticky, err := strategy.NewSticky(strat)
		if err != nil {
			return nil, err
		}
		strat, name = sticky, "sticky "+name
	}
	if roster == nil {
		roster = map[bd.ManagerID]bd.Manager{}
	}
	snap := &snapshot{
		settings:     s,
		strategy:     strat,
		strategyName: name,
		roster:       roster,
		byChannel:    make(map[bd.ChannelID][]*pool, len(s.Channels)),
	}
	inDist := slices.Clone(s.Managers)
	slices.Sort(inDist)
	rank := make(map[bd.ManagerID]int, len(s.Managers))
	for i, m := range s.Managers {
		rank[m] = i
	}
	var order func(a, b strategy.Candidate) int
	if o, ok := strat.(strategy.Ordered); ok {
		order = o.Order()
	}
	newPool := func(name string, r bd.ChannelRule) *pool {
		p := makePool(name, r, inDist, rank, &snap.settings, roster, order, d.cfg.indexMin)
		snap.all = append(snap.all, p)
		return p
	}
	snap.everyone = newPool("everyone in the distribution", bd.ChannelRule{Target: bd.ToManagers})
	groups := make(map[string]*pool)
	rulePools := func(name string, r bd.ChannelRule) []*pool {
		switch {
		case r.Target == bd.ToBot:
			return nil
		case len(r.Steps) == 0 && len(r.Managers) == 0:
			return []*pool{snap.everyone}
		case len(r.Steps) == 0:
			return []*pool{newPool(name, r)}
		}
		ps := make([]*pool, len(r.Steps))
		for i, st := range r.Steps {
			switch {
			case st.Bot != 0:
				continue // no pool: the bot takes the dialog
			case st.Group == "":
				ps[i] = snap.everyone
				continue
			}
			if groups[st.Group] == nil {
				groups[st.Group] = newPool("group "+st.Group, bd.ChannelRule{Target: bd.ToManagers, Managers: s.Groups[st.Group]})
			}
			ps[i] = groups[st.Group]
		}
		return ps
	}
	snap.fallback = rulePools("default rule", s.DefaultRule)
	for _, c := range slices.Sorted(maps.Keys(s.Channels)) {
		if ps := rulePools(fmt.Sprintf("channel %d", c), s.Channels[c]); ps != nil {
			snap.byChannel[c] = ps
		}
	}
	return snap, nil
}

// makePool makes the pool of a channel rule; with a strategy order, a large
// pool gets an index (see index).
func makePool(name string, r bd.ChannelRule, inDist []bd.ManagerID, rank map[bd.ManagerID]int, s *bd.Settings, roster map[bd.ManagerID]bd.Manager, order func(a, b strategy.Candidate) int, indexFrom int) *pool {
	p := &pool{name: name}
	members := inDist
	if len(r.Managers) > 0 {
		members = slices.Clone(r.Managers)
		slices.Sort(members)
		for _, m := range inDist {
			if _, ok := slices.BinarySearch(members, m); !ok {
				p.removed = append(p.removed, Removal{Manager: m, Filter: FilterChannel, Detail: "not among the " + name + " managers"})
			}
		}
	}
	for _, m := range members {
		mgr, ok := roster[m]
		switch {
		case !ok:
			p.removed = append(p.removed, Removal{Manager: m, Filter: FilterRoster, Detail: "not in the roster"})
		case !mgr.Active:
			p.removed = append(p.removed, Removal{Manager: m, Filter: FilterInactive, Detail: "deactivated"})
		default:
			if f, detail := availability(s.Availability, mgr); f != "" {
				p.removed = append(p.removed, Removal{Manager: m, Filter: f, Detail: detail})
				continue
			}
			if _, shift := s.Shifts[m]; shift || len(s.Leave[m]) > 0 {
				p.timed = append(p.timed, len(p.ids))
			}
			p.ids = append(p.ids, m)
			p.caps = append(p.caps, s.CapacityOf(m))
			p.ranks = append(p.ranks, rank[m])
		}
	}
	slices.SortFunc(p.removed, func(a, b Removal) int { return int(a.Manager - b.Manager) })
	if order != nil && len(p.ids) >= indexFrom {
		p.index = newIndex(order, len(p.ids))
		p.pos = make(map[bd.ManagerID]int, len(p.ids))
		for i, m := range p.ids {
			p.pos[m] = i
		}
	}
	return p
}

// availability returns the filter that removes m under mode, or "".
func availability(mode bd.AvailabilityMode, m bd.Manager) (Filter, string) {
	needStatus := mode == bd.StatusAndOnline || mode == bd.StatusOnly
	needOnline := mode == bd.StatusAndOnline || mode == bd.OnlineOnly
	if needOnline && !m.Online {
		return FilterOffline, "offline in MessageGateway"
	}
	if needStatus && m.Status != bd.StatusFree {
		return FilterStatus, fmt.Sprintf("status %q, not %q", m.Status, bd.StatusFree)
	}
	return "", ""
}

// available reports whether m may take dialogs under mode.
func available(mode bd.AvailabilityMode, m bd.Manager) bool {
	f, _ := availability(mode, m)
	return m.Active && f == ""
}

// update rebuilds the account's snapshot with fn applied to copies of its
// settings and roster.
func (d *Distributor) update(a *account, fn func(s *bd.Settings, roster map[bd.ManagerID]bd.Manager)) (old, cur *snapshot, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	old = a.snap.Load()
	s := old.settings.Clone()
	roster := make(map[bd.ManagerID]bd.Manager, len(old.roster)+1)
	for k, v := range old.roster {
		roster[k] = v
	}
	fn(&s, roster)
	cur, err = d.build(s, roster)
	if err != nil {
		return nil, nil, err
	}
	a.snap.Store(cur)
	return old, cur, nil
}

// SetRoster replaces the account's managers with managers (as joined from
// retailCRM users and MessageGateway users). Managers who became available
// may take waiting dialogs at once; managers who stopped being available
// have their dialogs reassigned as the account's settings say.
func (d *Distributor) SetRoster(ctx context.Context, managers []bd.Manager) error {
	id := d.id
	for _, m := range managers {
		if m.ID <= 0 {
			return fmt.Errorf("distributor: roster of %q: manager id must be positive, got %d", id, m.ID)
		}
		if m.Status != "" && !m.Status.Valid() {
			return fmt.Errorf("distributor: roster of %q: manager %d has unknown status %q", id, m.ID, m.Status)
		}
	}
	a, err := d.account(ctx)
	if err != nil {
		return err
	}
	old, cur, err := d.update(a, func(_ *bd.Settings, roster map[bd.ManagerID]bd.Manager) {
		clear(roster)
		for _, m := range managers {
			roster[m.ID] = m
		}
	})
	if err != nil {
		return err
	}
	var errs []error
	mode := cur.settings.Availability
	for _, m := range managers {
		was, known := old.roster[m.ID]
		switch now := available(mode, m); {
		case now:
			a.back(m.ID)
		case known && available(mode, was):
			errs = append(errs, d.unavailable(ctx, a, cur, m.ID, d.cfg.now()))
		}
	}
	errs = append(errs, d.store.Submit(ctx, drainJob(a.id, 0)))
	return errors.Join(errs...)
}

// Settings returns the account's settings in force.
func (d *Distributor) Settings(ctx context.Context) (bd.Settings, error) {
	a, err := d.account(ctx)
	if err != nil {
		return bd.Settings{}, err
	}
	return a.snap.Load().settings.Clone(), nil
}

// ValidateSettings checks s as a whole, as SaveSettings would: every problem
// is named in one *bd.SettingsError, an unknown strategy name and every
// reply text the Replier refuses (see [CheckSettings]) among them.
func (d *Distributor) ValidateSettings(s bd.Settings) error {
	return d.cfg.checkSettings(s)
}

// SaveSettings validates s as a whole and, only if it is valid, stores it
// and puts it in force. On a validation error (a *bd.SettingsError naming
// every problem) nothing changes: the previous settings stay in force.
func (d *Distributor) SaveSettings(ctx context.Context, s bd.Settings) error {
	id := d.id
	if err := d.ValidateSettings(s); err != nil {
		return err
	}
	a, err := d.account(ctx)
	if err != nil {
		return err
	}
	s = s.Clone()
	if err := d.store.SaveSettings(ctx, id, s); err != nil {
		return fmt.Errorf("distributor: save settings of %q: %w", id, err)
	}
	if _, _, err := d.update(a, func(cur *bd.Settings, _ map[bd.ManagerID]bd.Manager) { *cur = s }); err != nil {
		return err
	}
	return d.store.Submit(ctx, drainJob(a.id, 0))
}

// Reload re-reads the account's settings from the store, e.g. after another
// process saved them.
func (d *Distributor) Reload(ctx context.Context) error {
	id := d.id
	a, err := d.account(ctx)
	if err != nil {
		return err
	}
	acc, err := d.store.Account(ctx, id)
	if err != nil {
		return fmt.Errorf("distributor: reload %q: %w", id, err)
	}
	if _, _, err := d.update(a, func(cur *bd.Settings, _ map[bd.ManagerID]bd.Manager) { *cur = acc.Settings }); err != nil {
		return err
	}
	return d.store.Submit(ctx, drainJob(a.id, 0))
}

// Recent returns the account's most recent decision traces, newest first.
func (d *Distributor) Recent(ctx context.Context) ([]Trace, error) {
	a, err := d.account(ctx)
	if err != nil {
		return nil, err
	}
	a.recentMu.Lock()
	defer a.recentMu.Unlock()
	out := make([]Trace, 0, len(a.recent))
	for i := range len(a.recent) {
		j := (a.next - 1 - i + 2*len(a.recent)) % len(a.recent)
		t := a.recent[j]
		t.Candidates = slices.Clone(t.Candidates) // the ring's slots are reused
		out = append(out, t)
	}
	return out, nil
}

func (d *Distributor) remember(a *account, t Trace) {
	if d.cfg.hooks.Decision == nil && d.cfg.recent == 0 {
		return
	}
	if d.cfg.hooks.Decision != nil {
		d.cfg.hooks.Decision(t.summary(nil))
	}
	if d.cfg.recent == 0 {
		return
	}
	a.recentMu.Lock()
	if len(a.recent) < d.cfg.recent {
		a.recent = append(a.recent, t.summary(nil))
		a.next = len(a.recent) % d.cfg.recent
	} else {
		// Reuse the slot's candidate array: recording stays allocation-free.
		slot := &a.recent[a.next]
		*slot = t.summary(slot.Candidates[:0])
		a.next = (a.next + 1) % d.cfg.recent
	}
	a.recentMu.Unlock()
}

// Run calls [Distributor.Sweep] periodically until ctx ends, pruning the
// store's old event records after a sweep at most every
// [store.PruneEvery], and returns ctx's error. A host of many Distributors
// (package fleet) sweeps each and prunes once instead.
func (d *Distributor) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.sweep)
	defer t.Stop()
	var pruned time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		d.Sweep(ctx)
		if now := d.cfg.now(); now.Sub(pruned) >= store.PruneEvery {
			pruned = now
			if _, err := d.store.PruneEvents(ctx, now.Add(-d.cfg.keepEvents)); err != nil {
				d.fail(d.id, "prune events", err)
			}
		}
	}
}

// Sweep does the account's time-driven work once: it reassigns the dialogs
// of managers unavailable longer than the presence grace and of dialogs
// nobody answered in time, drains the account's queue and raises a wait
// alert when the queue's longest wait passed bd.Settings.WaitAlert. Errors
// are logged and reported to Hooks.Failed.
func (d *Distributor) Sweep(ctx context.Context) {
	a, err := d.account(ctx)
	if err != nil {
		d.fail(d.id, "sweep", err)
		return
	}
	defer d.checkWait(ctx, a) // after the drain: the wait alert (alert.go)
	if !a.snap.Load().active() {
		return
	}
	if err := d.reassignDue(ctx, a); err != nil {
		d.fail(a.id, "reassign", err)
	}
	if a.drainPause() > 0 {
		return // the drain stored with MG's pause runs after it
	}
	if err := d.drain(ctx, a, false); err != nil {
		d.fail(a.id, "sweep", err)
	}
}

// Close stops the distributor's workers and waits for them: jobs running
// are canceled and left to be retried (by this store's next worker, in this
// or another process). Handle returns ErrClosed afterwards.
func (d *Distributor) Close() error {
	d.closeMu.Lock()
	d.closed.Store(true)
	d.closeMu.Unlock()
	d.cancel()
	d.background.Wait()
	return nil
}

func (d *Distributor) fail(acc bd.AccountID, op string, err error) {
	d.cfg.logger.Error("distributor: "+op+" failed", slog.String("account", string(acc)), slog.Any("error", err))
	if d.cfg.hooks.Failed != nil {
		d.cfg.hooks.Failed(acc, op, err)
	}
}
