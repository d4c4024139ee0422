package fleet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/reply"
)

// MGOption configures the parts [MG] builds; pass options to MG. Each
// option checks its own argument; as MG returns a [BuildFunc], an option's
// refusal is the error of every build, naming the option.
type MGOption interface {
	applyMG(*mgConfig) error
}

type mgOptionFunc func(*mgConfig) error

func (f mgOptionFunc) applyMG(c *mgConfig) error { return f(c) }

type mgConfig struct {
	rate   rate.Limit
	burst  int
	client func(acc bd.Account) []mg.Option
	status func(bd.ManagerID) (bd.ManagerStatus, bool)
	source []mgsource.Option
	target func(acc bd.Account, c *mg.Client, t mgsource.Target) mgsource.Target
	extra  func(ctx context.Context, acc bd.Account, c *mg.Client) ([]distributor.Option, func(), error)
}

// WithMGRate limits each account's MG requests with a limiter of its own:
// perSecond requests per second with bursts of up to burst. A zero
// perSecond means mg.DefaultRate and a zero burst mg.DefaultBurst (the
// default, without the option, is the MG client's own limiter at those
// values); math.Inf(1) lifts the limit. A negative or NaN value is
// refused.
func WithMGRate(perSecond float64, burst int) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		if perSecond < 0 || math.IsNaN(perSecond) || burst < 0 {
			return fmt.Errorf("WithMGRate: rate %v and burst %d must not be negative", perSecond, burst)
		}
		if math.IsInf(perSecond, 1) {
			c.rate = rate.Inf
		} else {
			c.rate = rate.Limit(perSecond)
		}
		c.burst = burst
		return nil
	})
}

// WithMGClient sets a function returning more options of each account's MG
// client, e.g. a logger or an HTTP client, applied after the limiter. The
// default (and nil) is none.
func WithMGClient(f func(acc bd.Account) []mg.Option) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		c.client = f
		return nil
	})
}

// WithStatus sets where a manager's retailCRM status is read for the
// roster and the stream (mgsource.WithStatus). The default (and nil) is
// every manager free.
func WithStatus(f func(bd.ManagerID) (bd.ManagerStatus, bool)) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		c.status = f
		return nil
	})
}

// WithSource adds options of every account's mgsource.Source (e.g.
// mgsource.WithStream, WithLogger, WithResyncEvery), applied after
// mgsource.WithStatus. The default is none; a nil option is refused.
func WithSource(opts ...mgsource.Option) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		if slices.Contains(opts, nil) {
			return errors.New("WithSource: nil mgsource.Option")
		}
		c.source = append(c.source, opts...)
		return nil
	})
}

// WithTarget sets a function wrapping the distributor the stream and the
// roster feed, e.g. to join retailCRM statuses to MG's roster. The default
// (and nil) is none.
func WithTarget(f func(acc bd.Account, c *mg.Client, t mgsource.Target) mgsource.Target) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		c.target = f
		return nil
	})
}

// WithExtra sets a function returning more options for each account's
// distributor, e.g. a binder over its retailCRM client, and what to close
// when the account stops (may be nil). The default (and nil) is none.
func WithExtra(f func(ctx context.Context, acc bd.Account, c *mg.Client) ([]distributor.Option, func(), error)) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		c.extra = f
		return nil
	})
}

// MG returns a [BuildFunc] for accounts served over MessageGateway, tuned
// by opts (see [MGOption]): per account an mg.Client on the account's
// endpoint and bot token, a reply.Template sending through it, an
// mgsource.Gateway assigning through it, an mgsource.Source as its stream
// (which re-reads the roster and the open dialogs after every connect),
// and as its Roster the MG users (every page), translated as the Source
// does and passed through [WithTarget] when set.
func MG(opts ...MGOption) BuildFunc {
	var o mgConfig
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			errs = append(errs, errors.New("nil option"))
			continue
		}
		if err := opt.applyMG(&o); err != nil {
			errs = append(errs, err)
		}
	}
	optErr := errors.Join(errs...)
	return func(ctx context.Context, acc bd.Account) (Parts, error) {
		if optErr != nil {
			return Parts{}, fmt.Errorf("fleet: MG: %w", optErr)
		}
		var copts []mg.Option
		if o.rate != 0 || o.burst != 0 {
			r, b := o.rate, o.burst
			if r == 0 {
				r = mg.DefaultRate
			}
			if b == 0 {
				b = mg.DefaultBurst
			}
			copts = append(copts, mg.WithLimiter(rate.NewLimiter(r, b)))
		}
		if o.client != nil {
			copts = append(copts, o.client(acc)...)
		}
		c, err := mg.New(acc.MGEndpoint, acc.MGToken, copts...)
		if err != nil {
			return Parts{}, fmt.Errorf("MessageGateway client: %w", err)
		}
		replier, err := reply.NewTemplate(c)
		if err != nil {
			return Parts{}, err
		}
		p := Parts{
			Gateway: mgsource.Gateway{MG: c},
			Options: []distributor.Option{distributor.WithReplier(replier)},
		}
		if o.extra != nil {
			extra, closeExtra, err := o.extra(ctx, acc, c)
			if err != nil {
				return Parts{}, err
			}
			p.Options = append(p.Options, extra...)
			p.Close = closeExtra
		}
		p.Roster = func(ctx context.Context, t mgsource.Target) error {
			users, err := mg.Collect(c.AllUsers(ctx, mg.UsersFilter{}))
			if err != nil {
				return fmt.Errorf("MessageGateway users: %w", err)
			}
			if o.target != nil {
				t = o.target(acc, c, t)
			}
			return t.SetRoster(ctx, mgsource.NewTranslator(acc.ID, o.status).SetUsers(users))
		}
		p.Stream = func(t mgsource.Target) (Stream, error) {
			if o.target != nil {
				t = o.target(acc, c, t)
			}
			return mgsource.New(acc.ID, c, t, append([]mgsource.Option{mgsource.WithStatus(o.status)}, o.source...)...)
		}
		return p, nil
	}
}
