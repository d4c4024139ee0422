package bot_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
	"github.com/botdistributor/botdistributor/internal/leakcheck"
	"github.com/botdistributor/botdistributor/sandbox"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// An account connected and configured before a restart runs again after
// it, from the SQLite file alone: same settings, same MG bot token, and
// dialogs get distributed.
func TestSupervisorRestoresAccountsAfterRestart(t *testing.T) {
	// Each has its own sandbox and database: they run side by side.
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); testRestore(t, filepath.Join(t.TempDir(), "bot.db")) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); testRestore(t, postgresDSN(t)) })
}

// postgresEnv names the PostgreSQL database the tests may create schemas in.
const postgresEnv = "BOTDISTRIBUTOR_TEST_POSTGRES"

// postgresDSN returns a DSN whose search_path is a fresh schema, dropped
// when the test ends; it skips the test when no database is given.
func postgresDSN(t *testing.T) string {
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		t.Skip("PostgreSQL tests need a database: set " + postgresEnv + ", e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := "bd_bot_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	// The schema is dropped when the test ends: a commit need not wait
	// for the disk (only a crash of PostgreSQL itself could lose one).
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	return u.String()
}

func testRestore(t *testing.T, dsn string) {
	ctx := ctxFor(t)
	env := bottest.NewEnv(t)

	// First life: connect and save settings.
	storage, err := bot.OpenStorage(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := bot.New(bottest.Options(storage.Store))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sup.Run(runCtx) }()
	id := env.Connect(t, sup)
	want := env.Settings()
	want.DefaultCapacity = 4
	if err := sup.SaveSettings(ctx, id, want); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if err := storage.Close(); err != nil {
		t.Fatal(err)
	}

	// Second life: nothing but the file.
	storage, err = bot.OpenStorage(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storage.Close() })
	sup, err = bot.New(bottest.Options(storage.Store))
	if err != nil {
		t.Fatal(err)
	}
	bottest.Start(t, sup)
	bottest.Eventually(t, 10*time.Second, "the account to be restored", func() bool { return len(sup.Accounts(ctx)) == 1 })
	if err := sup.Ready(ctx, id); err != nil {
		t.Fatal(err)
	}
	got, err := sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("settings after restart:\n got %+v\nwant %+v", got, want)
	}
	w, err := env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: env.Shop, CustomerExternalID: "c1", FirstName: "Ivan", Text: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.MG.Await(ctx, func() bool { r, _ := env.MG.Responsible(w.Dialog); return !r.IsZero() }); err != nil {
		t.Fatal(err)
	}
	if r, _ := env.MG.Responsible(w.Dialog); r != bd.ManagerOf(env.Anna) {
		t.Fatalf("dialog went to %s, want Anna (Boris is busy in retailCRM)", r)
	}
}

// The roster joins MG users with retailCRM: Boris is online in MG but busy
// in retailCRM, so the decision removes him by status; once retailCRM says
// he is free, the next roster poll makes him eligible.
func TestRosterFollowsRetailCRMStatus(t *testing.T) {
	ctx := ctxFor(t)
	env := bottest.NewEnv(t)
	sup, err := bot.New(bottest.Options(mustStorage(t).Store))
	if err != nil {
		t.Fatal(err)
	}
	bottest.Start(t, sup)
	id := env.Connect(t, sup)
	if err := sup.SaveSettings(ctx, id, env.Settings()); err != nil {
		t.Fatal(err)
	}
	dialog := bd.Dialog{Account: id, ID: 999, Chat: 1, Channel: env.Shop, Customer: bd.Customer{ID: 1}}
	tr, err := sup.Decide(ctx, dialog)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.RemovedBy(distributor.FilterStatus); !reflect.DeepEqual(got, []bd.ManagerID{env.Boris}) {
		t.Fatalf("removed by status: %v, want Boris (%d)\n%s", got, env.Boris, tr)
	}
	if err := env.CRM.SetStatus(env.BorisCRM, "free"); err != nil {
		t.Fatal(err)
	}
	bottest.Eventually(t, 10*time.Second, "Boris to become eligible", func() bool {
		tr, err := sup.Decide(ctx, dialog)
		return err == nil && len(tr.Removed) == 0 && tr.CandidateCount == 2
	})
	c, err := sup.Choices(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Managers) != 2 || len(c.Channels) != 2 || len(c.Bots) != 1 || c.Bots[0].ID != env.Bot {
		t.Fatalf("choices: %d managers, %d channels, bots %+v", len(c.Managers), len(c.Channels), c.Bots)
	}
}

func mustStorage(t *testing.T) *bot.Storage {
	t.Helper()
	s, err := bot.OpenStorage(context.Background(), "memory:")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Settings are validated as a whole: every empty reply and every reply
// that is not a valid template is named, and nothing is saved.
func TestSaveSettingsRefusesBadReplies(t *testing.T) {
	ctx := ctxFor(t)
	env := bottest.NewEnv(t)
	sup, err := bot.New(bottest.Options(mustStorage(t).Store))
	if err != nil {
		t.Fatal(err)
	}
	bottest.Start(t, sup)
	id := env.Connect(t, sup)
	before, err := sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	bad := env.Settings()
	bad.Replies[bd.NoManagerOnline] = "  "
	bad.Replies[bd.ManagerAssigned] = "{{.Client}} will answer"
	err = sup.SaveSettings(ctx, id, bad)
	var se *bd.SettingsError
	if !errors.As(err, &se) {
		t.Fatalf("SaveSettings: %v, want a *bd.SettingsError", err)
	}
	fields := map[string]string{}
	for _, p := range se.Problems {
		fields[p.Field] = p.Message
	}
	if fields["replies.no_manager_online"] != "is empty" {
		t.Errorf("empty reply not named: %v", se)
	}
	if !strings.Contains(fields["replies.manager_assigned"], "Client") {
		t.Errorf("invalid template not named: %v", se)
	}
	after, err := sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("settings changed by a refused save")
	}
}

// The store's DSN password never shows in an error.
func TestOpenStorageHidesThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := bot.OpenStorage(ctx, "postgres://bot:hunter2secret@127.0.0.1:1/bot?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("opening an unreachable database succeeded")
	}
	if strings.Contains(err.Error(), "hunter2secret") {
		t.Fatalf("the error shows the password: %v", err)
	}
	if _, err := bot.OpenStorage(ctx, " "); err == nil {
		t.Fatal("an empty DSN was accepted")
	}
}

// CombineHooks calls every hook given, skipping nil ones.
func TestCombineHooks(t *testing.T) {
	var calls []string
	h := bot.CombineHooks(
		distributor.Hooks{Queued: func(bd.AccountID, bd.Situation) { calls = append(calls, "a") }},
		distributor.Hooks{},
		distributor.Hooks{Queued: func(bd.AccountID, bd.Situation) { calls = append(calls, "b") }},
	)
	if h.Assigned != nil || h.Failed != nil {
		t.Fatal("hooks nobody set are not nil")
	}
	h.Queued("x", bd.AllManagersBusy)
	if !reflect.DeepEqual(calls, []string{"a", "b"}) {
		t.Fatalf("calls: %v", calls)
	}
}

// Several accounts run side by side, each on its own MessageGateway with
// its own settings.
func TestSeveralAccounts(t *testing.T) {
	leakcheck.Check(t)
	ctx := ctxFor(t)
	sup, err := bot.New(bottest.Options(mustStorage(t).Store))
	if err != nil {
		t.Fatal(err)
	}
	bottest.Start(t, sup)
	envs := []*bottest.Env{bottest.NewEnv(t), bottest.NewEnv(t)}
	var ids []bd.AccountID
	for i, env := range envs {
		id := env.Connect(t, sup)
		s := env.Settings()
		s.Replies[bd.ManagerAssigned] = fmt.Sprintf("Account %d: {{.Manager}} will answer.", i)
		if err := sup.SaveSettings(ctx, id, s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] {
		t.Fatalf("both accounts got id %s", ids[0])
	}
	if n := len(sup.Accounts(ctx)); n != 2 {
		t.Fatalf("%d accounts listed", n)
	}
	for i, env := range envs {
		w, err := env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: env.Shop, CustomerExternalID: "c", FirstName: "Ivan", Text: "Hi"})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("Account %d: Anna Smirnova will answer.", i)
		if err := env.MG.Await(ctx, func() bool {
			for _, d := range env.MG.Delivered(w.Chat) {
				if d.Text == want {
					return true
				}
			}
			return false
		}); err != nil {
			t.Fatalf("account %d: no %q: %v", i, want, err)
		}
		if r, _ := env.MG.Responsible(w.Dialog); r != bd.ManagerOf(env.Anna) {
			t.Fatalf("account %d: dialog went to %s", i, r)
		}
	}
}
