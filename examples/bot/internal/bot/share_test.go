package bot_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store"
)

// Two bot processes over one store share the account: one runs its event
// stream, both do its jobs. When the one running the stream stops, the
// other takes the account over and resyncs it; every dialog opened before,
// during and after is assigned once, greeted once and told its manager
// once.
func TestTwoSupervisorsShareAnAccount(t *testing.T) {
	// Each has its own sandbox and store: they run side by side.
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		st := mustStorage(t).Store
		testShare(t, func(testing.TB) store.Store { return st })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := postgresDSN(t)
		testShare(t, func(t testing.TB) store.Store {
			// A Storage each, as two processes would have.
			s, err := bot.OpenStorage(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s.Store
		})
	})
}

func testShare(t *testing.T, open func(testing.TB) store.Store) {
	ctx := ctxFor(t)
	env := bottest.NewEnv(t)
	// Both managers free in retailCRM, room for every dialog: each dialog
	// goes straight to a manager, wherever its job runs.
	if err := env.CRM.SetStatus(env.BorisCRM, "free"); err != nil {
		t.Fatal(err)
	}
	type member struct {
		sup  *bot.Supervisor
		stop context.CancelFunc
		done chan error
	}
	start := func(name string, st store.Store) *member {
		opts := bottest.Options(st)
		opts.Fleet = []fleet.Option{fleet.WithMember(name), fleet.WithLeaseTTL(2 * time.Second), fleet.WithRescan(50 * time.Millisecond)}
		sup, err := bot.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(context.Background())
		m := &member{sup: sup, stop: stop, done: make(chan error, 1)}
		go func() { m.done <- sup.Run(rctx) }()
		t.Cleanup(func() { m.stop(); <-m.done })
		return m
	}
	st := open(t) // the first member's; the second's is the same database
	members := []*member{start("a", st), start("b", open(t))}

	id, err := members[0].sup.Connect(ctx, env.CRM.URL(), bottest.FullKey)
	if err != nil {
		t.Fatal(err)
	}
	s := env.Settings()
	s.DefaultCapacity = 100
	if err := members[0].sup.SaveSettings(ctx, id, s); err != nil {
		t.Fatal(err)
	}
	// holder returns the member running the account's stream, resynced.
	holder := func(among []*member) *member {
		var h *member
		bottest.Eventually(t, 10*time.Second, "a member to run the account's stream", func() bool {
			for _, m := range among {
				info, err := m.sup.Account(ctx, id)
				if err == nil && info.Holder && !info.LastResync.IsZero() {
					h = m
					return true
				}
			}
			return false
		})
		return h
	}
	first := holder(members)
	bottest.Eventually(t, 10*time.Second, "the other member to host the account and see the settings", func() bool {
		for _, m := range members {
			got, err := m.sup.Settings(ctx, id)
			if err != nil || got.DefaultCapacity != 100 {
				return false
			}
		}
		return true
	})
	var dialogs []sandbox.MGWritten
	write := func(n int) {
		for range n {
			i := len(dialogs)
			w, err := env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: env.Shop, CustomerExternalID: fmt.Sprintf("c%d", i), FirstName: "Ivan", Text: "Hi"})
			if err != nil {
				t.Fatal(err)
			}
			dialogs = append(dialogs, w)
		}
	}
	// settle waits until every dialog written is greeted, assigned in MG
	// and its customer told who will answer, and no job is left.
	settle := func() {
		t.Helper()
		bottest.Eventually(t, 10*time.Second, "every dialog greeted, assigned and its customer told", func() bool {
			for _, w := range dialogs {
				msgs := env.MG.BotMessages(w.Dialog)
				if r, _ := env.MG.Responsible(w.Dialog); r.IsZero() || count(msgs, "We have received your message") == 0 || count(msgs, "will answer you shortly") == 0 {
					return false
				}
			}
			n, err := st.PendingJobs(ctx, id)
			return err == nil && n == 0
		})
	}
	write(10)
	// The holder stops while its jobs run, dialogs keep coming; the other
	// takes over. A reply job the stop cuts short counts as an attempt, so
	// the process that does it again first looks whether it landed: the
	// counts below stay exact.
	first.stop()
	if err := <-first.done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
	first.done <- nil // for the cleanup
	write(10)
	var rest []*member
	for _, m := range members {
		if m != first {
			rest = append(rest, m)
		}
	}
	holder(rest)
	write(10)
	settle()

	d, err := rest[0].sup.Dashboard(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Open != len(dialogs) || d.Queue != 0 {
		t.Fatalf("the store counts %d open dialogs and %d waiting, want %d and 0", d.Open, d.Queue, len(dialogs))
	}
	// Once the member stopped, nothing more is sent: count what was.
	rest[0].stop()
	if err := <-rest[0].done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
	rest[0].done <- nil
	for _, w := range dialogs {
		msgs := env.MG.BotMessages(w.Dialog)
		if n := count(msgs, "We have received your message"); n != 1 {
			t.Errorf("dialog %d greeted %d times", w.Dialog, n)
		}
		if n := count(msgs, "will answer you shortly"); n != 1 {
			t.Errorf("dialog %d told its manager %d times", w.Dialog, n)
		}
		// A distribution the stop cut short is done again by the other
		// member, which may tell MG the same assignment a second time: MG
		// and the store must agree on one manager, the customer hears of
		// one.
		mgResp, _ := env.MG.Responsible(w.Dialog)
		stResp, err := st.Responsible(ctx, id, w.Dialog)
		if _, ok := mgResp.Manager(); !ok || err != nil || stResp != mgResp {
			t.Errorf("dialog %d: MG has %v, the store %v (%v)", w.Dialog, mgResp, stResp, err)
		}
		if n := assignRequests(env.MG, w.Dialog); n < 1 || n > 2 {
			t.Errorf("dialog %d assigned %d times in MG", w.Dialog, n)
		}
	}
}

func count(msgs []sandbox.MGMessage, text string) int {
	n := 0
	for _, m := range msgs {
		if m.FromType == "bot" && strings.Contains(m.Text, text) {
			n++
		}
	}
	return n
}

// assignRequests counts the requests that assigned dialog in MG.
func assignRequests(m *sandbox.MG, dialog bd.DialogID) int {
	n := 0
	for _, r := range m.Requests() {
		if r.Method == "PATCH" && strings.HasSuffix(r.Path, fmt.Sprintf("/dialogs/%d/assign", dialog)) {
			n++
		}
	}
	return n
}
