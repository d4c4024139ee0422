package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
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
	// RosterPoll is how often retailCRM's managers (statuses) are read;
	// 0 means 10s. Each read is one request per 100 managers.
	RosterPoll time.Duration
	// Sweep is how often each distributor runs its safety-net sweep;
	// 0 means the distributor's default (30s).
	Sweep time.Duration
	// Workers is how many jobs each account's distributor runs at once;
	// zero means store.DefaultWorkers.
	Workers int
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

// Supervisor runs every connected account: one distributor, MG client,
// event stream, roster poller and binder each (see the package
// documentation). Accounts live in the store; [Supervisor.Run] restores
// them and runs until its context ends, and [Supervisor.Connect] adds or
// reconnects one while it runs.
//
// All methods are safe for concurrent use. Every goroutine the Supervisor
// starts belongs to Run and has exited when Run returns.
type Supervisor struct {
	opts       Options
	store      store.Store
	strategies *strategy.Registry
	log        *slog.Logger
	validator  *distributor.Distributor // validates settings of accounts that do not run

	cmds    chan command
	done    chan struct{} // closed when Run returns
	started atomic.Bool

	mu       sync.Mutex
	runtimes map[bd.AccountID]*entry
}

// entry is an account as the Supervisor knows it: running, or failed to start.
type entry struct {
	account bd.AccountID
	domain  string
	rt      *runtime // nil when it could not start
	err     error    // why it could not start
}

// command asks the Run goroutine to (re)start an account.
type command struct {
	account bd.Account
	reply   chan error
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
	validator, err := distributor.New("settings validator", opts.Store, refuseGateway{}, distributor.WithStrategies(opts.Strategies))
	if err != nil {
		return nil, err
	}
	// The validator only validates: its workers are stopped at once, so it
	// never takes an account's jobs.
	if err := validator.Close(); err != nil {
		return nil, err
	}
	return &Supervisor{
		opts:       opts,
		store:      opts.Store,
		strategies: opts.Strategies,
		log:        opts.Logger,
		validator:  validator,
		cmds:       make(chan command),
		done:       make(chan struct{}),
		runtimes:   make(map[bd.AccountID]*entry),
	}, nil
}

func (s *Supervisor) now() time.Time { return s.opts.Now() }

// refuseGateway is the validator's gateway; the validator never assigns.
type refuseGateway struct{}

func (refuseGateway) Assign(context.Context, bd.AccountID, bd.DialogID, bd.Responsible) error {
	return errors.New("bot: the settings validator does not assign")
}

// Run restores every stored account, runs them, and serves Connect until
// ctx ends; then it stops every account (closing websockets, waiting for
// work in flight, closing the distributors) and returns ctx.Err(). It
// returns early only when the accounts cannot be read from the store. Run
// may be called once.
func (s *Supervisor) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("bot: Supervisor.Run called twice")
	}
	defer close(s.done)
	defer s.stopAll()
	accounts, err := s.store.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("bot: reading the connected accounts: %w", err)
	}
	for _, a := range accounts {
		if err := s.start(ctx, a); err != nil {
			s.log.Error("account cannot start", slog.String("account", string(a.ID)), slog.Any("error", err))
		}
	}
	s.log.Info("supervisor running", slog.Int("accounts", len(accounts)))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-s.cmds:
			c.reply <- s.start(ctx, c.account)
		}
	}
}

// start (re)starts an account; called from Run only.
func (s *Supervisor) start(ctx context.Context, a bd.Account) error {
	s.mu.Lock()
	old := s.runtimes[a.ID]
	s.mu.Unlock()
	if old != nil && old.rt != nil {
		old.rt.stop()
	}
	e := &entry{account: a.ID, domain: a.Domain}
	rt, err := newRuntime(s, a)
	if err != nil {
		e.err = err
	} else {
		e.rt = rt
		rctx, cancel := context.WithCancel(ctx)
		rt.cancel = cancel
		go rt.run(rctx, s.opts.RosterPoll)
	}
	s.mu.Lock()
	s.runtimes[a.ID] = e
	s.mu.Unlock()
	if err == nil && s.opts.Started != nil {
		s.opts.Started(a.ID)
	}
	if err == nil {
		s.log.Info("account running", slog.String("account", string(a.ID)), slog.String("mg", rt.endpoint))
	}
	return err
}

func (s *Supervisor) stopAll() {
	s.mu.Lock()
	var rts []*runtime
	for _, e := range s.runtimes {
		if e.rt != nil {
			rts = append(rts, e.rt)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, rt := range rts {
		wg.Go(rt.stop)
	}
	wg.Wait()
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
	c := command{account: acc, reply: make(chan error, 1)}
	select {
	case s.cmds <- c:
	case <-s.done:
		return "", ErrStopped
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case err := <-c.reply:
		if err != nil {
			return id, fmt.Errorf("bot: account %s is connected but cannot start: %w", id, err)
		}
		s.log.Info("account connected", slog.String("account", string(id)), slog.String("domain", conn.Domain))
		return id, nil
	case <-ctx.Done():
		return id, ctx.Err()
	}
}

func (s *Supervisor) entry(id bd.AccountID) (*entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.runtimes[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownAccount, id)
	}
	return e, nil
}

func (s *Supervisor) running(id bd.AccountID) (*runtime, error) {
	e, err := s.entry(id)
	if err != nil {
		return nil, err
	}
	if e.rt == nil {
		return nil, fmt.Errorf("%w: %v", errNotRunning, e.err)
	}
	return e.rt, nil
}

// Ready waits until the account's event stream is connected and its first
// resync (roster and open dialogs) is done, or ctx ends.
func (s *Supervisor) Ready(ctx context.Context, id bd.AccountID) error {
	rt, err := s.running(id)
	if err != nil {
		return err
	}
	select {
	case <-rt.roster.resynced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
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
	// Stream counts what the MG event stream did.
	Stream mgsource.Stats
	// Waiting is the number of dialogs in the queue; -1 when unknown.
	Waiting int
}

// Accounts describes every connected account, ordered by id.
func (s *Supervisor) Accounts(ctx context.Context) []AccountInfo {
	s.mu.Lock()
	entries := make([]*entry, 0, len(s.runtimes))
	for _, e := range s.runtimes {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	slices.SortFunc(entries, func(a, b *entry) int { return strings.Compare(string(a.account), string(b.account)) })
	out := make([]AccountInfo, 0, len(entries))
	for _, e := range entries {
		info := AccountInfo{ID: e.account, Domain: e.domain, Waiting: -1}
		if e.rt == nil {
			info.Problems = []string{"cannot start: " + e.err.Error()}
		} else {
			info.Running = true
			info.MGEndpoint = e.rt.endpoint
			info.Problems = e.rt.problemList()
			info.Stream = e.rt.src.Stats()
		}
		if n, err := s.store.QueueLen(ctx, e.account); err == nil {
			info.Waiting = n
		}
		out = append(out, info)
	}
	return out
}

// Account describes one connected account.
func (s *Supervisor) Account(ctx context.Context, id bd.AccountID) (AccountInfo, error) {
	if _, err := s.entry(id); err != nil {
		return AccountInfo{}, err
	}
	for _, a := range s.Accounts(ctx) {
		if a.ID == id {
			return a, nil
		}
	}
	return AccountInfo{}, fmt.Errorf("%w %q", ErrUnknownAccount, id)
}

// Settings returns the account's settings in force.
func (s *Supervisor) Settings(ctx context.Context, id bd.AccountID) (bd.Settings, error) {
	if rt, err := s.running(id); err == nil {
		return rt.dist.Settings(ctx)
	}
	if _, err := s.entry(id); err != nil {
		return bd.Settings{}, err
	}
	acc, err := s.store.Account(ctx, id)
	if err != nil {
		return bd.Settings{}, err
	}
	return acc.Settings, nil
}

// ValidateSettings checks settings as a whole, as SaveSettings does: the
// distributor's validation (every empty reply and every reply text that
// cannot render named, an unknown strategy). It returns a
// *bd.SettingsError naming every problem, or nil.
func (s *Supervisor) ValidateSettings(set bd.Settings) error {
	return s.validator.ValidateSettings(set)
}

// SaveSettings validates the settings as a whole (see ValidateSettings)
// and, only when they are valid, stores them and puts them in force. On a
// *bd.SettingsError nothing changes.
func (s *Supervisor) SaveSettings(ctx context.Context, id bd.AccountID, set bd.Settings) error {
	if err := s.ValidateSettings(set); err != nil {
		return err
	}
	rt, err := s.running(id)
	if err == nil {
		return rt.dist.SaveSettings(ctx, set)
	}
	if _, err := s.entry(id); err != nil {
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
	rt, err := s.running(id)
	if err != nil {
		if _, uerr := s.entry(id); uerr != nil {
			return c, uerr
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
	rt, err := s.running(id)
	if err != nil {
		return nil, err
	}
	return rt.dist.Recent(ctx)
}

// DeadLetters returns the account's jobs given up after their last retry,
// newest first.
func (s *Supervisor) DeadLetters(ctx context.Context, id bd.AccountID) ([]store.DeadJob, error) {
	rt, err := s.running(id)
	if err != nil {
		return nil, err
	}
	return rt.dist.DeadLetters(ctx, 100)
}

// Decide returns what the account's distributor would do with a dialog now,
// without acting.
func (s *Supervisor) Decide(ctx context.Context, dialog bd.Dialog) (distributor.Trace, error) {
	rt, err := s.running(dialog.Account)
	if err != nil {
		return distributor.Trace{}, err
	}
	return rt.dist.Decide(ctx, dialog)
}
