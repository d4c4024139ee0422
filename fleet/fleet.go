package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/internal/option"
	"github.com/botdistributor/botdistributor/internal/restart"
	"github.com/botdistributor/botdistributor/store"
)

// ErrUnknownAccount is returned for an account the fleet does not host.
var ErrUnknownAccount = errors.New("fleet: unknown account")

// ErrStopped is returned by [Fleet.Await] and [Fleet.Ready] once Run has
// returned.
var ErrStopped = errors.New("fleet: not running")

// Fleet hosts every account of a store in this process: one Distributor
// per account, one worker set for all of them, and the event streams of
// the accounts whose lease this process holds. Create it with [New] and
// run it with [Fleet.Run].
//
// Its methods are safe for concurrent use.
type Fleet struct {
	st  store.Store
	cfg config

	started atomic.Bool
	rescanC chan struct{} // asks the Run loop to rescan now
	done    chan struct{} // closed when Run returns

	mu      sync.Mutex
	hosts   map[bd.AccountID]*host
	changed chan struct{} // closed and replaced whenever a host, its stream or its resync changes
	base    context.Context

	// Owned by the Run loop.
	release []bd.AccountID // stopped; released in the next round
	rounds  atomic.Uint64
}

// host is one account in the fleet.
type host struct {
	id    bd.AccountID
	acc   bd.Account
	d     *distributor.Distributor // nil when the build failed
	parts Parts
	err   error     // why the build failed
	built time.Time // when the build ended
	// inflight counts the jobs running on d; Add only under Fleet.mu
	// while the host is in Fleet.hosts.
	inflight sync.WaitGroup

	// Guarded by Fleet.mu; changed by the Run loop only.
	run      *streamRun // non-nil while this process runs the stream
	deadline time.Time  // the stream stops then unless the lease is renewed

	lastEvent  atomic.Int64 // unix nanoseconds
	lastResync atomic.Int64
	// rosterAt is when the distributor last took a roster (unix
	// nanoseconds), from the stream or from Parts.Roster; rosterMu lets
	// one job at a time read it with Parts.Roster.
	rosterAt atomic.Int64
	rosterMu sync.Mutex
	stream   atomic.Pointer[Stream] // the stream running, for its stats

	probMu   sync.Mutex
	problems map[string]Problem // by op; see AccountState.Problems
}

// streamRun is one holding period of an account: its stream and its
// distributor's timers.
type streamRun struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	since  time.Time
	// sweeps counts the sweeps running for this holding period; Add only
	// under Fleet.mu while the run is its host's.
	sweeps sync.WaitGroup
}

// New checks the options and returns a Fleet over st; it starts nothing.
// WithBuild is required.
func New(st store.Store, opts ...Option) (*Fleet, error) {
	if st == nil {
		return nil, errors.New("fleet: nil store")
	}
	cfg := config{
		rosterEvery: DefaultRosterRefresh,
		pollEvery:   DefaultPoll,
		ttl:         DefaultLeaseTTL,
		rescan:      DefaultRescan,
		sweep:       DefaultSweep,
		keepEvents:  DefaultEventRetention,
		logger:      slog.New(slog.DiscardHandler),
	}
	var errs []error
	if err := option.Apply(opts, func(o Option) error { return o.apply(&cfg) }); err != nil {
		errs = append(errs, err)
	}
	if cfg.build == nil {
		errs = append(errs, errors.New("no WithBuild: the fleet needs to know how to build an account's parts"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("fleet: %w", errors.Join(errs...))
	}
	if cfg.leases == nil {
		if l, ok := st.(store.Leases); ok {
			cfg.leases = l
		} else {
			cfg.leases = holdAll{}
		}
	}
	if cfg.member == "" {
		cfg.member = defaultMember()
	}
	if cfg.work.Workers == 0 {
		cfg.work, _ = cfg.work.Normalized()
	}
	// The workers carry the member's name: should this process die, the
	// first lease round that finds it lapsed gives its running jobs back.
	cfg.work.Member = cfg.member
	return &Fleet{
		st: st, cfg: cfg,
		rescanC: make(chan struct{}, 1),
		done:    make(chan struct{}),
		hosts:   make(map[bd.AccountID]*host),
		changed: make(chan struct{}),
	}, nil
}

// Member returns the name this process keeps leases under.
func (f *Fleet) Member() string { return f.cfg.member }

// Run hosts the store's accounts until ctx ends: it starts the worker set,
// reads the accounts (again every WithRescan), keeps this process's leases
// (every quarter of the lease TTL) and runs the streams of the accounts it
// holds. When ctx ends it stops every stream, gives its leases up (the
// other processes take them at their next round), stops the workers
// (running jobs are canceled and tried again later), closes every
// distributor and the accounts' parts, and returns ctx.Err() once every
// goroutine it started has exited. Run may be called once.
func (f *Fleet) Run(ctx context.Context) error {
	if !f.started.CompareAndSwap(false, true) {
		return errors.New("fleet: Run called twice")
	}
	defer close(f.done)
	f.mu.Lock()
	f.base = ctx
	f.mu.Unlock()
	var wg sync.WaitGroup
	// The workers stop last: a stream stopping may still store jobs.
	wctx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	wg.Go(func() { f.runWorkers(wctx) })
	wg.Go(func() { f.sweep(ctx) })

	f.loop(ctx)

	f.stopStreams(f.streaming())
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if err := f.cfg.leases.Leave(lctx, f.cfg.member); err != nil {
		f.fail("", "lease", fmt.Errorf("leaving: %w", err))
	}
	cancel()
	stopWork()
	wg.Wait()
	f.mu.Lock()
	hosts := make([]*host, 0, len(f.hosts))
	for id, h := range f.hosts {
		hosts = append(hosts, h)
		delete(f.hosts, id)
	}
	f.mu.Unlock()
	for _, h := range hosts {
		f.closeHost(h)
	}
	return ctx.Err()
}

// Rescan asks the running fleet to read the accounts now, e.g. after one
// was connected, removed or had its settings saved by this process. It
// does not wait.
func (f *Fleet) Rescan() {
	select {
	case f.rescanC <- struct{}{}:
	default:
	}
}

// loop is Run's own goroutine: rescans, lease rounds and lease deadlines,
// until ctx ends.
func (f *Fleet) loop(ctx context.Context) {
	f.rescan(ctx)
	f.round(ctx)
	heartbeat := time.NewTicker(f.cfg.ttl / 4)
	defer heartbeat.Stop()
	rescan := time.NewTicker(f.cfg.rescan)
	defer rescan.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		if d, ok := f.nextDeadline(); ok {
			expiry.Reset(max(time.Until(d), 0))
		} else {
			expiry.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return
		case <-heartbeat.C:
			f.round(ctx)
		case <-rescan.C:
			if f.rescan(ctx) {
				f.round(ctx)
			}
		case <-f.rescanC:
			f.rescan(ctx)
			f.round(ctx)
		case <-expiry.C:
			f.expire()
		}
	}
}

// runWorkers runs the process's one worker set until ctx ends, starting it
// again after a pause that grows to a minute when it stops with an error.
func (f *Fleet) runWorkers(ctx context.Context) {
	store.KeepWorking(ctx, f.st, f.route, f.cfg.work, func(err error, pause time.Duration) {
		f.fail("", "work", fmt.Errorf("the workers stopped (starting again in %s): %w", pause, err))
	})
}

// routeWait is how long a job of an account the fleet does not run (yet)
// waits for it before its attempt fails and is retried later.
const routeWait = 2 * time.Second

// route hands a job to its account's distributor: the handler of the
// fleet's worker set.
func (f *Fleet) route(ctx context.Context, j store.Job) error {
	t := time.NewTimer(routeWait)
	defer t.Stop()
	for {
		f.mu.Lock()
		h := f.hosts[j.Account]
		if h != nil && h.d != nil {
			h.inflight.Add(1)
			holding := h.run != nil
			f.mu.Unlock()
			defer h.inflight.Done()
			if !holding {
				if err := f.freshRoster(ctx, h); err != nil {
					return err
				}
			}
			return h.d.Do(ctx, j)
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
			continue
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if _, err := f.st.Account(ctx, j.Account); errors.Is(err, store.ErrNotFound) {
			f.cfg.logger.Warn("fleet: job of an account not in the store dropped", slog.String("account", string(j.Account)), slog.String("job", j.Key()))
			return nil
		}
		if h != nil && h.err != nil {
			return fmt.Errorf("fleet: account %q is not running: %w", j.Account, h.err)
		}
		return fmt.Errorf("fleet: account %q is not running in this process yet", j.Account)
	}
}

// freshRoster gives h's distributor a roster read with Parts.Roster when
// it has none or when the one it has is older than WithRosterRefresh: the
// account's stream, which keeps it current, runs in another process. A
// first read that fails fails the job (tried again later: a decision
// without a roster would find nobody online); a refresh that fails, or
// that another job is doing, leaves the roster as it is.
func (f *Fleet) freshRoster(ctx context.Context, h *host) error {
	if h.parts.Roster == nil {
		return nil
	}
	at := h.rosterAt.Load()
	if at != 0 && time.Since(time.Unix(0, at)) < f.cfg.rosterEvery {
		return nil
	}
	if at == 0 {
		h.rosterMu.Lock()
	} else if !h.rosterMu.TryLock() {
		return nil
	}
	defer h.rosterMu.Unlock()
	if h.rosterAt.Load() != at {
		return nil // read meanwhile
	}
	if err := h.parts.Roster(ctx, f.target(h)); err != nil {
		err = fmt.Errorf("reading the roster: %w", err)
		if ctx.Err() == nil {
			f.failHost(h, "roster", err)
		}
		if at == 0 {
			return fmt.Errorf("fleet: account %q: %w", h.id, err)
		}
		return nil
	}
	h.solved("roster")
	return nil
}

// setHost puts h in the map (nil removes id) and wakes jobs waiting for it.
func (f *Fleet) setHost(id bd.AccountID, h *host) {
	f.mu.Lock()
	if h == nil {
		delete(f.hosts, id)
	} else {
		f.hosts[id] = h
	}
	f.notifyLocked()
	f.mu.Unlock()
}

// notifyLocked wakes whoever waits for a change of the hosts: jobs
// waiting for their account, Await and Ready. Call with f.mu held.
func (f *Fleet) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// rescan reads the accounts and brings the hosts in line: new accounts
// are built, accounts whose credentials changed are rebuilt (their stream
// restarted when this process holds them), changed settings are put in
// force with Distributor.Reload, removed accounts are stopped and their
// leases released. It reports whether the set of accounts changed.
func (f *Fleet) rescan(ctx context.Context) bool {
	accs, err := f.st.Accounts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			f.fail("", "rescan", err)
		}
		return false
	}
	changed := false
	seen := make(map[bd.AccountID]bool, len(accs))
	for _, acc := range accs {
		seen[acc.ID] = true
		f.mu.Lock()
		h := f.hosts[acc.ID]
		var had bd.Account
		var running bool
		if h != nil {
			had, running = h.acc, h.d != nil
		}
		settings := h != nil && running && !credentialsChanged(had, acc) && !reflect.DeepEqual(had.Settings, acc.Settings)
		if settings {
			h.acc = acc // read under f.mu by Accounts and Await
		}
		f.mu.Unlock()
		switch {
		case h == nil:
			f.setHost(acc.ID, f.build(ctx, acc))
			changed = true
		case !running || credentialsChanged(had, acc):
			f.rebuild(ctx, h, acc)
		case settings:
			if err := h.d.Reload(ctx); err != nil {
				f.failHost(h, "rescan", fmt.Errorf("putting the new settings in force: %w", err))
			} else {
				h.solved("rescan")
			}
		}
	}
	f.mu.Lock()
	var gone []*host
	for id, h := range f.hosts {
		if !seen[id] {
			gone = append(gone, h)
		}
	}
	f.mu.Unlock()
	for _, h := range gone {
		if h.run != nil {
			f.stopStreams([]*host{h})
			f.release = append(f.release, h.id)
		}
		f.setHost(h.id, nil)
		f.closeHost(h)
		f.cfg.logger.Info("fleet: account removed", slog.String("account", string(h.id)))
		changed = true
	}
	return changed
}

// credentialsChanged reports whether the account must be built anew.
func credentialsChanged(a, b bd.Account) bool {
	return a.Domain != b.Domain || a.MGEndpoint != b.MGEndpoint ||
		a.APIKey.Reveal() != b.APIKey.Reveal() || a.MGToken.Reveal() != b.MGToken.Reveal()
}

// build makes a host for acc; a failed build is a host with err set,
// built again at the next rescan.
func (f *Fleet) build(ctx context.Context, acc bd.Account) *host {
	h := &host{id: acc.ID, acc: acc}
	parts, err := f.cfg.build(ctx, acc)
	if err == nil && parts.Gateway == nil {
		err = errors.New("the build returned no Gateway")
	}
	if err == nil {
		opts := slices.Concat(f.cfg.dopts, []distributor.Option{distributor.WithoutWorkers(), distributor.WithWork(f.cfg.work)}, parts.Options)
		h.d, err = distributor.New(acc.ID, f.st, parts.Gateway, opts...)
		if err != nil && parts.Close != nil {
			parts.Close()
		}
	}
	h.built = time.Now()
	if err != nil {
		h.err = err
		f.failHost(h, "build", err)
		return h
	}
	h.parts = parts
	f.cfg.logger.Info("fleet: account running", slog.String("account", string(acc.ID)))
	if f.cfg.hooks.Built != nil {
		f.cfg.hooks.Built(acc.ID)
	}
	return h
}

// rebuild replaces h with a host built from acc, keeping its stream
// running (restarted on the new parts) when this process holds it.
func (f *Fleet) rebuild(ctx context.Context, h *host, acc bd.Account) {
	holding, deadline := h.run != nil, h.deadline
	if holding {
		f.stopStreams([]*host{h})
	}
	f.setHost(h.id, nil)
	f.closeHost(h)
	nh := f.build(ctx, acc)
	f.setHost(acc.ID, nh)
	if holding && nh.d != nil && time.Now().Before(deadline) {
		f.startStream(nh, deadline)
	} else if holding {
		f.release = append(f.release, acc.ID)
	}
}

// closeHost closes a host taken out of the map: it waits for its jobs
// running, then closes its distributor and parts.
func (f *Fleet) closeHost(h *host) {
	h.inflight.Wait()
	if h.d != nil {
		_ = h.d.Close()
	}
	if h.parts.Close != nil {
		h.parts.Close()
	}
}

// round runs one lease round and applies it: streams start for the
// accounts taken, stop for those lost and for the extras above this
// process's share, which the next round (run at once) releases.
func (f *Fleet) round(ctx context.Context) {
	for range 3 {
		if !f.roundOnce(ctx) {
			return
		}
	}
}

// roundOnce runs one round and reports whether another should follow at
// once (to release what it stopped).
func (f *Fleet) roundOnce(ctx context.Context) bool {
	f.mu.Lock()
	ids := make([]bd.AccountID, 0, len(f.hosts))
	for id, h := range f.hosts {
		if h.d != nil {
			ids = append(ids, id)
		}
	}
	f.mu.Unlock()
	slices.Sort(ids)
	release := f.release
	start := time.Now()
	// A round that has not answered by the first deadline of a stream
	// running here gives up, so that the loop stops that stream in time: a
	// round waiting for a busy database must not keep a stream running
	// past the point where its lease may lapse.
	lctx := ctx
	if d, ok := f.nextDeadline(); ok {
		var cancel context.CancelFunc
		lctx, cancel = context.WithDeadline(ctx, d)
		defer cancel()
	}
	st, err := f.cfg.leases.Lease(lctx, store.LeaseRound{Member: f.cfg.member, Accounts: ids, TTL: f.cfg.ttl, Release: release})
	took := time.Since(start)
	f.rounds.Add(1)
	if f.cfg.hooks.Round != nil {
		f.cfg.hooks.Round(st, took, err)
	}
	if err != nil {
		if ctx.Err() == nil {
			f.fail("", "lease", err)
		}
		return false
	}
	f.release = nil
	deadline := start.Add(f.cfg.ttl - f.cfg.ttl/4)

	f.mu.Lock()
	var keep []*host
	var drop []bd.AccountID
	for _, id := range st.Held {
		if h := f.hosts[id]; h != nil && h.d != nil {
			keep = append(keep, h)
		} else {
			drop = append(drop, id)
		}
	}
	if len(keep) > st.Share {
		// Keep the streams running already; give up the others first.
		slices.SortStableFunc(keep, func(a, b *host) int {
			switch {
			case a.run != nil && b.run == nil:
				return -1
			case a.run == nil && b.run != nil:
				return 1
			}
			return 0
		})
		for _, h := range keep[st.Share:] {
			drop = append(drop, h.id)
		}
		keep = keep[:st.Share]
	}
	kept := make(map[bd.AccountID]bool, len(keep))
	for _, h := range keep {
		kept[h.id] = true
	}
	var stop []*host
	for id, h := range f.hosts {
		if h.run != nil && !kept[id] {
			stop = append(stop, h)
		}
	}
	f.mu.Unlock()

	f.stopStreams(stop)
	f.release = drop
	for _, h := range keep {
		f.mu.Lock()
		running := h.run != nil
		if running {
			h.deadline = deadline
		}
		f.mu.Unlock()
		if !running {
			f.startStream(h, deadline)
		}
	}
	return len(drop) > 0
}

// nextDeadline returns the earliest lease deadline of a running stream.
func (f *Fleet) nextDeadline() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var next time.Time
	for _, h := range f.hosts {
		if h.run != nil && (next.IsZero() || h.deadline.Before(next)) {
			next = h.deadline
		}
	}
	return next, !next.IsZero()
}

// expire stops the streams whose lease was not renewed in time: another
// process may take the lease once it lapses.
func (f *Fleet) expire() {
	now := time.Now()
	f.mu.Lock()
	var stop []*host
	for _, h := range f.hosts {
		if h.run != nil && !now.Before(h.deadline) {
			stop = append(stop, h)
		}
	}
	f.mu.Unlock()
	if len(stop) > 0 {
		f.cfg.logger.Warn("fleet: leases not renewed in time; streams stopped", slog.Int("accounts", len(stop)))
	}
	f.stopStreams(stop)
}

// streaming returns the hosts whose stream runs.
func (f *Fleet) streaming() []*host {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*host
	for _, h := range f.hosts {
		if h.run != nil {
			out = append(out, h)
		}
	}
	return out
}

// startStream starts h's holding period: its distributor's timers and its
// stream, until stopStreams.
func (f *Fleet) startStream(h *host, deadline time.Time) {
	f.mu.Lock()
	base := f.base
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(base)
	run := &streamRun{ctx: ctx, cancel: cancel, done: make(chan struct{}), since: time.Now()}
	f.mu.Lock()
	h.run, h.deadline = run, deadline
	f.notifyLocked()
	f.mu.Unlock()
	f.cfg.logger.Info("fleet: running the account's stream", slog.String("account", string(h.id)))
	if f.cfg.hooks.Holding != nil {
		f.cfg.hooks.Holding(h.id, true)
	}
	if h.parts.Stream == nil && h.parts.Poll == nil {
		close(run.done)
		return
	}
	go func() {
		defer close(run.done)
		f.hold(ctx, h)
	}()
}

// firstPollWait bounds the Parts.Poll run before the stream starts.
const firstPollWait = 15 * time.Second

// hold runs what the holder of h's lease runs until ctx ends: Parts.Poll
// once, then the stream and, beside it, Parts.Poll every WithPoll. It
// returns once both have.
func (f *Fleet) hold(ctx context.Context, h *host) {
	if h.parts.Poll == nil {
		f.runStream(ctx, h)
		return
	}
	first, cancel := context.WithTimeout(ctx, firstPollWait)
	f.poll(first, h)
	cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(f.cfg.pollEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f.poll(ctx, h)
			}
		}
	})
	if h.parts.Stream != nil {
		f.runStream(ctx, h)
	}
	wg.Wait()
}

// poll runs Parts.Poll once and notes how it went.
func (f *Fleet) poll(ctx context.Context, h *host) {
	err := h.parts.Poll(ctx, f.target(h))
	switch {
	case ctx.Err() != nil: // stopped, or the first poll's time is up: not the poll's failure
	case err != nil:
		f.failHost(h, "poll", err)
	default:
		h.solved("poll")
	}
}

// runStream runs the account's stream until ctx ends, building it again
// after a pause that grows to a minute should it stop early (MG refused
// the token).
func (f *Fleet) runStream(ctx context.Context, h *host) {
	restart.Loop(ctx, time.Second, func(ctx context.Context) error {
		s, err := h.parts.Stream(f.target(h))
		if err != nil {
			return err
		}
		h.stream.Store(&s)
		defer h.stream.Store(nil)
		return s.Run(ctx)
	}, func(err error, pause time.Duration) {
		f.failHost(h, "stream", fmt.Errorf("the event stream stopped (starting again in %s): %w", pause, err))
	})
}

// sweep runs Distributor.Sweep (reassignment timers, the safety-net
// drain) of every account this process holds, every WithSweep, and prunes
// event records at most every store.PruneEvery, until ctx ends: one
// goroutine for all accounts where Distributor.Run would take one per
// account.
func (f *Fleet) sweep(ctx context.Context) {
	t := time.NewTicker(f.cfg.sweep)
	defer t.Stop()
	var pruned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, h := range f.streaming() {
			f.mu.Lock()
			run := h.run
			if run != nil {
				run.sweeps.Add(1)
			}
			f.mu.Unlock()
			if run == nil {
				continue
			}
			h.d.Sweep(run.ctx)
			run.sweeps.Done()
			if ctx.Err() != nil {
				return
			}
		}
		// Once for every account: the store prunes them all at once.
		if now := time.Now(); now.Sub(pruned) >= store.PruneEvery {
			pruned = now
			if _, err := f.st.PruneEvents(ctx, now.Add(-f.cfg.keepEvents)); err != nil && ctx.Err() == nil {
				f.fail("", "prune events", err)
			}
		}
	}
}

// stopStreams stops the hosts' streams and waits until they have.
func (f *Fleet) stopStreams(hs []*host) {
	var runs []*streamRun
	var stopped []*host
	f.mu.Lock()
	for _, h := range hs {
		if h.run != nil {
			h.run.cancel()
			runs = append(runs, h.run)
			stopped = append(stopped, h)
			h.run = nil
		}
	}
	if len(stopped) > 0 {
		f.notifyLocked()
	}
	f.mu.Unlock()
	for _, r := range runs {
		<-r.done
		r.sweeps.Wait()
	}
	for _, h := range stopped {
		// What failed in the stream's process no longer applies here.
		h.solved("stream")
		h.solved("poll")
		f.cfg.logger.Info("fleet: stopped the account's stream", slog.String("account", string(h.id)))
		if f.cfg.hooks.Holding != nil {
			f.cfg.hooks.Holding(h.id, false)
		}
	}
}

func (f *Fleet) fail(acc bd.AccountID, op string, err error) {
	f.cfg.logger.Error("fleet: "+op+" failed", slog.String("account", string(acc)), slog.Any("error", err))
	if f.cfg.hooks.Failed != nil {
		f.cfg.hooks.Failed(acc, op, err)
	}
}

// failHost is fail for a part of h: the failure is also h's problem until
// the part succeeds again (host.solved).
func (f *Fleet) failHost(h *host, op string, err error) {
	h.probMu.Lock()
	if h.problems == nil {
		h.problems = make(map[string]Problem)
	}
	h.problems[op] = Problem{Op: op, Err: err.Error(), At: time.Now()}
	h.probMu.Unlock()
	f.fail(h.id, op, err)
}

// solved forgets the problem of op.
func (h *host) solved(op string) {
	h.probMu.Lock()
	delete(h.problems, op)
	h.probMu.Unlock()
}

// target is what an account's stream feeds: its distributor, noting when
// the last event and resync were accepted.
type target struct {
	f *Fleet
	h *host
}

var _ mgsource.Target = target{}

func (f *Fleet) target(h *host) target { return target{f: f, h: h} }

func (t target) Handle(ctx context.Context, ev distributor.Event) error {
	err := t.h.d.Handle(ctx, ev)
	if err == nil {
		t.h.lastEvent.Store(time.Now().UnixNano())
	}
	return err
}

func (t target) SetRoster(ctx context.Context, managers []bd.Manager) error {
	err := t.h.d.SetRoster(ctx, managers)
	if err == nil {
		t.h.rosterAt.Store(time.Now().UnixNano())
	}
	return err
}

// CardChanged passes a changed retailCRM card on to the account's
// distributor (see distributor.Distributor.CardChanged), for a poll that
// follows retailCRM's customer history.
func (t target) CardChanged(ctx context.Context, crmCustomer int64) error {
	return t.h.d.CardChanged(ctx, crmCustomer)
}

func (t target) Resync(ctx context.Context, open []distributor.OpenDialog) error {
	err := t.h.d.Resync(ctx, open)
	if err == nil {
		t.h.lastResync.Store(time.Now().UnixNano())
		t.h.solved("stream") // the stream is up again
		t.f.mu.Lock()
		t.f.notifyLocked()
		t.f.mu.Unlock()
	}
	return err
}

// holdAll is the leases of a store without the Leases role: this process
// holds every account.
type holdAll struct{}

func (holdAll) Lease(_ context.Context, r store.LeaseRound) (store.LeaseState, error) {
	if err := r.Check(); err != nil {
		return store.LeaseState{}, err
	}
	held := slices.Clone(r.Accounts)
	slices.Sort(held)
	return store.LeaseState{Held: slices.Compact(held), Members: 1, Share: len(r.Accounts)}, nil
}

func (holdAll) Leave(context.Context, string) error { return nil }

func (holdAll) Holders(context.Context) ([]store.Lease, error) { return nil, nil }
