package crm

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/botdistributor/botdistributor/internal/backoff"
	"github.com/botdistributor/botdistributor/internal/option"
)

// Option configures a [Client]; pass options to [New] or [Connect]. Each
// option checks its own argument, and New returns the error of every option
// that refused one. A nil argument means the option's default.
type Option interface {
	ConnectOption
	apply(*config) error
}

// ConnectOption configures [Connect]: every [Option] (it tunes the client
// Connect creates) and [WithRequirements].
type ConnectOption interface {
	applyConnect(*connectConfig) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

func (f optionFunc) applyConnect(c *connectConfig) error { return f(&c.client) }

type connectOptionFunc func(*connectConfig) error

func (f connectOptionFunc) applyConnect(c *connectConfig) error { return f(c) }

// Defaults of a [Client]'s retries.
const (
	// DefaultMaxAttempts is how many times a request answered 503 or 429 is
	// sent in all, unless [WithMaxAttempts] says otherwise.
	DefaultMaxAttempts = 6
	// DefaultBackoff is the wait before the first retry, unless
	// [WithBackoff] says otherwise.
	DefaultBackoff = 500 * time.Millisecond
	// DefaultMaxBackoff caps the wait between retries, unless [WithBackoff]
	// says otherwise.
	DefaultMaxBackoff = 8 * time.Second
)

type config struct {
	limiters   *Limiters
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	now        func() time.Time
	sleep      func(context.Context, time.Duration) error
	logger     *slog.Logger
}

type connectConfig struct {
	client       config
	requirements []Requirement
}

func defaultConfig() config {
	return config{
		limiters:   SharedLimiters(),
		attempts:   DefaultMaxAttempts,
		backoff:    DefaultBackoff,
		maxBackoff: DefaultMaxBackoff,
		now:        time.Now,
		sleep:      sleepTimer,
		logger:     slog.New(slog.DiscardHandler),
	}
}

// WithLimiters sets the registry of per-key token buckets the client waits
// on. Every client of a key in the process must use the same registry for
// the limit to hold. The default (and nil) is [SharedLimiters], 10 requests
// per second per key.
func WithLimiters(l *Limiters) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			l = SharedLimiters()
		}
		c.limiters = l
		return nil
	})
}

// WithMaxAttempts sets how many times a request answered 503 or 429 is sent
// in all before [ErrThrottled] is returned. The default (and 0) is
// [DefaultMaxAttempts]; a negative n is refused.
func WithMaxAttempts(n int) Option {
	return optionFunc(func(c *config) error {
		switch {
		case n < 0:
			return fmt.Errorf("WithMaxAttempts: negative count %d", n)
		case n == 0:
			n = DefaultMaxAttempts
		}
		c.attempts = n
		return nil
	})
}

// WithBackoff sets the wait before the first retry of a throttled request
// (it doubles on each further retry) and the ceiling of that wait. A zero first
// means [DefaultBackoff], a zero ceiling [DefaultMaxBackoff]; a ceiling below
// first is raised to first. A negative duration is refused.
func WithBackoff(first, ceiling time.Duration) Option {
	return optionFunc(func(c *config) error {
		lo, hi, err := backoff.Bounds(first, ceiling, DefaultBackoff, DefaultMaxBackoff)
		if err != nil {
			return fmt.Errorf("WithBackoff: %w", err)
		}
		c.backoff, c.maxBackoff = lo, hi
		return nil
	})
}

// WithClock sets the clock used by the rate limiter and for the start date
// of [Client.CustomerChanges]'s first call. The default (and nil) is
// time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) error {
		if now == nil {
			now = time.Now
		}
		c.now = now
		return nil
	})
}

// WithSleep sets how the client waits, for the rate limit and between
// retries: sleep waits d or until ctx ends, returning ctx.Err() then. The
// default (and nil) is a timer.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return optionFunc(func(c *config) error {
		if sleep == nil {
			sleep = sleepTimer
		}
		c.sleep = sleep
		return nil
	})
}

// WithLogger sets the logger that receives retries at debug level. Lines
// carry the domain and [KeyID], never the key. The default (and nil) is no
// logging.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
		return nil
	})
}

// WithRequirements sets the key permissions [Connect] checks. The default
// (and none) is [Requirements].
func WithRequirements(reqs ...Requirement) ConnectOption {
	return connectOptionFunc(func(c *connectConfig) error {
		c.requirements = reqs
		return nil
	})
}

// applyAll applies every option with apply and returns the refusals joined
// and prefixed with "crm: ", or nil.
func applyAll[O any](opts []O, apply func(O) error) error {
	if err := option.Apply(opts, apply); err != nil {
		return fmt.Errorf("crm: %w", err)
	}
	return nil
}
