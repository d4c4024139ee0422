package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/store"
)

// BuildFunc builds what one account needs beyond the store: how it
// reaches MessageGateway, its replier, binder and event stream. The fleet
// calls it when it starts hosting the account and again when the
// account's credentials (domain, API key, MG endpoint or token) change.
// It must not block for long; connecting belongs in the Stream.
type BuildFunc func(ctx context.Context, acc bd.Account) (Parts, error)

// Parts are an account's pieces built by a [BuildFunc].
type Parts struct {
	// Gateway assigns dialogs in MessageGateway; required.
	Gateway distributor.Gateway
	// Options are the account's own distributor options (a replier, a
	// binder), applied after the fleet's common ones (WithDistributor).
	Options []distributor.Option
	// Stream returns the account's event stream, feeding target. The fleet
	// calls it each time this process takes the account's lease and runs
	// the stream until the lease is given up or lost; nil means the
	// account has no stream here (its jobs are still done).
	Stream func(target mgsource.Target) (Stream, error)
	// Roster reads the account's managers and hands them to
	// target.SetRoster. A distributor learns its roster from the stream,
	// which runs in one process: the fleet calls Roster for an account
	// whose stream this process does not run, before the account's first
	// job here (the job is retried later if it fails) and again before a
	// job once the roster it read is older than WithRosterRefresh. Nil
	// means such a distributor knows no manager: its decisions find
	// nobody online.
	Roster func(ctx context.Context, target mgsource.Target) error
	// Poll reads what the stream does not bring, e.g. the managers'
	// statuses kept in a CRM, and hands changes to target. It runs in the
	// process running the account's stream, for as long as it does: once
	// before the stream starts (given at most 15 s, so that the stream's
	// first roster already has what it read), then every WithPoll beside
	// the stream. A failure is the account's "poll" problem until a poll
	// succeeds. May be nil.
	Poll func(ctx context.Context, target mgsource.Target) error
	// Close releases what the build made (clients, connections) once the
	// account stopped: its stream ended and no job of it runs. May be nil.
	Close func()
	// Value is whatever the build wants to find again by account, e.g.
	// the clients it made for a settings page to list channels with; see
	// [Fleet.Value]. May be nil.
	Value any
}

// Stream is an account's event stream: an *mgsource.Source, or anything
// that feeds its target the same way (events, then the roster and a resync
// after every connect).
type Stream interface {
	// Run streams until ctx ends and returns once every goroutine it
	// started has exited.
	Run(ctx context.Context) error
}

// Defaults of the options.
const (
	// DefaultLeaseTTL is how long a lease outlives its last renewal:
	// accounts of a process killed without warning are taken over after
	// at most the TTL plus one heartbeat (a quarter of the TTL).
	DefaultLeaseTTL = 8 * time.Second
	// DefaultRescan is how often the fleet reads the accounts and their
	// settings from the store.
	DefaultRescan = 5 * time.Second
	// DefaultSweep is how often the accounts held are swept, as
	// Distributor.Run does by default.
	DefaultSweep = 30 * time.Second
	// DefaultEventRetention is how long processed events are remembered,
	// as Distributor.Run does by default.
	DefaultEventRetention = 24 * time.Hour
	// DefaultRosterRefresh is how old the roster of an account whose
	// stream runs in another process may be before a job reads it again
	// (see Parts.Roster).
	DefaultRosterRefresh = 2 * time.Second
	// DefaultPoll is how often the process running an account's stream
	// runs its Parts.Poll.
	DefaultPoll = 10 * time.Second
)

// Option configures a Fleet; pass options to [New].
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	build  BuildFunc
	leases store.Leases
	member string
	ttl    time.Duration
	rescan time.Duration
	work   store.WorkOptions
	dopts  []distributor.Option
	logger *slog.Logger
	hooks  Hooks
	sweep  time.Duration
	// keepEvents is how long event records are kept (WithEventRetention).
	keepEvents time.Duration
	// rosterEvery is how old a roster read with Parts.Roster may get
	// (WithRosterRefresh).
	rosterEvery time.Duration
	// pollEvery is how often Parts.Poll runs (WithPoll).
	pollEvery time.Duration
}

// WithBuild sets how an account's parts are built; required. [MG] builds
// them for MessageGateway.
func WithBuild(b BuildFunc) Option {
	return optionFunc(func(c *config) error {
		if b == nil {
			return errors.New("WithBuild: nil build function")
		}
		c.build = b
		return nil
	})
}

// WithLeases sets where the accounts' leases are kept. The default is the
// store itself when it implements [store.Leases] (store/memory and
// store/sqlstore do); otherwise this process holds every account.
func WithLeases(l store.Leases) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("WithLeases: nil leases")
		}
		c.leases = l
		return nil
	})
}

// WithMember names this process among those sharing the store; it must be
// unique among the live ones. The default is the host name, the process
// id and a random suffix.
func WithMember(id string) Option {
	return optionFunc(func(c *config) error {
		if id == "" {
			return errors.New("WithMember: empty member id")
		}
		c.member = id
		return nil
	})
}

// WithLeaseTTL sets how long a lease outlives its last renewal (see
// [DefaultLeaseTTL]). Leases are renewed every quarter of it, and a
// process stops an account's stream when a quarter of it is left without
// a renewal, so that the next holder never overlaps it.
func WithLeaseTTL(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d < 40*time.Millisecond {
			return fmt.Errorf("WithLeaseTTL: %s is too short; at least 40ms", d)
		}
		c.ttl = d
		return nil
	})
}

// WithRescan sets how often the fleet reads the accounts from the store,
// to start new ones, put changed settings in force and stop removed ones
// (see [DefaultRescan]). [Fleet.Rescan] does it at once.
func WithRescan(every time.Duration) Option {
	return optionFunc(func(c *config) error {
		if every <= 0 {
			return fmt.Errorf("WithRescan: interval must be positive, got %s", every)
		}
		c.rescan = every
		return nil
	})
}

// WithSweep sets how often the fleet runs the sweep (Distributor.Sweep:
// reassignment timers, the safety-net drain) of each account it holds,
// then prunes the store's old event records once. The default is
// DefaultSweep.
func WithSweep(every time.Duration) Option {
	return optionFunc(func(c *config) error {
		if every <= 0 {
			return fmt.Errorf("WithSweep: interval must be positive, got %s", every)
		}
		c.sweep = every
		return nil
	})
}

// WithEventRetention sets how long the store keeps the records of
// processed events, by which duplicate deliveries are recognised; the
// sweep prunes older ones. The default is DefaultEventRetention.
func WithEventRetention(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("WithEventRetention: retention must be positive, got %s", d)
		}
		c.keepEvents = d
		return nil
	})
}

// WithRosterRefresh sets how old the roster of an account whose stream
// runs in another process may be before a job of the account reads it
// again with Parts.Roster (see [DefaultRosterRefresh]). The stream's
// process learns of a manager going offline at once; the others within
// this interval, and until then may still give that manager a dialog.
func WithRosterRefresh(every time.Duration) Option {
	return optionFunc(func(c *config) error {
		if every <= 0 {
			return fmt.Errorf("WithRosterRefresh: interval must be positive, got %s", every)
		}
		c.rosterEvery = every
		return nil
	})
}

// WithPoll sets how often the process running an account's stream runs
// the account's Parts.Poll beside it (see [DefaultPoll]).
func WithPoll(every time.Duration) Option {
	return optionFunc(func(c *config) error {
		if every <= 0 {
			return fmt.Errorf("WithPoll: interval must be positive, got %s", every)
		}
		c.pollEvery = every
		return nil
	})
}

// WithWork tunes the process's one worker set, which does the jobs of
// every account of the store: how many at once, attempts, backoff.
// WorkOptions.Accounts must be empty.
func WithWork(o store.WorkOptions) Option {
	return optionFunc(func(c *config) error {
		if len(o.Accounts) > 0 {
			return errors.New("WithWork: WorkOptions.Accounts must be empty: the fleet's workers take every account's jobs")
		}
		n, err := o.Normalized()
		if err != nil {
			return fmt.Errorf("WithWork: %w", err)
		}
		c.work = n
		return nil
	})
}

// WithDistributor adds options given to every account's distributor (a
// strategy registry, hooks, a logger), before the account's own.
// distributor.WithWork is set by the fleet (see WithWork).
func WithDistributor(opts ...distributor.Option) Option {
	return optionFunc(func(c *config) error {
		for i, o := range opts {
			if o == nil {
				return fmt.Errorf("WithDistributor: option %d is nil", i)
			}
		}
		c.dopts = append(c.dopts, opts...)
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

// WithHooks sets functions called as the fleet works, e.g. to count them
// as metrics.
func WithHooks(h Hooks) Option {
	return optionFunc(func(c *config) error {
		c.hooks = h
		return nil
	})
}

// Hooks are optional functions the fleet calls as it works. Any may be
// nil. They are called synchronously, possibly concurrently, and must not
// block.
type Hooks struct {
	// Holding is called when this process starts (true) or stops (false)
	// running an account's stream.
	Holding func(account bd.AccountID, holding bool)
	// Round is called after every lease round with its outcome and how
	// long it took.
	Round func(st store.LeaseState, took time.Duration, err error)
	// Failed is called when a part of the fleet failed: "build", "stream",
	// "poll", "roster", "rescan" (of one account, or of all with an empty
	// account), "lease", "work", "prune events". An account's failures are
	// also its AccountState.Problems until the part succeeds again.
	Failed func(account bd.AccountID, op string, err error)
	// Built is called each time an account's distributor is built: when
	// the fleet starts hosting it and when it is rebuilt on new
	// credentials, e.g. to make the account's metrics visible at zero.
	Built func(account bd.AccountID)
}

// defaultMember returns host-pid-random.
func defaultMember() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
