package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/strategy"
)

// Options configure a [Supervisor]. Store and Module.BaseURL are required;
// zero values of the others mean the defaults given.
type Options struct {
	// Store keeps the accounts, their settings and all distribution state.
	Store store.Store
	// Module is registered in each account on Connect (mgBot integration).
	Module crm.Module
	// Logger receives the bot's logs; nil discards them. Secrets never
	// reach it.
	Logger *slog.Logger
	// Hooks are called by every account's distributor (metrics, the demo).
	Hooks distributor.Hooks
	// Strategies are the strategies settings may name; nil means the
	// built-ins of strategy.NewRegistry.
	Strategies *strategy.Registry
	// CRM tunes the retailCRM clients (rate limiters, retries); none means
	// the defaults: 10 requests/s per key, shared in the process.
	CRM []crm.Option
	// MGRate and MGBurst limit each account's MessageGateway requests;
	// 0 means mg.DefaultRate and mg.DefaultBurst.
	MGRate  rate.Limit
	MGBurst int
	// RosterPoll is how often retailCRM's managers (statuses) are read,
	// by the process running the account's event stream (fleet.WithPoll)
	// and, with MG's users, by the others (fleet.WithRosterRefresh); 0
	// means 10s. Each read is one request per 100 managers.
	RosterPoll time.Duration
	// CardPoll is how often the process running an account's stream reads
	// retailCRM's customer history for changed cards (personal manager,
	// segments, tags), for accounts whose settings route by them, at
	// RosterPoll's pace at most often; 0 means 30s.
	CardPoll time.Duration
	// Sweep is how often each account held runs its safety-net sweep;
	// 0 means fleet.DefaultSweep (30s).
	Sweep time.Duration
	// Workers is how many jobs of all accounts the process runs at once;
	// zero means store.DefaultWorkers.
	Workers int
	// Fleet are more options of the fleet hosting the accounts, e.g.
	// fleet.WithMember, fleet.WithLeaseTTL or fleet.WithRescan.
	Fleet []fleet.Option
	// Stream tunes the MG websocket (backoff, pings).
	Stream []mg.StreamOption
	// Started, when set, is called each time an account starts running
	// (fleet.Hooks.Built), e.g. to make its metrics visible at zero.
	Started func(bd.AccountID)
	// Activity, when set, is read by Dashboard for the last hour's counts;
	// feed it by including its Hooks in Hooks.
	Activity *Activity
	// Now is the clock of the dashboard; nil means time.Now.
	Now func() time.Time
	// PhoneRegion is the region of phone numbers without "+" when binding
	// customers; "" means "RU".
	PhoneRegion string
}

// Supervisor runs every connected account through a [fleet.Fleet] over
// the store: one distributor per account, one worker set for the jobs of
// all of them, and the event streams (MG websocket and retailCRM roster
// poller) of the accounts whose lease this process holds. What it adds to
// the fleet is the bot's own: connecting an account to retailCRM, the
// roster joining MG users with retailCRM users, customer binding, and
// what the settings page reads and changes (see the package
// documentation). Several processes over one PostgreSQL database share
// the accounts: each account's stream runs in one of them, its jobs in
// all.
//
// All methods are safe for concurrent use. Every goroutine the Supervisor
// starts belongs to Run (the fleet's) and has exited when Run returns.
type Supervisor struct {
	opts       Options
	store      store.Store
	strategies *strategy.Registry
	log        *slog.Logger
	fleet      *fleet.Fleet
	// check are the options of every account's distributor that settings
	// are checked with (distributor.CheckSettings): its strategies and
	// its replier, a reply.Template as fleet.MG gives it, whose
	// reply.TextChecker judges the reply texts.
	check []distributor.Option
}

// checkOnly is the Sender of the Supervisor's reply.Template for checking
// settings: texts are checked without an account's MG client, and nothing
// is ever sent through it.
type checkOnly struct{}

func (checkOnly) Send(context.Context, bd.AccountID, bd.ChatID, string) error {
	return errors.New("bot: the settings check sends no reply")
}

// ErrStopped is returned by Connect once Run has returned.
var ErrStopped = fleet.ErrStopped

// ErrUnknownAccount is returned for an account that is not connected.
var ErrUnknownAccount = fleet.ErrUnknownAccount

// New checks the options and returns a Supervisor; it starts nothing.
func New(opts Options) (*Supervisor, error) {
	if opts.Store == nil {
		return nil, errors.New("bot: no store")
	}
	if opts.Module.BaseURL == "" {
		return nil, errors.New("bot: no module base URL (the bot's public address registered in retailCRM)")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Strategies == nil {
		opts.Strategies = strategy.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RosterPoll <= 0 {
		opts.RosterPoll = 10 * time.Second
	}
	if opts.CardPoll <= 0 {
		opts.CardPoll = 30 * time.Second
	}
	if opts.MGRate < 0 || opts.MGBurst < 0 {
		return nil, fmt.Errorf("bot: MessageGateway rate %v and burst %d must not be negative", opts.MGRate, opts.MGBurst)
	}
	texts, err := reply.NewTemplate(checkOnly{})
	if err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	s := &Supervisor{
		opts:       opts,
		store:      opts.Store,
		strategies: opts.Strategies,
		log:        opts.Logger,
		check:      []distributor.Option{distributor.WithStrategies(opts.Strategies), distributor.WithReplier(texts)},
	}
	fopts := []fleet.Option{
		fleet.WithBuild(s.build),
		fleet.WithDistributor(
			distributor.WithStrategies(opts.Strategies),
			distributor.WithHooks(opts.Hooks),
			distributor.WithLogger(opts.Logger),
		),
		fleet.WithWork(store.WorkOptions{Workers: opts.Workers}),
		fleet.WithLogger(opts.Logger),
		fleet.WithHooks(fleet.Hooks{Built: opts.Started}),
		// The holder of an account's stream polls retailCRM's managers; a
		// process that does not hold it reads its roster (retailCRM's
		// statuses included) as often.
		fleet.WithPoll(opts.RosterPoll),
		fleet.WithRosterRefresh(opts.RosterPoll),
	}
	if opts.Sweep > 0 {
		fopts = append(fopts, fleet.WithSweep(opts.Sweep))
	}
	f, err := fleet.New(opts.Store, append(fopts, opts.Fleet...)...)
	if err != nil {
		return nil, fmt.Errorf("bot: %w", err)
	}
	s.fleet = f
	return s, nil
}

func (s *Supervisor) now() time.Time { return s.opts.Now() }

// Run hosts every stored account until ctx ends (fleet.Fleet.Run): it
// builds each, runs the event streams of those this process holds, does
// the jobs of all of them, and picks up accounts connected, changed or
// removed (by this process or another) at every rescan. When ctx ends it
// stops every stream (closing the websockets), gives its leases up,
// waits for the work in flight, closes the distributors and returns
// ctx.Err(). Run may be called once.
func (s *Supervisor) Run(ctx context.Context) error {
	s.log.Info("supervisor running", slog.String("member", s.fleet.Member()))
	return s.fleet.Run(ctx)
}

// Member returns the name this process holds accounts under among the
// processes sharing the store.
func (s *Supervisor) Member() string { return s.fleet.Member() }

// AccountIDFor returns the account id the bot gives an account at domain
// (a canonical address as crm.ParseDomain returns it): its host, with the
// port when there is one.
func AccountIDFor(domain string) bd.AccountID {
	if u, err := url.Parse(domain); err == nil && u.Host != "" {
		return bd.AccountID(strings.ToLower(u.Host))
	}
	return bd.AccountID(domain)
}

// Connect checks the account's address and API key, registers the module
// in it (crm.Connect), stores the account with the MessageGateway endpoint
// and bot token retailCRM returned, and (re)starts it. An account connected
// before keeps its settings; a new one gets [DefaultSettings].
//
// Errors from retailCRM are crm errors (test them with errors.Is against
// crm.ErrInvalidKey, crm.ErrMissingScopes, ...); none contains the key.
// Connect returns ErrStopped once Run has returned.
func (s *Supervisor) Connect(ctx context.Context, domain string, key bd.Secret) (bd.AccountID, error) {
	select {
	case <-s.fleet.Done():
		return "", ErrStopped
	default:
	}
	copts := make([]crm.ConnectOption, len(s.opts.CRM))
	for i, o := range s.opts.CRM {
		copts[i] = o
	}
	conn, err := crm.Connect(ctx, domain, key, s.opts.Module, copts...)
	if err != nil {
		return "", err
	}
	id := AccountIDFor(conn.Domain)
	acc := conn.Account(id)
	prev, err := s.store.Account(ctx, id)
	switch {
	case err == nil:
		acc.Settings = prev.Settings
	case errors.Is(err, store.ErrNotFound):
		acc.Settings = DefaultSettings(LangEnglish) // the page shows them in its own language until saved
	default:
		return "", fmt.Errorf("bot: reading account %s: %w", id, err)
	}
	if err := s.store.SaveAccount(ctx, acc); err != nil {
		return "", fmt.Errorf("bot: saving account %s: %w", id, err)
	}
	if err := s.fleet.Await(ctx, acc); err != nil {
		return id, err
	}
	s.log.Info("account connected", slog.String("account", string(id)), slog.String("domain", conn.Domain))
	return id, nil
}

// Ready waits until this process runs the account's event stream and it
// has resynced (roster and open dialogs) since it connected, or ctx ends
// (fleet.Fleet.Ready). With several processes, the account's stream may
// run in another one: then Ready waits until ctx ends or this process
// takes the account over.
func (s *Supervisor) Ready(ctx context.Context, id bd.AccountID) error {
	return s.fleet.Ready(ctx, id)
}

// AccountInfo describes a connected account for display: how it fares in
// this process (running, problems, stream, queue). It holds no secret.
type AccountInfo = fleet.AccountState

// Accounts describes every connected account, ordered by id.
func (s *Supervisor) Accounts(ctx context.Context) []AccountInfo {
	return s.fleet.Accounts(ctx)
}

// Account describes one connected account.
func (s *Supervisor) Account(ctx context.Context, id bd.AccountID) (AccountInfo, error) {
	return s.fleet.Account(ctx, id)
}

// Settings returns the account's settings in force.
func (s *Supervisor) Settings(ctx context.Context, id bd.AccountID) (bd.Settings, error) {
	d, err := s.fleet.Distributor(id)
	switch {
	case err == nil:
		return d.Settings(ctx)
	case errors.Is(err, ErrUnknownAccount):
		return bd.Settings{}, err
	}
	acc, err := s.store.Account(ctx, id)
	if err != nil {
		return bd.Settings{}, err
	}
	return acc.Settings, nil
}

// ValidateSettings checks settings as a whole, as SaveSettings and every
// account's distributor do: distributor.CheckSettings with the
// distributors' strategies and replier (a reply.Template, whose
// reply.TextChecker names every reply text that cannot render), so
// every empty reply, every text the replier refuses and an unknown
// strategy are named. It returns a *bd.SettingsError naming every
// problem, each by its field with a message to show beside it, or nil.
func (s *Supervisor) ValidateSettings(set bd.Settings) error {
	return distributor.CheckSettings(set, s.check...)
}

// SaveSettings validates the settings as a whole (see ValidateSettings)
// and, only when they are valid, stores them and puts them in force here;
// the other processes sharing the store put them in force at their next
// rescan. On a *bd.SettingsError nothing changes.
func (s *Supervisor) SaveSettings(ctx context.Context, id bd.AccountID, set bd.Settings) error {
	if err := s.ValidateSettings(set); err != nil {
		return err
	}
	d, err := s.fleet.Distributor(id)
	switch {
	case err == nil:
		return d.SaveSettings(ctx, set)
	case errors.Is(err, ErrUnknownAccount):
		return err
	}
	return s.store.SaveSettings(ctx, id, set)
}

// Choices is what the settings of an account choose from.
type Choices struct {
	// Managers is the roster: MG users joined with retailCRM users.
	Managers []bd.Manager
	// Channels are the account's active MG channels.
	Channels []mg.Channel
	// Bots are the MG bots with the "responsible" role, which a channel's
	// bot rule may name.
	Bots []mg.Bot
	// Strategies are the strategy names settings may use.
	Strategies []string
	// Problems say what could not be read (MG unreachable, ...).
	Problems []string
}

// Choices reads what the account's settings choose from. What cannot be
// read is left empty and explained in Problems.
func (s *Supervisor) Choices(ctx context.Context, id bd.AccountID) (Choices, error) {
	c := Choices{Strategies: s.strategies.Names()}
	rt, err := s.account(id)
	if err != nil {
		if errors.Is(err, ErrUnknownAccount) {
			return c, err
		}
		c.Problems = append(c.Problems, err.Error())
		return c, nil
	}
	c.Managers = rt.roster.managers()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	chans, err := rt.mg.Channels(ctx, mg.ChannelsFilter{Active: mg.Yes, Page: mg.Page{Limit: mg.MaxLimit}})
	if err != nil {
		c.Problems = append(c.Problems, "MessageGateway channels: "+err.Error())
	}
	for _, ch := range chans {
		if ch.IsActive {
			c.Channels = append(c.Channels, ch)
		}
	}
	bots, err := rt.mg.Bots(ctx, mg.BotsFilter{Active: mg.Yes, Roles: []string{mg.RoleResponsible}, Page: mg.Page{Limit: mg.MaxLimit}})
	if err != nil {
		c.Problems = append(c.Problems, "MessageGateway bots: "+err.Error())
	}
	for _, b := range bots {
		if b.HasRole(mg.RoleResponsible) {
			c.Bots = append(c.Bots, b)
		}
	}
	return c, nil
}

// Recent returns the account's recent decisions, newest first.
func (s *Supervisor) Recent(ctx context.Context, id bd.AccountID) ([]distributor.Trace, error) {
	d, err := s.fleet.Distributor(id)
	if err != nil {
		return nil, err
	}
	return d.Recent(ctx)
}

// DeadLetters returns the account's jobs given up after their last retry,
// newest first.
func (s *Supervisor) DeadLetters(ctx context.Context, id bd.AccountID) ([]store.DeadJob, error) {
	d, err := s.fleet.Distributor(id)
	if err != nil {
		return nil, err
	}
	return d.DeadLetters(ctx, 100)
}

// Decide returns what the account's distributor would do with a dialog now,
// without acting.
func (s *Supervisor) Decide(ctx context.Context, dialog bd.Dialog) (distributor.Trace, error) {
	d, err := s.fleet.Distributor(dialog.Account)
	if err != nil {
		return distributor.Trace{}, err
	}
	return d.Decide(ctx, dialog)
}
