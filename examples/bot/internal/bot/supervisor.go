package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/mg"
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
	// CRM tunes the retailCRM clients (rate limiters, retries); nil means
	// the defaults: 10 requests/s per key, shared in the process.
	CRM *crm.Options
	// MGRate and MGBurst limit each account's MessageGateway requests;
	// 0 means mg.DefaultRate and mg.DefaultBurst.
	MGRate  rate.Limit
	MGBurst int
	// RosterPoll is how often retailCRM's managers (statuses) are read,
	// by the process running the account's event stream; 0 means 10s.
	// Each read is one request per 100 managers.
	RosterPoll time.Duration
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
	Stream mg.StreamOptions
	// Started, when set, is called each time an account starts running,
	// e.g. to make its metrics visible at zero.
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

	done    chan struct{} // closed when Run returns
	started atomic.Bool

	mu       sync.Mutex
	accounts map[bd.AccountID]*account   // built and not yet dropped
	attempts map[bd.AccountID]bd.Account // the account of the last build begun
}

// ErrStopped is returned by Connect when the Supervisor is not running.
var ErrStopped = errors.New("bot: the supervisor is not running")

// ErrUnknownAccount is returned for an account that is not connected.
var ErrUnknownAccount = errors.New("bot: unknown account")

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
	if opts.MGRate < 0 || opts.MGBurst < 0 {
		return nil, fmt.Errorf("bot: MessageGateway rate %v and burst %d must not be negative", opts.MGRate, opts.MGBurst)
	}
	s := &Supervisor{
		opts:       opts,
		store:      opts.Store,
		strategies: opts.Strategies,
		log:        opts.Logger,
		done:       make(chan struct{}),
		accounts:   make(map[bd.AccountID]*account),
		attempts:   make(map[bd.AccountID]bd.Account),
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
		fleet.WithHooks(fleet.Hooks{Holding: s.holding, Failed: s.failed}),
		// A process that does not hold an account's stream reads its
		// roster (retailCRM's statuses included) as often as the holder
		// polls retailCRM.
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
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("bot: Supervisor.Run called twice")
	}
	defer close(s.done)
	s.log.Info("supervisor running", slog.String("member", s.fleet.Member()))
	return s.fleet.Run(ctx)
}

// Member returns the name this process holds accounts under among the
// processes sharing the store.
func (s *Supervisor) Member() string { return s.fleet.Member() }

// holding is the fleet's Holding hook.
func (s *Supervisor) holding(id bd.AccountID, holding bool) {
	if holding {
		s.log.Info("running the account's event stream", slog.String("account", string(id)))
	} else {
		s.log.Info("stopped the account's event stream", slog.String("account", string(id)))
	}
}

// failed is the fleet's Failed hook: a stream that stopped is shown on
// the account's page until it resyncs again.
func (s *Supervisor) failed(id bd.AccountID, op string, err error) {
	if a := s.account(id); a != nil && op == "stream" {
		a.note(problemStream, err)
	}
}

// attempted records the account a build begins with.
func (s *Supervisor) attempted(acc bd.Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[acc.ID] = acc
}

// put records an account built.
func (s *Supervisor) put(a *account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[a.acc.ID] = a
}

// drop forgets an account the fleet stopped, unless it was built again
// meanwhile.
func (s *Supervisor) drop(a *account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts[a.acc.ID] == a {
		delete(s.accounts, a.acc.ID)
	}
	if last, ok := s.attempts[a.acc.ID]; ok && sameCredentials(last, a.acc) {
		delete(s.attempts, a.acc.ID)
	}
}

// account returns the account built, or nil.
func (s *Supervisor) account(id bd.AccountID) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts[id]
}

// sameCredentials reports whether a and b reach retailCRM and MG alike:
// the fleet builds an account anew when they differ.
func sameCredentials(a, b bd.Account) bool {
	return a.Domain == b.Domain && a.MGEndpoint == b.MGEndpoint &&
		a.APIKey.Reveal() == b.APIKey.Reveal() && a.MGToken.Reveal() == b.MGToken.Reveal()
}

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
// Connect returns ErrStopped when Run is not running.
func (s *Supervisor) Connect(ctx context.Context, domain string, key bd.Secret) (bd.AccountID, error) {
	select {
	case <-s.done:
		return "", ErrStopped
	default:
	}
	conn, err := crm.Connect(ctx, domain, key, &crm.ConnectOptions{Module: s.opts.Module, Client: s.opts.CRM})
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
	s.fleet.Rescan()
	if err := s.awaitBuilt(ctx, acc); err != nil {
		return id, err
	}
	s.log.Info("account connected", slog.String("account", string(id)), slog.String("domain", conn.Domain))
	return id, nil
}

// pollEvery is how often Connect and Ready look at the fleet while they wait.
const pollEvery = 10 * time.Millisecond

// awaitBuilt waits until the fleet has built acc as saved (with its
// credentials), or failed to.
func (s *Supervisor) awaitBuilt(ctx context.Context, acc bd.Account) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		s.mu.Lock()
		last, begun := s.attempts[acc.ID]
		s.mu.Unlock()
		if begun && sameCredentials(last, acc) {
			_, err := s.fleet.Distributor(acc.ID)
			switch {
			case err == nil:
				return nil
			case !errors.Is(err, fleet.ErrUnknownAccount): // built and failed; not still building
				return fmt.Errorf("bot: account %s is connected but cannot start: %w", acc.ID, err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrStopped
		case <-t.C:
		}
	}
}

// distributor returns the account's distributor in this process.
func (s *Supervisor) distributor(id bd.AccountID) (*distributor.Distributor, error) {
	d, err := s.fleet.Distributor(id)
	if errors.Is(err, fleet.ErrUnknownAccount) {
		return nil, fmt.Errorf("%w %q", ErrUnknownAccount, id)
	}
	return d, err
}

// Ready waits until this process runs the account's event stream and has
// done a resync (roster and open dialogs) since it connected, as
// fleet.Accounts shows it, or ctx ends. With several processes, the
// account's stream may run in another one: then Ready waits until ctx
// ends or this process takes the account over.
func (s *Supervisor) Ready(ctx context.Context, id bd.AccountID) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		if _, err := s.distributor(id); err != nil && !errors.Is(err, ErrUnknownAccount) {
			return err
		}
		for _, st := range s.fleet.Accounts(ctx) {
			if st.ID == id && st.Holder && !st.LastResync.IsZero() {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// AccountInfo describes a connected account for display. It holds no secret.
type AccountInfo struct {
	ID         bd.AccountID
	Domain     string
	MGEndpoint string
	// Running is false when the account could not start; Problems says why.
	Running bool
	// Problems are the last errors of the account's parts, e.g. a failed
	// roster read; empty when all is well.
	Problems []string
	// Holder is true while this process runs the account's event stream
	// (another process of the deployment does otherwise); Connected while
	// that stream's websocket is up.
	Holder, Connected bool
	// LastEvent and LastResync are when this process last handed the
	// distributor an event and a resync; zero if never.
	LastEvent, LastResync time.Time
	// Stream counts what the MG event stream did in this process.
	Stream mgsource.Stats
	// Waiting is the number of dialogs in the queue and DeadLetters the
	// jobs given up (up to 1000); -1 when unknown.
	Waiting, DeadLetters int
}

// Accounts describes every connected account, ordered by id, as the
// fleet hosts them (fleet.Fleet.Accounts).
func (s *Supervisor) Accounts(ctx context.Context) []AccountInfo {
	states := s.fleet.Accounts(ctx)
	out := make([]AccountInfo, 0, len(states))
	for _, st := range states {
		info := AccountInfo{
			ID: st.ID, Running: st.Running, Holder: st.Holder, Connected: st.Connected,
			LastEvent: st.LastEvent, LastResync: st.LastResync, Waiting: st.Waiting, DeadLetters: st.Dead,
		}
		if a := s.account(st.ID); st.Running && a != nil {
			info.Domain, info.MGEndpoint = a.acc.Domain, a.endpoint
			info.Problems = a.problemList()
			info.Stream = a.stats()
		} else {
			s.mu.Lock()
			info.Domain = s.attempts[st.ID].Domain
			s.mu.Unlock()
			info.Problems = []string{"cannot start: " + st.Err}
		}
		out = append(out, info)
	}
	return out
}

// Account describes one connected account.
func (s *Supervisor) Account(ctx context.Context, id bd.AccountID) (AccountInfo, error) {
	for _, a := range s.Accounts(ctx) {
		if a.ID == id {
			return a, nil
		}
	}
	return AccountInfo{}, fmt.Errorf("%w %q", ErrUnknownAccount, id)
}

// Settings returns the account's settings in force.
func (s *Supervisor) Settings(ctx context.Context, id bd.AccountID) (bd.Settings, error) {
	d, err := s.distributor(id)
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

// ValidateSettings checks settings as a whole, as SaveSettings does
// (distributor.CheckSettings: every empty reply and every reply text that
// cannot render named, an unknown strategy). It returns a
// *bd.SettingsError naming every problem, or nil.
func (s *Supervisor) ValidateSettings(set bd.Settings) error {
	return distributor.CheckSettings(set, s.strategies)
}

// SaveSettings validates the settings as a whole (see ValidateSettings)
// and, only when they are valid, stores them and puts them in force here;
// the other processes sharing the store put them in force at their next
// rescan. On a *bd.SettingsError nothing changes.
func (s *Supervisor) SaveSettings(ctx context.Context, id bd.AccountID, set bd.Settings) error {
	if err := s.ValidateSettings(set); err != nil {
		return err
	}
	d, err := s.distributor(id)
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
	if _, err := s.distributor(id); err != nil {
		if errors.Is(err, ErrUnknownAccount) {
			return c, err
		}
		c.Problems = append(c.Problems, err.Error())
		return c, nil
	}
	rt := s.account(id)
	if rt == nil {
		c.Problems = append(c.Problems, "the account is being started again")
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
	d, err := s.distributor(id)
	if err != nil {
		return nil, err
	}
	return d.Recent(ctx)
}

// DeadLetters returns the account's jobs given up after their last retry,
// newest first.
func (s *Supervisor) DeadLetters(ctx context.Context, id bd.AccountID) ([]store.DeadJob, error) {
	d, err := s.distributor(id)
	if err != nil {
		return nil, err
	}
	return d.DeadLetters(ctx, 100)
}

// Decide returns what the account's distributor would do with a dialog now,
// without acting.
func (s *Supervisor) Decide(ctx context.Context, dialog bd.Dialog) (distributor.Trace, error) {
	d, err := s.distributor(dialog.Account)
	if err != nil {
		return distributor.Trace{}, err
	}
	return d.Decide(ctx, dialog)
}
