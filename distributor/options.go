package distributor

import (
	"errors"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"log/slog"
	"time"

	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/internal/option"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/strategy"
)

// Option configures a Distributor; pass options to [New].
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	strategy   strategy.Strategy
	strategies *strategy.Registry
	replier    reply.Replier
	binder     binding.Binder
	profiler   binding.Profiler
	profile    profileConfig
	logger     *slog.Logger
	now        func() time.Time
	hooks      Hooks
	sweep      time.Duration
	keepEvents time.Duration
	recent     int
	work       store.WorkOptions
	// indexMin is the smallest pool that gets an index (see index).
	indexMin int
}

// newConfig applies opts over the defaults: round robin, the built-in
// strategy registry, reply.Nop, a discarding logger, time.Now. Every
// invalid option is named in the error.
func newConfig(opts []Option) (config, error) {
	cfg := config{
		replier:    reply.Nop,
		logger:     slog.New(slog.DiscardHandler),
		now:        time.Now,
		sweep:      30 * time.Second,
		keepEvents: 24 * time.Hour,
		recent:     100,
		indexMin:   indexMin,
		profile:    profileConfig{timeout: DefaultProfileTimeout, maxAge: DefaultProfileMaxAge},
	}
	if err := option.Apply(opts, func(o Option) error { return o.apply(&cfg) }); err != nil {
		return config{}, fmt.Errorf("distributor: %w", err)
	}
	if cfg.strategies == nil {
		cfg.strategies = strategy.NewRegistry()
	}
	if cfg.strategy == nil {
		cfg.strategy = strategy.NewRoundRobin()
	}
	return cfg, nil
}

// WithStrategy sets the strategy used for accounts whose settings name none.
// The default is round robin (longest since last assignment).
func WithStrategy(s strategy.Strategy) Option {
	return optionFunc(func(c *config) error {
		if s == nil {
			return errors.New("WithStrategy: nil strategy")
		}
		c.strategy = s
		return nil
	})
}

// WithStrategies sets the registry that settings' strategy names are looked
// up in. The default is strategy.NewRegistry() with the built-ins.
func WithStrategies(r *strategy.Registry) Option {
	return optionFunc(func(c *config) error {
		if r == nil {
			return errors.New("WithStrategies: nil registry")
		}
		c.strategies = r
		return nil
	})
}

// WithReplier sets how automatic replies are sent. The default is reply.Nop.
func WithReplier(r reply.Replier) Option {
	return optionFunc(func(c *config) error {
		if r == nil {
			return errors.New("WithReplier: nil replier")
		}
		c.replier = r
		return nil
	})
}

// WithBinder sets the binder used for accounts with AutoBind. Without one,
// customers are not bound.
func WithBinder(b binding.Binder) Option {
	return optionFunc(func(c *config) error {
		if b == nil {
			return errors.New("WithBinder: nil binder")
		}
		c.binder = b
		return nil
	})
}

// WithProfiler sets where customers' retailCRM profiles (personal
// manager, segments, tags) are read from, for the settings that route by
// them (Settings.PersonalManager, PrioritySegments, PriorityTags). Without
// one those settings have no effect. Profiles are kept with the customers'
// bindings in the store (when it keeps bindings) and read again once older
// than maxAge; a read that takes longer than timeout does not hold the
// dialog: it is routed without the profile, and the read goes on in the
// background for the next decisions. Zero durations mean
// DefaultProfileTimeout and DefaultProfileMaxAge.
func WithProfiler(p binding.Profiler, timeout, maxAge time.Duration) Option {
	return optionFunc(func(c *config) error {
		switch {
		case p == nil:
			return errors.New("WithProfiler: nil profiler")
		case timeout < 0 || maxAge < 0:
			return fmt.Errorf("WithProfiler: durations must not be negative, got timeout %s, max age %s", timeout, maxAge)
		}
		c.profiler = p
		if timeout > 0 {
			c.profile.timeout = timeout
		}
		if maxAge > 0 {
			c.profile.maxAge = maxAge
		}
		return nil
	})
}

// WithLogger sets the logger. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		c.logger = l
		return nil
	})
}

// WithClock sets the source of the current time. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) error {
		if now == nil {
			return errors.New("WithClock: nil clock")
		}
		c.now = now
		return nil
	})
}

// WithHooks sets functions called on every decision and outcome, e.g. to
// count them as metrics. Hooks run synchronously and must be fast.
func WithHooks(h Hooks) Option {
	return optionFunc(func(c *config) error {
		c.hooks = h
		return nil
	})
}

// WithSweep sets how often [Distributor.Run] drains the account's queue as
// a safety net (draining is event-driven otherwise). The default is 30s.
func WithSweep(every time.Duration) Option {
	return optionFunc(func(c *config) error {
		if every <= 0 {
			return errors.New("WithSweep: interval must be positive")
		}
		c.sweep = every
		return nil
	})
}

// WithEventRetention sets how long processed-event records are kept to
// recognise duplicate deliveries; [Distributor.Run] prunes older ones (of
// every account in the store). The default is 24h.
func WithEventRetention(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return errors.New("WithEventRetention: retention must be positive")
		}
		c.keepEvents = d
		return nil
	})
}

// WithRecentTraces sets how many recent decision traces are kept per account
// for [Distributor.Recent]. The default is 100; 0 keeps none.
func WithRecentTraces(n int) Option {
	return optionFunc(func(c *config) error {
		if n < 0 {
			return errors.New("WithRecentTraces: count must not be negative")
		}
		c.recent = n
		return nil
	})
}

// WithWork tunes the distributor's workers: how many jobs run at once in
// this process (store.DefaultWorkers unless set), how often a job is tried
// before it becomes a dead letter and the backoff between tries. The
// workers take the jobs of the distributor's account only: Accounts must
// be empty or name just that account.
func WithWork(o store.WorkOptions) Option {
	return optionFunc(func(c *config) error {
		if _, err := o.Normalized(); err != nil {
			return fmt.Errorf("WithWork: %w", err)
		}
		c.work = o
		return nil
	})
}

// Hooks are optional functions the distributor calls as it works. Any may
// be nil. They are called synchronously, possibly concurrently, and must not
// block.
type Hooks struct {
	// Decision is called with every decision taken (not with dry runs).
	Decision func(Trace)
	// Assigned is called when a dialog got a responsible; wait is the time
	// from the dialog's opening (Dialog.OpenedAt, or the event's time when
	// that is unknown) until MG took the assignment.
	Assigned func(account bd.AccountID, to bd.Responsible, wait time.Duration, fromQueue bool)
	// Reassigned is called when a dialog moved from one manager to another.
	Reassigned func(account bd.AccountID, from bd.ManagerID, to bd.Responsible)
	// Queued is called when a dialog starts waiting, with the reason.
	Queued func(account bd.AccountID, reason bd.Situation)
	// Replied is called after an automatic reply was sent.
	Replied func(account bd.AccountID, s bd.Situation)
	// Failed is called when an operation failed, e.g. "gateway.assign",
	// "job reply" (a job attempt that will be retried), "bind".
	Failed func(account bd.AccountID, op string, err error)
	// Dead is called when a job failed its last attempt and became a dead
	// letter (see [Distributor.DeadLetters]).
	Dead func(account bd.AccountID, job store.Job, err error)
	// WaitAlert is called when the longest wait of the account's queue
	// passed bd.Settings.WaitAlert: once per breach, seen by a sweep.
	WaitAlert func(account bd.AccountID, a WaitAlert)
}
