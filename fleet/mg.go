package fleet

import (
	"context"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/reply"
)

// MGOptions tune the parts [MG] builds. The zero value is usable.
type MGOptions struct {
	// Client returns the options of the account's MG client, e.g. a rate
	// limiter of its own and a logger; nil means none.
	Client func(acc bd.Account) []mg.Option
	// Source is the template of every account's mgsource.Options (Stream,
	// Logger, ResyncEvery, DeliverFor, Status); Account, Client and Target
	// are set per account.
	Source mgsource.Options
	// Target, when set, wraps the distributor the stream feeds, e.g. to
	// join retailCRM statuses to MG's roster.
	Target func(acc bd.Account, c *mg.Client, t mgsource.Target) mgsource.Target
	// Extra returns more options for the account's distributor, e.g. a
	// binder over its retailCRM client, and what to close when the account
	// stops (may be nil); nil means none.
	Extra func(ctx context.Context, acc bd.Account, c *mg.Client) ([]distributor.Option, func(), error)
}

// MG returns a [BuildFunc] for accounts served over MessageGateway: per
// account an mg.Client on the account's endpoint and bot token, a
// reply.Template sending through it, an mgsource.Gateway assigning
// through it, an mgsource.Source as its stream (which re-reads the roster
// and the open dialogs after every connect), and as its Roster the MG
// users (every page), translated as the Source does and passed through
// MGOptions.Target when set.
func MG(o MGOptions) BuildFunc {
	return func(ctx context.Context, acc bd.Account) (Parts, error) {
		var copts []mg.Option
		if o.Client != nil {
			copts = o.Client(acc)
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
		if o.Extra != nil {
			extra, closeExtra, err := o.Extra(ctx, acc, c)
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
			if o.Target != nil {
				t = o.Target(acc, c, t)
			}
			return t.SetRoster(ctx, mgsource.NewTranslator(acc.ID, o.Source.Status).SetUsers(users))
		}
		p.Stream = func(t mgsource.Target) (Stream, error) {
			so := o.Source
			so.Account, so.Client, so.Target = acc.ID, c, t
			if o.Target != nil {
				so.Target = o.Target(acc, c, t)
			}
			return mgsource.New(so)
		}
		return p, nil
	}
}
