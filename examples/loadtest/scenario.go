package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store"
)

// account is the one account of a run.
const account bd.AccountID = "loadtest.example"

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

// scenario is one run against one store.
type scenario struct {
	cfg       *Config
	kind      string
	processes int
	perProc   int
	mg        *sandbox.MG
	channel   bd.ChannelID
	managers  []bd.ManagerID
	be        *backend
	spec      nodeSpec
	// fleetMu guards fleets, killed and the restart figures while workers
	// are killed and started again during the load.
	fleetMu sync.Mutex
	fleets  []fleet
	// killed is what killed worker processes reported before they died.
	killed nodeReport
	// replies tells the account's replies apart in MG's message log.
	replies *replyMatcher
	// dead are the account's dead letters at the end.
	dead []store.DeadJob
	// notes are problems of the run shown with the report's errors.
	notes []string
	res   Result
	// doubles are the dialogs assigned twice: seen changing responsible
	// in MG, or reported assigned twice by the distributors.
	doubles map[bd.DialogID]bool
	// heldInMG are the dialogs the sampler saw with a responsible in MG.
	heldInMG map[bd.DialogID]bool
}

func (s *scenario) logf(format string, args ...any) {
	fmt.Fprintf(s.cfg.Log, "loadtest: %s: "+format+"\n", append([]any{s.kind}, args...)...)
}

func runScenario(ctx context.Context, cfg *Config, kind string, processes, perProc int) (res Result, err error) {
	s := &scenario{cfg: cfg, kind: kind, processes: processes, perProc: perProc, doubles: map[bd.DialogID]bool{}, heldInMG: map[bd.DialogID]bool{}}
	s.res = Result{
		Store: kind, Mode: cfg.mode(), Processes: processes, Distributors: perProc, Workers: cfg.Workers,
		PGOutageMs: float64(cfg.PGOutage) / float64(time.Millisecond),
		Managers:   cfg.Managers, Capacity: cfg.Capacity, Dialogs: cfg.Dialogs, Rate: cfg.Rate,
		CloseAfterMs: float64(cfg.CloseAfter) / float64(time.Millisecond), CloseShare: cfg.CloseShare,
	}
	if s.mg, err = sandbox.NewMG(sandbox.MGOptions{Seed: cfg.Seed}); err != nil {
		return Result{}, err
	}
	defer func() { err = errors.Join(err, s.mg.Close()) }()
	for i := range cfg.Managers {
		s.managers = append(s.managers, s.mg.AddManager(sandbox.MGUser{FirstName: "Manager", LastName: strconv.Itoa(i + 1), Online: true}))
	}
	if s.channel, err = s.mg.AddChannel(ctx, "telegram", "Shop"); err != nil {
		return Result{}, err
	}
	if s.be, err = openBackend(ctx, cfg, kind); err != nil {
		return Result{}, err
	}
	defer func() { err = errors.Join(err, s.be.close()) }()
	settings := settingsFor(s.managers, cfg.Capacity)
	if err := settings.Validate(); err != nil {
		return Result{}, err
	}
	if s.replies, err = newReplyMatcher(settings.Replies); err != nil {
		return Result{}, err
	}
	err = s.be.observer.SaveAccount(ctx, bd.Account{
		ID: account, Domain: "https://loadtest.example", MGEndpoint: s.mg.URL(), MGToken: s.mg.BotToken(), Settings: settings,
	})
	if err != nil {
		return Result{}, err
	}
	if s.res.RawUpdatePerS, err = s.be.rawUpdateRate(ctx, cfg.RawUpdate); err != nil {
		return Result{}, err
	}
	if err := s.startFleets(ctx); err != nil {
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

// startFleets starts the distributors: in this process, or in worker
// processes sharing PostgreSQL.
func (s *scenario) startFleets(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	spec := nodeSpec{
		Account: string(account), MGURL: s.mg.URL(), MGToken: s.mg.BotToken().Reveal(),
		Sweep: s.cfg.Sweep, Distributors: s.perProc, DSN: s.be.nodeDSN,
		Workers: s.cfg.Workers, Settle: s.cfg.Settle, CPUProfile: s.cfg.CPUProfile,
	}
	s.spec = spec
	if s.processes == 1 {
		f, err := startLocal(ctx, spec, s.be.shared, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		s.fleets = []fleet{f}
		return nil
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for range s.processes {
		wg.Go(func() {
			p, err := startProc(ctx, spec, s.cfg.Log)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			s.fleets = append(s.fleets, p)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_, serr := s.stopFleets(context.Background())
		return errors.Join(err, serr)
	}
	return nil
}

func (s *scenario) stopFleets(ctx context.Context) (nodeReport, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s.fleetMu.Lock()
	defer s.fleetMu.Unlock()
	rep := s.killed
	s.killed = nodeReport{}
	reps := make([]nodeReport, len(s.fleets))
	errs := make([]error, len(s.fleets))
	var wg sync.WaitGroup
	for i, f := range s.fleets {
		wg.Go(func() { reps[i], errs[i] = f.stop(ctx) })
	}
	wg.Wait()
	for _, r := range reps {
		rep.merge(r)
	}
	s.fleets = nil
	return rep, errors.Join(errs...)
}

func (s *scenario) resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Settle)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(s.fleets))
	for i, f := range s.fleets {
		wg.Go(func() { errs[i] = f.resync(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// drive runs the load with the faults, lets the distributors settle,
// resyncs them, takes the end state and stops them.
func (s *scenario) drive(ctx context.Context) (rep nodeReport, err error) {
	defer func() {
		// A distributor that does not stop in time is a result of the run
		// (its process is killed and what it sent as it went is kept).
		r, serr := s.stopFleets(context.Background())
		rep = r
		if serr != nil {
			s.note("stop: " + serr.Error())
		}
	}()
	cfg := s.cfg
	err = s.mg.SetFaults(sandbox.MGFaults{ServerErrorRatio: cfg.Err5xx, RateLimitRatio: cfg.Err429, ErrAfterApply: cfg.ErrApplied, Latency: cfg.Latency})
	if err != nil {
		return rep, err
	}
	smp := newSampler(s.mg, s.be.observer, account, s.managers, cfg.Capacity)
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
	if err := s.mg.SetFaults(sandbox.MGFaults{Latency: cfg.Latency}); err != nil {
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
	if s.dead, err = s.deadLetters(ctx); err != nil {
		return rep, err
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
	if s.res.Mismatched, err = mismatched(ctx, s.mg, s.be.observer, account); err != nil {
		return rep, err
	}
	return rep, nil
}

// deadLetters returns the account's dead letters: through the public
// Distributor.DeadLetters in this process, from the store when the
// distributors run in worker processes.
func (s *scenario) deadLetters(ctx context.Context) ([]store.DeadJob, error) {
	const limit = 1 << 20
	s.fleetMu.Lock()
	defer s.fleetMu.Unlock()
	if len(s.fleets) > 0 {
		if f, ok := s.fleets[0].(*localFleet); ok && len(f.nodes) > 0 {
			dead, err := f.nodes[0].d.DeadLetters(ctx, limit)
			if err != nil {
				return nil, fmt.Errorf("loadtest: dead letters: %w", err)
			}
			return dead, nil
		}
	}
	dead, err := s.be.observer.DeadJobs(ctx, account, limit)
	if err != nil {
		return nil, fmt.Errorf("loadtest: dead letters: %w", err)
	}
	return dead, nil
}

// botAPIRoundTrip times one Bot API request (GET /bots?self=1) as the
// distributors make them: it shows the latency in force while they settle.
func (s *scenario) botAPIRoundTrip(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.mg.URL()+mg.APIPrefix+"/bots?self=1", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Bot-Token", s.mg.BotToken().Reveal())
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

// countReplies fills the reply figures once the distributors stopped.
func (s *scenario) countReplies(ctx context.Context, rep nodeReport) error {
	waiting, err := waitingNow(ctx, s.be.observer, account)
	if err != nil {
		return err
	}
	parallel := 1
	if s.be.db != nil {
		parallel = 4
	}
	ra, err := accountReplies(ctx, s.mg, s.be.observer, account, s.replies, rep, waiting, s.dead, parallel)
	if err != nil {
		return err
	}
	r := &s.res
	r.RepliesExpected, r.RepliesDelivered, r.RepliesDuplicated = ra.expected, ra.delivered, ra.duplicated
	r.RepliesLost, r.RepliesDead, r.RepliesClosedUnsent, r.RepliesSuperseded = ra.lost, ra.dead, ra.closedUnsent, ra.superseded
	r.RepliesUnclaimed, r.RepliesUnexpected, r.RepliesDeadDelivered = ra.unclaimed, ra.unexpected, ra.deadDelivered
	r.ReplyExamples = ra.examples
	r.DeadLetters = map[string]int{}
	for _, j := range s.dead {
		r.DeadLetters[string(j.Kind)]++
	}
	if r.JobsPending, err = s.be.observer.PendingJobs(ctx, account); err != nil {
		return fmt.Errorf("loadtest: pending jobs: %w", err)
	}
	return nil
}
