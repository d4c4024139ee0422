// Package bottest sets up what the reference bot's tests share: a sandbox
// retailCRM account and MessageGateway with managers, channels and a bot,
// and a running bot.Supervisor over them.
package bottest

import (
	"context"
	"math"
	"testing"
	"time"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store"
)

// API keys the sandbox retailCRM of an [Env] accepts.
const (
	// FullKey may do everything the bot needs.
	FullKey = "full-key-5e1f0c2a9d"
	// LimitedKey lacks the Customers and Users sections.
	LimitedKey = "limited-key-77b3e1"
	// SelectiveKey has every scope but access to some stores only.
	SelectiveKey = "selective-key-c4d2"
)

// Env is a sandbox retailCRM account with its MessageGateway: two managers
// (Anna, free and online; Boris, busy in retailCRM), two channels and a
// bot with the responsible role.
type Env struct {
	MG  *sandbox.MG
	CRM *sandbox.CRM
	// Anna and Boris are the managers' MG user ids; AnnaCRM and BorisCRM
	// their retailCRM user ids (for SetStatus, SetCustomerManager).
	Anna, Boris bd.ManagerID
	AnnaCRM     int
	BorisCRM    int
	// Shop and Support are channels; Bot is the responsible bot.
	Shop, Support bd.ChannelID
	Bot           bd.BotID
}

// NewEnv starts the sandbox; it is closed when the test ends.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	m, err := sandbox.NewMG(sandbox.WithSeed(7))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c, err := sandbox.NewCRM(sandbox.WithMGBot(m.URL(), m.BotToken().Reveal()), sandbox.WithRateLimit(-1), sandbox.WithKeys(map[string]sandbox.CRMKey{
		FullKey:      sandbox.CRMFullAccess(),
		LimitedKey:   {Scopes: []string{"integration_read", "integration_write", "reference_read"}, SiteAccess: "access_full"},
		SelectiveKey: {Scopes: sandbox.CRMAllScopes(), SiteAccess: "access_selective", Sites: []string{"sandbox"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e := &Env{MG: m, CRM: c}
	e.Anna = m.AddManager(sandbox.MGUser{FirstName: "Anna", LastName: "Smirnova", Online: true})
	e.Boris = m.AddManager(sandbox.MGUser{FirstName: "Boris", LastName: "Ivanov", Online: true})
	e.AnnaCRM = c.AddUser(sandbox.CRMUser{FirstName: "Anna", LastName: "Smirnova", Active: true, IsManager: true, Status: "free", MGUserID: int64(e.Anna)})
	e.BorisCRM = c.AddUser(sandbox.CRMUser{FirstName: "Boris", LastName: "Ivanov", Active: true, IsManager: true, Status: "busy", MGUserID: int64(e.Boris)})
	ctx := context.Background()
	if e.Shop, err = m.AddChannel(ctx, "telegram", "Shop"); err != nil {
		t.Fatal(err)
	}
	if e.Support, err = m.AddChannel(ctx, "whatsapp", "Support"); err != nil {
		t.Fatal(err)
	}
	if e.Bot, _, err = m.AddBot("FAQ bot", mg.RoleResponsible); err != nil {
		t.Fatal(err)
	}
	return e
}

// Options returns supervisor options for tests over st: no client-side
// rate limits to wait on, a fast roster poll and sweep, quick reconnects.
func Options(st store.Store) bot.Options {
	return bot.Options{
		Store:      st,
		Module:     crm.Module{BaseURL: "http://127.0.0.1:8080"},
		CRM:        []crm.Option{crm.WithLimiters(crm.NewLimiters(math.Inf(1), 1))},
		MGRate:     rate.Inf,
		MGBurst:    1,
		RosterPoll: 50 * time.Millisecond,
		CardPoll:   50 * time.Millisecond,
		Sweep:      100 * time.Millisecond,
		Stream:     []mg.StreamOption{mg.WithBackoff(mg.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond})},
	}
}

// Start runs sup until the test ends; the cleanup waits for Run to return.
func Start(t testing.TB, sup *bot.Supervisor) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			t.Errorf("Supervisor.Run: %v", err)
		}
	})
}

// Connect connects the Env's account with the full key and waits until its
// event stream is up.
func (e *Env) Connect(t testing.TB, sup *bot.Supervisor) bd.AccountID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := sup.Connect(ctx, e.CRM.URL(), FullKey)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := sup.Ready(ctx, id); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	return id
}

// Settings are valid settings with both managers, Shop to Anna and
// Boris, Support to the bot.
func (e *Env) Settings() bd.Settings {
	s := bot.DefaultSettings(bot.LangEnglish)
	s.Active = true
	s.Managers = []bd.ManagerID{e.Anna, e.Boris}
	s.DefaultCapacity = 2
	s.Channels = map[bd.ChannelID]bd.ChannelRule{
		e.Shop:    {Target: bd.ToManagers, Managers: []bd.ManagerID{e.Anna, e.Boris}},
		e.Support: {Target: bd.ToBot, Bot: e.Bot},
	}
	return s
}

// Eventually calls cond every few milliseconds until it reports true or
// the deadline passes, then fails the test with what.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		<-tick.C
	}
}
