package retailcrm

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/internal/backoff"
	"github.com/botdistributor/botdistributor/internal/option"
)

// Option configures a [Binder]; pass options to [New]. Each option checks
// its own argument, and New returns the error of every option that refused
// one.
type Option interface {
	apply(*config) error
}

// PendingOption configures a [Pending]; pass options to [NewPending]. Each
// option checks its own argument, and NewPending returns the error of every
// option that refused one.
type PendingOption interface {
	applyPending(*pendingConfig) error
}

// ProfilerOption configures a [Profiler]; pass options to [NewProfiler].
// Each option checks its own argument, and NewProfiler returns the error of
// every option that refused one.
type ProfilerOption interface {
	applyProfiler(*profilerConfig) error
}

// LookupOption configures how a [Binder] and a [Profiler] alike look
// customers up: it is both an [Option] and a [ProfilerOption].
type LookupOption interface {
	Option
	ProfilerOption
}

// CommonOption configures a [Binder], a [Pending] and a [Profiler] alike:
// it is an [Option], a [PendingOption] and a [ProfilerOption].
type CommonOption interface {
	Option
	PendingOption
	ProfilerOption
}

// Defaults of the options.
const (
	// DefaultRegion is the region of phone numbers without a "+", unless
	// [WithRegion] says otherwise.
	DefaultRegion = "RU"
	// DefaultTimeout bounds one bind or one profile read, unless
	// [WithTimeout] says otherwise.
	DefaultTimeout = 30 * time.Second
	// DefaultManagerCacheAge is how long a [Profiler] keeps what it learnt
	// of a retailCRM user's MG user id, unless [WithManagerCacheAge] says
	// otherwise.
	DefaultManagerCacheAge = 10 * time.Minute
	// DefaultPendingBackoff is the wait before the first retry of a kept
	// bind, unless [WithBackoff] says otherwise.
	DefaultPendingBackoff = 5 * time.Second
	// DefaultPendingMaxBackoff caps the wait between retries of a kept
	// bind, unless [WithBackoff] says otherwise.
	DefaultPendingMaxBackoff = 5 * time.Minute
)

type config struct {
	region  string
	site    string
	timeout time.Duration
	now     func() time.Time
	logger  *slog.Logger
}

type profilerConfig struct {
	region     string
	timeout    time.Duration
	managerAge time.Duration
	now        func() time.Time
	logger     *slog.Logger
}

type pendingConfig struct {
	backoff    time.Duration
	maxBackoff time.Duration
	now        func() time.Time
	onDone     func(binding.Request, binding.Result, error)
	logger     *slog.Logger
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type pendingOptionFunc func(*pendingConfig) error

func (f pendingOptionFunc) applyPending(c *pendingConfig) error { return f(c) }

type profilerOptionFunc func(*profilerConfig) error

func (f profilerOptionFunc) applyProfiler(c *profilerConfig) error { return f(c) }

type lookupOption struct {
	binder   optionFunc
	profiler profilerOptionFunc
}

func (o lookupOption) apply(c *config) error { return o.binder(c) }

func (o lookupOption) applyProfiler(c *profilerConfig) error { return o.profiler(c) }

type commonOption struct {
	binder   optionFunc
	pending  pendingOptionFunc
	profiler profilerOptionFunc
}

func (o commonOption) apply(c *config) error { return o.binder(c) }

func (o commonOption) applyPending(c *pendingConfig) error { return o.pending(c) }

func (o commonOption) applyProfiler(c *profilerConfig) error { return o.profiler(c) }

// WithRegion sets the ISO 3166 region phone numbers without a "+" are read
// in, per account. The default (and "") is [DefaultRegion]; an unknown
// region is refused.
func WithRegion(region string) LookupOption {
	check := func() (string, error) {
		if region == "" {
			region = DefaultRegion
		}
		if !validRegion(region) {
			return "", fmt.Errorf("WithRegion: unknown phone region %q (want an ISO 3166 code such as \"RU\")", region)
		}
		return strings.ToUpper(region), nil
	}
	return lookupOption{
		binder: func(c *config) (err error) {
			c.region, err = check()
			return err
		},
		profiler: func(c *profilerConfig) (err error) {
			c.region, err = check()
			return err
		},
	}
}

// WithSite sets the store (site) code of created customers. The default
// (and "") leaves the choice to retailCRM.
func WithSite(site string) Option {
	return optionFunc(func(c *config) error {
		c.site = site
		return nil
	})
}

// WithTimeout bounds one bind or one profile read (a few requests under
// the key's rate limit); one cut by it fails with [binding.ErrUnavailable].
// The default (and 0) is [DefaultTimeout]; a negative d is refused.
func WithTimeout(d time.Duration) LookupOption {
	check := func() (time.Duration, error) {
		switch {
		case d < 0:
			return 0, fmt.Errorf("WithTimeout: negative duration %v", d)
		case d == 0:
			return DefaultTimeout, nil
		}
		return d, nil
	}
	return lookupOption{
		binder: func(c *config) (err error) {
			c.timeout, err = check()
			return err
		},
		profiler: func(c *profilerConfig) (err error) {
			c.timeout, err = check()
			return err
		},
	}
}

// WithManagerCacheAge sets how long a [Profiler] keeps a retailCRM user's
// MG user id (or that the user has none) before asking retailCRM again: a
// manager given chat access, or another MG account, shows within that
// time. The default (and 0) is [DefaultManagerCacheAge]; a negative d is
// refused.
func WithManagerCacheAge(d time.Duration) ProfilerOption {
	return profilerOptionFunc(func(c *profilerConfig) error {
		switch {
		case d < 0:
			return fmt.Errorf("WithManagerCacheAge: negative duration %v", d)
		case d == 0:
			d = DefaultManagerCacheAge
		}
		c.managerAge = d
		return nil
	})
}

// WithBackoff sets the wait before the first retry of a kept bind (it
// doubles after each failed retry) and the ceiling of that wait. A zero
// first means [DefaultPendingBackoff], a zero ceiling
// [DefaultPendingMaxBackoff]; a ceiling below first is raised to first. A
// negative duration is refused.
func WithBackoff(first, ceiling time.Duration) PendingOption {
	return pendingOptionFunc(func(c *pendingConfig) error {
		lo, hi, err := backoff.Bounds(first, ceiling, DefaultPendingBackoff, DefaultPendingMaxBackoff)
		if err != nil {
			return fmt.Errorf("WithBackoff: %w", err)
		}
		c.backoff, c.maxBackoff = lo, hi
		return nil
	})
}

// WithOnDone sets a function [Pending.Run] calls after a kept bind ends:
// with the result when it succeeded, or with the error when it failed for
// a reason retrying cannot fix (binding.ErrNoMatch, a wrong key, ...). It
// must not call back into the Pending's Run. The default (and nil) is
// none.
func WithOnDone(f func(req binding.Request, res binding.Result, err error)) PendingOption {
	return pendingOptionFunc(func(c *pendingConfig) error {
		c.onDone = f
		return nil
	})
}

// WithClock sets the clock: a [Binder] stamps the stored bindings with it,
// a [Pending] decides with it when a retry is due, a [Profiler] stamps
// profiles (ReadAt) and ages its cache with it. The default (and nil) is
// time.Now.
func WithClock(now func() time.Time) CommonOption {
	if now == nil {
		now = time.Now
	}
	return commonOption{
		binder:   func(c *config) error { c.now = now; return nil },
		pending:  func(c *pendingConfig) error { c.now = now; return nil },
		profiler: func(c *profilerConfig) error { c.now = now; return nil },
	}
}

// WithLogger sets the logger. A [Binder] logs one debug line per bind and
// a warning when a store write fails, never phones or emails; a [Pending]
// logs retries at debug level and permanent failures at warning level; a
// [Profiler] logs one debug line per profile read, never segments or tags.
// The default (and nil) is no logging.
func WithLogger(l *slog.Logger) CommonOption {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return commonOption{
		binder:   func(c *config) error { c.logger = l; return nil },
		pending:  func(c *pendingConfig) error { c.logger = l; return nil },
		profiler: func(c *profilerConfig) error { c.logger = l; return nil },
	}
}

// applyAll applies every option with apply and returns the refusals joined
// and prefixed with "retailcrm: " and the constructor's name, or nil.
func applyAll[O any](constructor string, opts []O, apply func(O) error) error {
	if err := option.Apply(opts, apply); err != nil {
		return fmt.Errorf("retailcrm: %s: %w", constructor, err)
	}
	return nil
}
