// Package demo runs the reference bot against the sandbox: a fake
// retailCRM account and a fake MessageGateway on 127.0.0.1, connected
// through the bot's real connect path, with simulated managers going
// offline and online, customers writing on several channels (one of them
// handed to a bot), and dialogs closing over time. It prints a progress
// line every second and a summary at the end, checked against the
// sandbox's own state.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/strategy"
)

// Options configure [Run]. Zero values mean the defaults given.
type Options struct {
	// Duration is how long customers keep writing; 0 means 10s. Settling
	// and the summary take a moment more.
	Duration time.Duration
	// DSN names the store as bot.OpenStorage reads it; "" means a SQLite
	// file in a fresh temporary directory, removed at the end.
	DSN string
	// Rate is how many customers write per second; 0 means 5.
	Rate float64
	// Seed makes the simulation's choices repeatable (timing still varies).
	Seed uint64
	// Out receives the progress lines and the summary; nil discards them.
	Out io.Writer
	// Logger receives the bot's logs; nil discards them.
	Logger *slog.Logger
	// Hooks are called beside the demo's own, e.g. metrics for Serve.
	Hooks distributor.Hooks
	// Activity, when set, is given to the supervisor for its dashboard
	// (include its Hooks in Hooks).
	Activity *bot.Activity
	// Serve, when set, is called after the summary while the sandbox and
	// the bot still run; they stop when it returns. The reference bot uses
	// it to keep the settings page up for a newcomer to look around.
	Serve func(ctx context.Context, sup *bot.Supervisor, storage *bot.Storage) error
}

// Summary is what a demo run did.
type Summary struct {
	Duration time.Duration
	Store    string
	Account  bd.AccountID
	// Opened counts the dialogs customers opened.
	Opened int
	// Assigned counts assignments (to managers and the bot); FromQueue
	// those taken from the waiting queue.
	Assigned, FromQueue int
	// PerResponsible lists each manager and bot with their assignments.
	PerResponsible []Responsible
	// Queued counts dialogs that had to wait; Waiting those still waiting
	// at the end.
	Queued, Waiting int
	Reassigned      int
	Replies         int
	Closed          int
	Errors          int
	ErrorOps        map[string]int
	// CapacityViolations counts the times the sandbox MG showed a manager
	// responsible for more open dialogs than their capacity, over Checks
	// checks (one after every change of MG's state). It must be 0.
	CapacityViolations int
	Checks             int
	// Unaccounted counts open dialogs at the end that had no responsible in
	// MG and were not waiting in the queue. It must be 0.
	Unaccounted int
	// Mismatches counts open dialogs whose responsible in the store
	// differs from MG's at the end.
	Mismatches int
	// WaitP50 and WaitP99 are quantiles of the time from a dialog's opening
	// to its assignment, as the distributor reports it (Hooks.Assigned): the
	// time of the decision, so 0 for a dialog assigned as it opened and the
	// time waited in the queue otherwise.
	WaitP50, WaitP99 time.Duration
	// SeenP50 and SeenP99 are quantiles of the time from a dialog's opening
	// to the sandbox MG showing its first responsible, measured end to end
	// (websocket, store, MG's REST API).
	SeenP50, SeenP99 time.Duration
}

// Responsible is one manager's or bot's share of the assignments.
type Responsible struct {
	Name string
	Who  bd.Responsible
	// Assigned counts the dialogs given to them, reassignments not included.
	Assigned int
	// Peak is the most open dialogs MG showed them holding; Capacity their
	// capacity (0 for a bot).
	Peak, Capacity int
}

// OK reports whether the run kept the invariants: no capacity violation and
// every open dialog assigned or waiting.
func (s Summary) OK() bool {
	return s.CapacityViolations == 0 && s.Unaccounted == 0 && s.Mismatches == 0
}

// person is a simulated manager.
type person struct {
	first, last string
	status      string
	online      bool
	capacity    int // 0: the default capacity
	id          bd.ManagerID
	crmID       int
}

func (p *person) name() string { return p.first + " " + p.last }

// world is the sandbox and what lives in it.
type world struct {
	mg       *sandbox.MG
	crm      *sandbox.CRM
	people   []*person
	channels []channel
	bot      bd.BotID
}

type channel struct {
	id     bd.ChannelID
	name   string
	weight int
}

const defaultCapacity = 3

// Run runs the demo until opts.Duration has passed (or ctx ends), then
// waits for the distribution to settle, prints the summary and returns it.
// An error means the demo could not run; a run that breaks an invariant
// returns its Summary with OK() false and an error saying so.
func Run(ctx context.Context, opts Options) (Summary, error) {
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Second
	}
	if opts.Rate <= 0 {
		opts.Rate = 5
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed))

	w, err := newWorld(ctx, opts.Seed)
	if err != nil {
		return Summary{}, err
	}
	defer w.mg.Close()
	defer w.crm.Close()

	dsn := opts.DSN
	if dsn == "" {
		dir, err := os.MkdirTemp("", "botdistributor-demo-")
		if err != nil {
			return Summary{}, err
		}
		defer os.RemoveAll(dir)
		dsn = filepath.Join(dir, "demo.db")
	}
	storage, err := bot.OpenStorage(ctx, dsn)
	if err != nil {
		return Summary{}, err
	}
	defer storage.Close()

	st := newStats()
	sup, err := bot.New(bot.Options{
		Store:    storage.Store,
		Module:   crm.Module{BaseURL: "http://127.0.0.1:8080"},
		Logger:   opts.Logger,
		Hooks:    bot.CombineHooks(st.hooks(), opts.Hooks),
		Activity: opts.Activity,
		// The sandbox has no rate limit in the demo; the clients' limits
		// are raised to match, so binding keeps pace with the customers.
		CRM:        []crm.Option{crm.WithLimiters(crm.NewLimiters(1000, 100))},
		MGRate:     1000,
		MGBurst:    200,
		RosterPoll: 300 * time.Millisecond,
		Sweep:      200 * time.Millisecond,
		Stream:     []mg.StreamOption{mg.WithBackoff(mg.Backoff{Initial: 50 * time.Millisecond, Max: time.Second})},
	})
	if err != nil {
		return Summary{}, err
	}
	runCtx, stopBot := context.WithCancel(context.WithoutCancel(ctx))
	botDone := make(chan error, 1)
	go func() { botDone <- sup.Run(runCtx) }()
	defer func() {
		stopBot()
		<-botDone
	}()

	// The real connect path: credentials check and module registration
	// against the sandbox retailCRM, which hands out the sandbox MG.
	account, err := sup.Connect(ctx, w.crm.URL(), sandbox.CRMDefaultKey)
	if err != nil {
		return Summary{}, fmt.Errorf("demo: connect: %w", err)
	}
	settings, capacity := w.settings()
	if err := sup.SaveSettings(ctx, account, settings); err != nil {
		return Summary{}, fmt.Errorf("demo: settings: %w", err)
	}
	readyCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = sup.Ready(readyCtx, account)
	cancel()
	if err != nil {
		return Summary{}, fmt.Errorf("demo: the MessageGateway stream did not come up: %w", err)
	}
	fmt.Fprintf(opts.Out, "demo: account %s connected (store %s); %d managers, %d channels (%s goes to a bot); customers write for %s\n",
		account, storage.Kind, len(w.people), len(w.channels), w.channels[len(w.channels)-1].name, opts.Duration)

	mon := newMonitor(w.mg, capacity)
	monCtx, stopMon := context.WithCancel(context.WithoutCancel(ctx))
	monDone := make(chan struct{})
	go func() { defer close(monDone); mon.run(monCtx) }()
	defer func() { stopMon(); <-monDone }()

	start := time.Now()
	drive, stopDrive := context.WithTimeout(ctx, opts.Duration)
	defer stopDrive()
	var wg sync.WaitGroup
	var outMu sync.Mutex // the drivers print from their goroutines
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(opts.Out, "[%5.1fs] "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
	}
	customerSeed, lifecycleSeed := rng.Uint64(), rng.Uint64()
	wg.Go(func() { w.customers(drive, customerSeed, opts.Rate, st, say) })
	wg.Go(func() { w.lifecycle(drive, lifecycleSeed, st) })
	wg.Go(func() { w.script(drive, opts.Duration, say) })
	wg.Go(func() { progress(drive, storage, account, st, say) })
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Summary{}, err
	}

	// Settle: every open dialog assigned in MG or waiting in the queue.
	settleCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	unaccounted, mismatches := settle(settleCtx, w, storage, account)
	cancel()
	stopMon()
	<-monDone

	snap := st.snapshot()
	checks, violations, peak := mon.result()
	seen50, seen99 := mon.toResponsible()
	waiting, err := storage.Store.QueueLen(ctx, account)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{
		Duration: opts.Duration, Store: storage.Kind, Account: account,
		Opened: snap.opened, Assigned: snap.assigned, FromQueue: snap.fromQueue,
		Queued: snap.queued, Waiting: waiting, Reassigned: snap.reassigned,
		Replies: snap.replies, Closed: snap.closed, Errors: snap.errors, ErrorOps: snap.errorOps,
		CapacityViolations: violations, Checks: checks,
		Unaccounted: unaccounted, Mismatches: mismatches,
		WaitP50: snap.p50, WaitP99: snap.p99, SeenP50: seen50, SeenP99: seen99,
	}
	for _, p := range w.people {
		sum.PerResponsible = append(sum.PerResponsible, Responsible{
			Name: p.name(), Who: bd.ManagerOf(p.id), Assigned: snap.perResponsible[bd.ManagerOf(p.id)],
			Peak: peak[p.id], Capacity: capacity[p.id],
		})
	}
	sum.PerResponsible = append(sum.PerResponsible, Responsible{
		Name: "FAQ bot", Who: bd.BotOf(w.bot), Assigned: snap.perResponsible[bd.BotOf(w.bot)],
	})
	sum.Print(opts.Out)
	if opts.Serve != nil {
		if err := opts.Serve(ctx, sup, storage); err != nil {
			return sum, err
		}
	}
	if !sum.OK() {
		return sum, errors.New("demo: an invariant was broken (see the summary)")
	}
	return sum, nil
}

// newWorld starts the sandbox MG and retailCRM and fills them: six
// managers (one busy in retailCRM, one offline at first), three channels,
// a bot with the responsible role, and a few known customers, two of them
// with a personal manager, a segment and tags.
func newWorld(ctx context.Context, seed uint64) (*world, error) {
	m, err := sandbox.NewMG(sandbox.WithSeed(seed), sandbox.WithBotName("Bot Distributor"))
	if err != nil {
		return nil, err
	}
	c, err := sandbox.NewCRM(sandbox.WithMGBot(m.URL(), m.BotToken().Reveal()), sandbox.WithRateLimit(-1), sandbox.WithSeed(seed))
	if err != nil {
		m.Close()
		return nil, err
	}
	w := &world{mg: m, crm: c, people: []*person{
		{first: "Anna", last: "Smirnova", status: "free", online: true, capacity: 5},
		{first: "Boris", last: "Ivanov", status: "free", online: true},
		{first: "Vera", last: "Petrova", status: "free", online: true},
		{first: "Gleb", last: "Orlov", status: "free", online: true},
		{first: "Dina", last: "Kuznetsova", status: "busy", online: true},
		{first: "Egor", last: "Sokolov", status: "free", online: false},
	}}
	for _, p := range w.people {
		p.id = m.AddManager(sandbox.MGUser{FirstName: p.first, LastName: p.last, Online: p.online})
		p.crmID = c.AddUser(sandbox.CRMUser{FirstName: p.first, LastName: p.last, Active: true, IsManager: true, Status: p.status, MGUserID: int64(p.id)})
	}
	// Known customers: Olga has Anna as her personal manager and is a
	// "vip"; Pavel has Boris and is a wholesale buyer; Rita has none.
	for i, cu := range []struct {
		name     string
		manager  int
		segments []string
		tags     []string
	}{
		{"Olga", w.people[0].crmID, []string{"vip"}, []string{"loyal", "returns"}},
		{"Pavel", w.people[1].crmID, []string{"b2b"}, []string{"wholesale"}},
		{"Rita", 0, nil, nil},
	} {
		c.AddCustomer(sandbox.CRMCustomer{FirstName: cu.name, Phones: []string{fmt.Sprintf("8 (916) 000-00-%02d", i+1)},
			ManagerID: cu.manager, Segments: cu.segments, Tags: cu.tags})
	}
	for _, ch := range []struct {
		typ, name string
		weight    int
	}{{"telegram", "Shop", 5}, {"whatsapp", "Support", 4}, {"vk", "FAQ", 2}} {
		id, err := m.AddChannel(ctx, ch.typ, ch.name)
		if err != nil {
			w.close()
			return nil, err
		}
		w.channels = append(w.channels, channel{id: id, name: ch.name, weight: ch.weight})
	}
	if w.bot, _, err = m.AddBot("FAQ bot", mg.RoleResponsible); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *world) close() {
	w.crm.Close()
	w.mg.Close()
}

func (w *world) byName(first string) *person {
	for _, p := range w.people {
		if p.first == first {
			return p
		}
	}
	panic("demo: no manager " + first)
}

// settings are the demo account's settings and each manager's capacity:
// everyone in the distribution, Shop to four managers, Support to four
// others (overlapping), FAQ to the bot; least loaded first; a manager who
// goes away loses their uncompleted dialogs after a short grace.
func (w *world) settings() (bd.Settings, map[bd.ManagerID]int) {
	s := bot.DefaultSettings(bot.LangEnglish)
	s.Active = true
	s.DefaultCapacity = defaultCapacity
	s.Strategy = strategy.NameLeastLoaded
	s.Reassign = bd.ReassignUncompleted
	s.PresenceGrace = 300 * time.Millisecond
	s.AutoBind, s.AutoCreate = true, true
	capacity := make(map[bd.ManagerID]int)
	for _, p := range w.people {
		s.Managers = append(s.Managers, p.id)
		capacity[p.id] = defaultCapacity
		if p.capacity > 0 {
			if s.Capacity == nil {
				s.Capacity = make(map[bd.ManagerID]int)
			}
			s.Capacity[p.id] = p.capacity
			capacity[p.id] = p.capacity
		}
	}
	ids := func(names ...string) []bd.ManagerID {
		var out []bd.ManagerID
		for _, n := range names {
			out = append(out, w.byName(n).id)
		}
		return out
	}
	s.Channels = map[bd.ChannelID]bd.ChannelRule{
		w.channels[0].id: {Target: bd.ToManagers, Managers: ids("Anna", "Boris", "Vera", "Egor")},
		w.channels[1].id: {Target: bd.ToManagers, Managers: ids("Anna", "Gleb", "Dina", "Egor")},
		w.channels[2].id: {Target: bd.ToBot, Bot: w.bot},
	}
	return s, capacity
}
