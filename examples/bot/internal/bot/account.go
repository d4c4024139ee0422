package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/store"
)

// runtime is everything that runs for one account. It is made by
// newRuntime, started once with run and stopped by cancelling run's
// context; done is closed when every goroutine it started has exited and
// the distributor is closed.
type runtime struct {
	account  bd.AccountID
	domain   string
	endpoint string
	log      *slog.Logger

	dist   *distributor.Distributor
	mg     *mg.Client
	crm    *crm.Client
	src    *mgsource.Source
	roster *roster

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	problems map[string]string // component -> last error, cleared on success
}

// newRuntime builds an account's parts without starting anything or doing
// any I/O. It fails when the stored credentials or endpoint are unusable.
func newRuntime(s *Supervisor, acc bd.Account) (*runtime, error) {
	log := s.log.With(slog.String("account", string(acc.ID)))
	mgRate, mgBurst := s.opts.MGRate, s.opts.MGBurst
	if mgRate == 0 {
		mgRate = mg.DefaultRate
	}
	if mgBurst == 0 {
		mgBurst = mg.DefaultBurst
	}
	mc, err := mg.New(acc.MGEndpoint, acc.MGToken, mg.WithLimiter(rate.NewLimiter(mgRate, mgBurst)), mg.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("MessageGateway client: %w", err)
	}
	crmOpts := s.opts.CRM
	if crmOpts == nil {
		crmOpts = &crm.Options{}
	}
	o := *crmOpts
	if o.Logger == nil {
		o.Logger = log
	}
	cc, err := crm.New(acc.Domain, acc.APIKey, &o)
	if err != nil {
		return nil, fmt.Errorf("retailCRM client: %w", err)
	}
	replier, err := reply.NewTemplate(mc)
	if err != nil {
		return nil, err
	}
	binder, err := binding.NewRetailCRM(cc, s.store, &binding.RetailCRMOptions{Region: s.opts.PhoneRegion, Timeout: 10 * time.Second, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("customer binding: %w", err)
	}
	dopts := []distributor.Option{
		distributor.WithStrategies(s.strategies),
		distributor.WithReplier(replier),
		distributor.WithBinder(binder), // a bind that fails is a job retried with backoff
		// Every account has its own distributor (and MG client) over the
		// shared store: each works its own account's jobs.
		distributor.WithWork(store.WorkOptions{Accounts: []bd.AccountID{acc.ID}, Workers: s.opts.Workers}),
		distributor.WithLogger(log),
		distributor.WithHooks(s.opts.Hooks),
	}
	if s.opts.Sweep > 0 {
		dopts = append(dopts, distributor.WithSweep(s.opts.Sweep))
	}
	d, err := distributor.New(acc.ID, s.store, mgsource.Gateway{MG: mc}, dopts...)
	if err != nil {
		return nil, err
	}
	r := newRoster(acc.ID, d)
	src, err := mgsource.New(mgsource.Options{
		Account: acc.ID, Client: mc, Target: r, Status: r.status,
		Stream: s.opts.Stream, Logger: s.log, // the Source adds the account itself
	})
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	return &runtime{
		account: acc.ID, domain: acc.Domain, endpoint: mc.Endpoint(), log: log,
		dist: d, mg: mc, crm: cc, src: src, roster: r,
		done: make(chan struct{}), problems: make(map[string]string),
	}, nil
}

// run starts the account's goroutines and returns when ctx ends and they
// have all exited; then it closes the distributor (waiting for binds in
// flight) and closes rt.done.
func (rt *runtime) run(ctx context.Context, poll time.Duration) {
	defer close(rt.done)
	// Read retailCRM's managers first, so the first roster MG gives is
	// already joined with their statuses.
	first, cancel := context.WithTimeout(ctx, 15*time.Second)
	rt.pollCRM(first)
	cancel()

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := rt.src.Run(ctx); ctx.Err() == nil {
			rt.note("MessageGateway stream", fmt.Errorf("stopped: %w", err))
			rt.log.Error("MessageGateway stream stopped", slog.Any("error", err))
		}
	})
	wg.Go(func() { _ = rt.dist.Run(ctx) })
	wg.Go(func() {
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rt.pollCRM(ctx)
			}
		}
	})
	wg.Wait()
	if err := rt.dist.Close(); err != nil {
		rt.log.Error("closing the distributor", slog.Any("error", err))
	}
}

// pollCRM reads retailCRM's managers and updates the roster.
func (rt *runtime) pollCRM(ctx context.Context) {
	users, err := rt.crm.Managers(ctx)
	if err == nil {
		err = rt.roster.setCRM(ctx, users)
	}
	if ctx.Err() != nil {
		return
	}
	rt.note("retailCRM managers", err)
	if err != nil {
		rt.log.Warn("reading retailCRM managers failed", slog.Any("error", err))
	}
}

// note records (or, for a nil err, clears) the last error of a component.
func (rt *runtime) note(component string, err error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if err == nil {
		delete(rt.problems, component)
		return
	}
	rt.problems[component] = err.Error()
}

func (rt *runtime) problemList() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(rt.problems)) {
		out = append(out, k+": "+rt.problems[k])
	}
	return out
}

// stop cancels the runtime and waits until it has stopped.
func (rt *runtime) stop() {
	rt.cancel()
	<-rt.done
}

// errNotRunning is returned for an account whose runtime could not start.
var errNotRunning = errors.New("the account is not running")
