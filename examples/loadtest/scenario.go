package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store"
)

// accountID names account i (from 0) of a run.
func accountID(i int) bd.AccountID { return bd.AccountID(fmt.Sprintf("loadtest-%d.example", i+1)) }

// runAccount is one account of a run: an MG of its own (its own bot
// token), one channel, and its own managers.
type runAccount struct {
	id       bd.AccountID
	mg       *sandbox.MG
	channel  bd.ChannelID
	managers []bd.ManagerID
}

// Run runs the load against cfg.Store and, when cfg.Baseline is set, the
// same load against the naive baseline store, and reports both. It returns
// an error when the run itself could not be carried out (bad
// configuration, no database, a worker that died); broken invariants are
// results, not errors.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	ours, err := runScenario(ctx, &cfg, cfg.Store, cfg.Processes, cfg.Distributors)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Result: ours}
	if cfg.Baseline {
		// The baseline runs in this process on memory: the PostgreSQL and
		// process faults do not apply to it.
		bcfg := cfg
		bcfg.PGKill, bcfg.PGOutage, bcfg.KillWorker = 0, 0, 0
		base, err := runScenario(ctx, &bcfg, storeBaseline, 1, cfg.BaselineDistributors)
		if err != nil {
			return Report{}, fmt.Errorf("baseline: %w", err)
		}
		rep.Baseline = &base
	}
	rep.evaluate()
	return rep, nil
}

func settingsFor(managers []bd.ManagerID, capacity int) bd.Settings {
	return bd.Settings{
		Active:          true,
		Managers:        managers,
		DefaultCapacity: capacity,
		Availability:    bd.StatusAndOnline,
		Reassign:        bd.ReassignOff,
		Replies: map[bd.Situation]string{
			bd.DialogReceived:      "Hello {{.Customer}}, we got your message.",
			bd.ManagerAssigned:     "{{.Manager}} will answer you.",
			bd.NoManagerOnline:     "Nobody is online now; we will answer soon.",
			bd.AllManagersBusy:     "All managers are busy; you are in the queue.",
			bd.OutsideWorkingHours: "We are closed now.",
		},
	}
}

// routeWithCards makes settings route as Config.Routing says.
func routeWithCards(s *bd.Settings) {
	half := s.Managers[:max(1, len(s.Managers)/2)]
	s.Groups = map[string][]bd.ManagerID{"first": slices.Clone(half)}
	s.DefaultRule.Steps = []bd.Step{{Group: "first", Wait: time.Second}, {}}
	s.PersonalManager, s.PersonalWait = true, time.Second
	s.PrioritySegments = []string{"vip"}
}

// scenario is one run against one store.
type scenario struct {
	cfg       *Config
	kind      string
	processes int
	perProc   int
	accounts  []*runAccount
	be        *backend
	spec      nodeSpec
	// nodesMu guards nodes, killed and the restart figures while workers
	// are killed and started again during the load.
	nodesMu sync.Mutex
	nodes   []node
	// killed is what killed worker processes reported before they died.
	killed nodeReport
	// holders follows which fleet member runs which account's stream.
	holders *holders
	// replies tells the accounts' replies apart in MG's message log (every
	// account has the same texts).
	replies *replyMatcher
	// dead are each account's dead letters at the end.
	dead map[bd.AccountID][]store.DeadJob
	// notes are problems of the run shown with the report's errors.
	notes []string
	res   Result
	// doubles are the dialogs assigned twice: seen changing responsible
	// in MG, or reported assigned twice by the distributors.
	doubles map[dialogRef]bool
	// heldInMG are the dialogs the sampler saw with a responsible in MG.
	heldInMG map[dialogRef]bool
}

func (s *scenario) logf(format string, args ...any) {
	fmt.Fprintf(s.cfg.Log, "loadtest: %s: "+format+"\n", append([]any{s.kind}, args...)...)
}

// accountIDs returns the ids of the run's accounts.
func (s *scenario) accountIDs() []bd.AccountID {
	ids := make([]bd.AccountID, len(s.accounts))
	for i, a := range s.accounts {
		ids[i] = a.id
	}
	return ids
}

func runScenario(ctx context.Context, cfg *Config, kind string, processes, perProc int) (res Result, err error) {
	s := &scenario{cfg: cfg, kind: kind, processes: processes, perProc: perProc, holders: newHolders(),
		doubles: map[dialogRef]bool{}, heldInMG: map[dialogRef]bool{}, dead: map[bd.AccountID][]store.DeadJob{}}
	s.res = Result{
		Store: kind, Mode: cfg.mode(), Processes: processes, Distributors: perProc, Workers: cfg.Workers,
		PGOutageMs: float64(cfg.PGOutage) / float64(time.Millisecond),
		Accounts:   cfg.Accounts, Managers: cfg.Managers, Capacity: cfg.Capacity, Dialogs: cfg.Dialogs, Rate: cfg.Rate,
		CloseAfterMs: float64(cfg.CloseAfter) / float64(time.Millisecond), CloseShare: cfg.CloseShare,
	}
	defer func() {
		for _, a := range s.accounts {
			err = errors.Join(err, a.mg.Close())
		}
	}()
	for i := range cfg.Accounts {
		a := &runAccount{id: accountID(i)}
		if a.mg, err = sandbox.NewMG(sandbox.WithSeed(cfg.Seed + uint64(i))); err != nil {
			return Result{}, err
		}
		s.accounts = append(s.accounts, a)
		for j := range cfg.Managers {
			a.managers = append(a.managers, a.mg.AddManager(sandbox.MGUser{FirstName: "Manager", LastName: strconv.Itoa(j + 1), Online: true}))
		}
		if a.channel, err = a.mg.AddChannel(ctx, "telegram", "Shop"); err != nil {
			return Result{}, err
		}
	}
	if s.be, err = openBackend(ctx, cfg, kind); err != nil {
		return Result{}, err
	}
	defer func() { err = errors.Join(err, s.be.close()) }()
	for _, a := range s.accounts {
		settings := settingsFor(a.managers, cfg.Capacity)
		if cfg.Routing {
			routeWithCards(&settings)
		}
		if err := settings.Validate(); err != nil {
			return Result{}, err
		}
		if s.replies == nil {
			if s.replies, err = newReplyMatcher(settings.Replies); err != nil {
				return Result{}, err
			}
		}
		err = s.be.observer.SaveAccount(ctx, bd.Account{
			ID: a.id, Domain: "https://" + string(a.id), MGEndpoint: a.mg.URL(), MGToken: a.mg.BotToken(), Settings: settings,
		})
		if err != nil {
			return Result{}, err
		}
	}
	if s.res.RawUpdatePerS, err = s.be.rawUpdateRate(ctx, cfg.RawUpdate); err != nil {
		return Result{}, err
	}
	if err := s.startNodes(ctx); err != nil {
		return Result{}, err
	}
	rep, err := s.drive(ctx)
	if err != nil {
		return Result{}, err
	}
	if err := s.countReplies(ctx, rep); err != nil {
		return Result{}, err
	}
	s.finish(rep)
	return s.res, nil
}

// startNodes starts the fleets: in this process, or in worker processes
// sharing PostgreSQL; and waits until every account's stream runs in one
// of them, connected and resynced, and the accounts are spread over the
// fleets (none holds more than its share).
func (s *scenario) startNodes(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s.spec = nodeSpec{
		Accounts: s.accountIDs(), Fleets: s.perProc, Sweep: s.cfg.Sweep, DSN: s.be.nodeDSN,
		Workers: s.cfg.Workers, LeaseTTL: s.cfg.LeaseTTL, Settle: s.cfg.Settle, CPUProfile: s.cfg.CPUProfile,
		Routing: s.cfg.Routing, CRMLatency: s.cfg.Latency,
	}
	if s.processes == 1 {
		pid := os.Getpid()
		n, err := startLocal(ctx, s.spec, s.be.shared, slog.New(slog.DiscardHandler), func(ev streamEvent) { s.holders.add(pid, ev) })
		if err != nil {
			return err
		}
		s.nodes = []node{n}
	} else {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var errs []error
		for range s.processes {
			wg.Go(func() {
				p, err := startProc(ctx, s.spec, s.cfg.Log, s.holders.add)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				s.nodes = append(s.nodes, p)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			_, serr := s.stopNodes(context.Background())
			return errors.Join(err, serr)
		}
	}
	for !s.holders.ready(s.spec.Accounts, s.processes*s.perProc) {
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			_, serr := s.stopNodes(context.Background())
			return errors.Join(fmt.Errorf("loadtest: waiting for every account's stream to connect and resync: %w", ctx.Err()), serr)
		}
	}
	return nil
}

func (s *scenario) stopNodes(ctx context.Context) (nodeReport, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	rep := s.killed
	s.killed = nodeReport{}
	reps := make([]nodeReport, len(s.nodes))
	errs := make([]error, len(s.nodes))
	var wg sync.WaitGroup
	for i, n := range s.nodes {
		wg.Go(func() { reps[i], errs[i] = n.stop(ctx) })
	}
	wg.Wait()
	for _, r := range reps {
		rep.merge(r)
	}
	s.nodes = nil
	return rep, errors.Join(errs...)
}

func (s *scenario) resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Settle)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(s.nodes))
	for i, n := range s.nodes {
		wg.Go(func() { errs[i] = n.resync(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// setFaults puts f in force in every account's MG.
func (s *scenario) setFaults(f sandbox.MGFaults) error {
	for _, a := range s.accounts {
		if err := a.mg.SetFaults(f); err != nil {
			return err
		}
	}
	return nil
}

// drive runs the load with the faults, lets the distributors settle,
// resyncs them, takes the end state and stops them.
func (s *scenario) drive(ctx context.Context) (rep nodeReport, err error) {
	defer func() {
		// A node that does not stop in time is a result of the run (its
		// process is killed and what it sent as it went is kept).
		r, serr := s.stopNodes(context.Background())
		rep = r
		if serr != nil {
			s.note("stop: " + serr.Error())
		}
		s.holdings(time.Now())
	}()
	cfg := s.cfg
	err = s.setFaults(sandbox.MGFaults{ServerErrorRatio: cfg.Err5xx, RateLimitRatio: cfg.Err429, ErrAfterApply: cfg.ErrApplied, Latency: cfg.Latency})
	if err != nil {
		return rep, err
	}
	smp := newSampler(s.accounts, s.be.observer, cfg.Capacity)
	sctx, stopSampling := context.WithCancel(ctx)
	var sampling sync.WaitGroup
	sampling.Go(func() { smp.run(sctx, cfg.Sample) })
	defer func() {
		stopSampling()
		sampling.Wait()
	}()

	start := time.Now()
	if err := s.load(ctx); err != nil {
		return rep, err
	}
	s.logf("load done in %s", time.Since(start).Round(time.Millisecond))
	// The faults end with the load but the latency: MG stays as far away
	// while the distributors settle and resync.
	if err := s.setFaults(sandbox.MGFaults{Latency: cfg.Latency}); err != nil {
		return rep, err
	}
	es, err := s.settle(ctx)
	if err != nil {
		return rep, err
	}
	s.res.StrandedBeforeResync, s.res.StrandedNoReplyBeforeResync = es.stranded, es.noReply
	if err := s.resync(ctx); err != nil {
		// A resync reports the dialogs it could not handle (e.g. one that
		// closed while it ran) and goes on with the others: a result to
		// show, not a reason to stop.
		if ctx.Err() != nil {
			return rep, err
		}
		s.res.ResyncError = err.Error()
	}
	if es, err = s.settle(ctx); err != nil {
		return rep, err
	}
	s.res.DurationS = math.Round(time.Since(start).Seconds()*100) / 100
	s.res.Open, s.res.Stranded, s.res.Queued, s.res.QueuedWithFreeSlot = es.open, es.stranded, es.queued, es.freeWhileQueued
	s.res.StrandedNoReply = es.noReply
	if s.res.SettleMGRttMs, err = s.botAPIRoundTrip(ctx); err != nil {
		return rep, err
	}
	for _, a := range s.accounts {
		if s.dead[a.id], err = s.deadLetters(ctx, a.id); err != nil {
			return rep, err
		}
	}
	stopSampling()
	sampling.Wait()
	smp.sample(ctx)
	s.res.CapViolationsMG, s.res.CapViolationsStore, s.res.CapExcessMax, s.res.Samples = smp.maxMG, smp.maxStore, smp.maxExcess, smp.samples
	s.res.CapViolations = max(smp.maxMG, smp.maxStore)
	for id := range smp.doubles {
		s.doubles[id] = true
	}
	for id := range smp.last {
		s.heldInMG[id] = true
	}
	for _, a := range s.accounts {
		n, err := mismatched(ctx, a.mg, s.be.observer, a.id)
		if err != nil {
			return rep, err
		}
		s.res.Mismatched += n
	}
	return rep, nil
}

// holdings fills the figures of the streams' holders, as the fleet
// members reported them up to end.
func (s *scenario) holdings(end time.Time) {
	h := s.holders.replay(end)
	s.res.AccountOwnersMax = h.ownersMax
	s.res.OwnersExamples = h.overlaps
	s.res.FailoverSMax = round3(h.failoverMax.Seconds())
	s.res.Failovers, s.res.FailoversUntaken = h.failovers, h.untaken
}

// deadLetters returns the account's dead letters: through the public
// Distributor.DeadLetters in this process, from the store when the
// fleets run in worker processes.
func (s *scenario) deadLetters(ctx context.Context, acc bd.AccountID) ([]store.DeadJob, error) {
	const limit = 1 << 20
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	if len(s.nodes) > 0 {
		if n, ok := s.nodes[0].(*localNode); ok && len(n.fleets) > 0 {
			d, err := n.fleets[0].Distributor(acc)
			if err != nil {
				return nil, fmt.Errorf("loadtest: dead letters: %w", err)
			}
			dead, err := d.DeadLetters(ctx, limit)
			if err != nil {
				return nil, fmt.Errorf("loadtest: dead letters: %w", err)
			}
			return dead, nil
		}
	}
	dead, err := s.be.observer.DeadJobs(ctx, acc, limit)
	if err != nil {
		return nil, fmt.Errorf("loadtest: dead letters: %w", err)
	}
	return dead, nil
}

// botAPIRoundTrip times one Bot API request (GET /bots?self=1) to the
// first account's MG as the distributors make them: it shows the latency
// in force while they settle.
func (s *scenario) botAPIRoundTrip(ctx context.Context) (float64, error) {
	m := s.accounts[0].mg
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL()+mg.APIPrefix+"/bots?self=1", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Bot-Token", m.BotToken().Reveal())
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("loadtest: Bot API round trip: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rtt := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("loadtest: Bot API round trip: status %d", resp.StatusCode)
	}
	return ms(rtt), nil
}

// countReplies fills the reply figures once the distributors stopped:
// account by account, each against its own MG's message log.
func (s *scenario) countReplies(ctx context.Context, rep nodeReport) error {
	parallel := 1
	if s.be.db != nil {
		parallel = 4
	}
	byAccount := map[bd.AccountID]*nodeReport{}
	for _, a := range s.accounts {
		byAccount[a.id] = &nodeReport{}
	}
	for _, a := range rep.Assignments {
		if r := byAccount[a.Account]; r != nil {
			r.Assignments = append(r.Assignments, a)
		}
	}
	for _, q := range rep.Queued {
		if r := byAccount[q.Account]; r != nil {
			r.Queued = append(r.Queued, q)
		}
	}
	r := &s.res
	r.DeadLetters = map[string]int{}
	for _, a := range s.accounts {
		waiting, err := waitingNow(ctx, s.be.observer, a.id)
		if err != nil {
			return err
		}
		ra, err := accountReplies(ctx, a.mg, s.be.observer, a.id, s.replies, *byAccount[a.id], waiting, s.dead[a.id], parallel)
		if err != nil {
			return err
		}
		r.RepliesExpected += ra.expected
		r.RepliesDelivered += ra.delivered
		r.RepliesDuplicated += ra.duplicated
		r.RepliesLost += ra.lost
		r.RepliesDead += ra.dead
		r.RepliesClosedUnsent += ra.closedUnsent
		r.RepliesSuperseded += ra.superseded
		r.RepliesUnclaimed += ra.unclaimed
		r.RepliesUnexpected += ra.unexpected
		r.RepliesDeadDelivered += ra.deadDelivered
		for _, e := range ra.examples {
			if len(r.ReplyExamples) < 5 {
				r.ReplyExamples = append(r.ReplyExamples, string(a.id)+": "+e)
			}
		}
		for _, j := range s.dead[a.id] {
			r.DeadLetters[string(j.Kind)]++
		}
		pending, err := s.be.observer.PendingJobs(ctx, a.id)
		if err != nil {
			return fmt.Errorf("loadtest: pending jobs: %w", err)
		}
		r.JobsPending += pending
	}
	return nil
}
