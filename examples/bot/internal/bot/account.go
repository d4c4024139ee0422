package bot

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding/retailcrm"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/mg"
)

// account is what the bot adds to the fleet's parts of one account: its
// clients and the roster joining MG with retailCRM. [Supervisor.build]
// keeps it as the account's Parts.Value.
type account struct {
	roster *roster
	cards  cards
	// Set by the build (fleet.WithExtra), before the fleet uses it.
	mg  *mg.Client
	crm *crm.Client
}

// build is the fleet's BuildFunc: fleet.MG's parts (MG client, replier,
// gateway, mgsource.Source) with the bot's own around them: the retailCRM
// client and binder, the roster between the Source and the distributor,
// and reads of retailCRM's managers for the roster. It does no I/O.
func (s *Supervisor) build(ctx context.Context, acc bd.Account) (fleet.Parts, error) {
	log := s.log.With(slog.String("account", string(acc.ID)))
	a := &account{roster: newRoster(acc.ID)}
	parts, err := fleet.MG(
		fleet.WithMGRate(float64(s.opts.MGRate), s.opts.MGBurst),
		fleet.WithMGClient(func(bd.Account) []mg.Option { return []mg.Option{mg.WithLogger(log)} }),
		fleet.WithStatus(a.roster.status),
		// The Source adds the account to its logger itself.
		fleet.WithSource(mgsource.WithStream(s.opts.Stream...), mgsource.WithLogger(s.log)),
		fleet.WithTarget(func(_ bd.Account, _ *mg.Client, t mgsource.Target) mgsource.Target { return a.roster.target(t) }),
		fleet.WithExtra(func(_ context.Context, acc bd.Account, c *mg.Client) ([]distributor.Option, func(), error) {
			return s.clients(a, acc, c, log)
		}),
	)(ctx, acc)
	if err != nil {
		return fleet.Parts{}, err
	}
	// The process running the account's stream polls retailCRM's managers
	// (fleet.WithPoll) and tells the distributor whose joined state changed.
	parts.Poll = func(ctx context.Context, t mgsource.Target) error {
		users, err := a.crm.Managers(ctx)
		if err != nil {
			return fmt.Errorf("retailCRM managers: %w", err)
		}
		if err := a.roster.setCRM(ctx, t, users); err != nil {
			return err
		}
		// Changed cards (personal manager, segments, tags) are read
		// again, for the settings that route by them.
		if acc, err := s.store.Account(ctx, acc.ID); err == nil && acc.Settings.UsesProfiles() {
			return a.cards.poll(ctx, a.crm, t, time.Now(), s.opts.CardPoll)
		}
		return nil
	}
	// Where another process runs the stream, nothing polls retailCRM here:
	// the roster this process's decisions use is read on demand,
	// retailCRM's managers (statuses) with MG's users, so that a manager
	// busy in retailCRM is busy here too.
	mgRoster := parts.Roster
	parts.Roster = func(ctx context.Context, t mgsource.Target) error {
		users, err := a.crm.Managers(ctx)
		if err != nil {
			return fmt.Errorf("retailCRM managers: %w", err)
		}
		a.roster.noteCRM(users)
		return mgRoster(ctx, t)
	}
	parts.Value = a
	return parts, nil
}

// clients builds the account's retailCRM client and binder once fleet.MG
// has its MG client. They hold no connection of their own to close (their
// idle HTTP connections are the transport's).
func (s *Supervisor) clients(a *account, acc bd.Account, c *mg.Client, log *slog.Logger) ([]distributor.Option, func(), error) {
	cc, err := crm.New(acc.Domain, acc.APIKey, append([]crm.Option{crm.WithLogger(log)}, s.opts.CRM...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("retailCRM client: %w", err)
	}
	binder, err := retailcrm.New(cc, s.store, retailcrm.WithRegion(s.opts.PhoneRegion), retailcrm.WithTimeout(10*time.Second), retailcrm.WithLogger(log))
	if err != nil {
		return nil, nil, fmt.Errorf("customer binding: %w", err)
	}
	profiler, err := retailcrm.NewProfiler(cc, retailcrm.WithRegion(s.opts.PhoneRegion), retailcrm.WithTimeout(10*time.Second), retailcrm.WithLogger(log))
	if err != nil {
		return nil, nil, fmt.Errorf("customer profiles: %w", err)
	}
	a.mg, a.crm = c, cc
	// A bind that fails is a job retried with backoff. Profiles (personal
	// manager, segments, tags) are read only for settings that use them.
	return []distributor.Option{distributor.WithBinder(binder), distributor.WithProfiler(profiler, 0, 0), distributor.WithLogger(log)}, nil, nil
}

// account returns what the build kept of the account; errors as
// fleet.Fleet.Value's (ErrUnknownAccount, or why it does not run).
func (s *Supervisor) account(id bd.AccountID) (*account, error) {
	v, err := s.fleet.Value(id)
	if err != nil {
		return nil, err
	}
	return v.(*account), nil
}
