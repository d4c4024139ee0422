package bot

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/mg"
)

// account is what the bot adds to the fleet's parts of one account: its
// retailCRM client, the roster joining MG with retailCRM, and the state
// the page shows. The fleet builds one with [Supervisor.build] and drops
// it through Parts.Close once the account stopped (removed, or rebuilt on
// new credentials).
type account struct {
	acc      bd.Account // as built: the credentials Connect waits for
	endpoint string     // the MG endpoint as the client uses it
	log      *slog.Logger
	roster   *roster

	// Set by the build (fleet.MGOptions.Extra), before the fleet uses it.
	mg  *mg.Client
	crm *crm.Client

	// src is the event stream while this process runs it.
	src atomic.Pointer[mgsource.Source]

	mu       sync.Mutex
	problems map[string]string // component -> last error, cleared on success
}

// build is the fleet's BuildFunc: fleet.MG's parts (MG client, replier,
// gateway, mgsource.Source) with the bot's own around them — the
// retailCRM client and binder, the roster between the Source and the
// distributor, and a stream that polls retailCRM's managers beside the
// Source. It does no I/O.
func (s *Supervisor) build(ctx context.Context, acc bd.Account) (fleet.Parts, error) {
	s.attempted(acc)
	log := s.log.With(slog.String("account", string(acc.ID)))
	a := &account{acc: acc, log: log, problems: make(map[string]string)}
	a.roster = newRoster(acc.ID, func() { a.note(problemStream, nil) })
	mgRate, mgBurst := s.opts.MGRate, s.opts.MGBurst
	if mgRate == 0 {
		mgRate = mg.DefaultRate
	}
	if mgBurst == 0 {
		mgBurst = mg.DefaultBurst
	}
	parts, err := fleet.MG(fleet.MGOptions{
		Client: func(bd.Account) []mg.Option {
			return []mg.Option{mg.WithLimiter(rate.NewLimiter(mgRate, mgBurst)), mg.WithLogger(log)}
		},
		// The Source adds the account to its logger itself.
		Source: mgsource.Options{Stream: s.opts.Stream, Logger: s.log, Status: a.roster.status},
		Target: func(_ bd.Account, _ *mg.Client, t mgsource.Target) mgsource.Target { return a.roster.target(t) },
		Extra: func(_ context.Context, acc bd.Account, c *mg.Client) ([]distributor.Option, func(), error) {
			return s.extra(a, acc, c)
		},
	})(ctx, acc)
	if err != nil {
		return fleet.Parts{}, err
	}
	// Where another process holds the account's stream, nothing polls
	// retailCRM here: the roster this process's decisions use is read on
	// demand, retailCRM's managers (statuses) with MG's users, so that a
	// manager busy in retailCRM is busy here too.
	mgRoster := parts.Roster
	parts.Roster = func(ctx context.Context, t mgsource.Target) error {
		users, err := a.crm.Managers(ctx)
		if err != nil {
			a.note(problemCRM, err)
			return fmt.Errorf("retailCRM managers: %w", err)
		}
		a.roster.noteCRM(users)
		return mgRoster(ctx, t)
	}
	src := parts.Stream
	parts.Stream = func(t mgsource.Target) (fleet.Stream, error) {
		st, err := src(t)
		if err != nil {
			return nil, err
		}
		source, ok := st.(*mgsource.Source)
		if !ok {
			return nil, fmt.Errorf("bot: the event stream is a %T, not an *mgsource.Source", st)
		}
		return &accountStream{a: a, src: source, target: t, poll: s.opts.RosterPoll}, nil
	}
	s.put(a)
	if s.opts.Started != nil {
		s.opts.Started(acc.ID)
	}
	return parts, nil
}

// extra builds the account's retailCRM client and binder once fleet.MG has
// its MG client; the close it returns forgets the account.
func (s *Supervisor) extra(a *account, acc bd.Account, c *mg.Client) ([]distributor.Option, func(), error) {
	o := crm.Options{}
	if s.opts.CRM != nil {
		o = *s.opts.CRM
	}
	if o.Logger == nil {
		o.Logger = a.log
	}
	cc, err := crm.New(acc.Domain, acc.APIKey, &o)
	if err != nil {
		return nil, nil, fmt.Errorf("retailCRM client: %w", err)
	}
	binder, err := binding.NewRetailCRM(cc, s.store, &binding.RetailCRMOptions{Region: s.opts.PhoneRegion, Timeout: 10 * time.Second, Logger: a.log})
	if err != nil {
		return nil, nil, fmt.Errorf("customer binding: %w", err)
	}
	a.mg, a.crm, a.endpoint = c, cc, c.Endpoint()
	opts := []distributor.Option{
		distributor.WithBinder(binder), // a bind that fails is a job retried with backoff
		distributor.WithLogger(a.log),
	}
	// The clients hold no connection of their own to close (their idle
	// HTTP connections are the transport's); the account is forgotten.
	return opts, func() { s.drop(a) }, nil
}

// The components an account's problems are noted under.
const (
	problemStream = "MessageGateway stream"
	problemCRM    = "retailCRM managers"
)

// note records (or, for a nil err, clears) the last error of a component.
func (a *account) note(component string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		delete(a.problems, component)
		return
	}
	a.problems[component] = err.Error()
}

func (a *account) problemList() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a.problems)) {
		out = append(out, k+": "+a.problems[k])
	}
	return out
}

// stats returns the counts of the event stream this process runs, zero
// when it runs none.
func (a *account) stats() mgsource.Stats {
	if src := a.src.Load(); src != nil {
		return src.Stats()
	}
	return mgsource.Stats{}
}

// accountStream is an account's event stream as the fleet runs it in the
// process holding the account's lease: the MG Source and the retailCRM
// roster poller together, so that only that process polls retailCRM.
type accountStream struct {
	a      *account
	src    *mgsource.Source
	target mgsource.Target // the distributor, as the fleet gives it
	poll   time.Duration
}

var _ fleet.Stream = (*accountStream)(nil)

// Run reads retailCRM's managers once (so that the first roster MG gives
// is already joined with their statuses), then runs the Source and the
// poller until ctx ends or the Source stops; it returns when both have
// exited, with the Source's error.
func (st *accountStream) Run(ctx context.Context) error {
	st.a.src.Store(st.src)
	defer st.a.src.Store(nil)
	first, cancel := context.WithTimeout(ctx, 15*time.Second)
	st.pollCRM(first)
	cancel()

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(st.poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				st.pollCRM(ctx)
			}
		}
	})
	err := st.src.Run(ctx)
	stop()
	wg.Wait()
	return err
}

// Stats are the Source's counts, for fleet.Accounts' Connected.
func (st *accountStream) Stats() mgsource.Stats { return st.src.Stats() }

// pollCRM reads retailCRM's managers and updates the roster.
func (st *accountStream) pollCRM(ctx context.Context) {
	users, err := st.a.crm.Managers(ctx)
	if err == nil {
		err = st.a.roster.setCRM(ctx, st.target, users)
	}
	if ctx.Err() != nil {
		return
	}
	st.a.note(problemCRM, err)
	if err != nil {
		st.a.log.Warn("reading retailCRM managers failed", slog.Any("error", err))
	}
}
