package bot_test

import (
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
	"github.com/botdistributor/botdistributor/sandbox"
)

// End to end through the sandbox: a customer whose retailCRM card names
// Boris goes to Boris, though round robin would choose Anna.
func TestPersonalManagerFromRetailCRM(t *testing.T) {
	ctx := ctxFor(t)
	env := bottest.NewEnv(t)
	if err := env.CRM.SetStatus(env.BorisCRM, "free"); err != nil {
		t.Fatal(err)
	}
	card := env.CRM.AddCustomer(sandbox.CRMCustomer{FirstName: "Olga", Phones: []string{"+79161234567"}, Site: "sandbox"})
	if err := env.CRM.SetCustomerManager(card, env.BorisCRM); err != nil {
		t.Fatal(err)
	}
	if err := env.CRM.SetCustomerSegments(card, "vip"); err != nil {
		t.Fatal(err)
	}
	sup, err := bot.New(bottest.Options(mustStorage(t).Store))
	if err != nil {
		t.Fatal(err)
	}
	bottest.Start(t, sup)
	id := env.Connect(t, sup)
	s := env.Settings()
	s.PersonalManager = true
	s.PrioritySegments = []string{"vip"}
	if err := sup.SaveSettings(ctx, id, s); err != nil {
		t.Fatal(err)
	}
	bottest.Eventually(t, 10*time.Second, "Boris to become eligible", func() bool {
		tr, err := sup.Decide(ctx, bd.Dialog{Account: id, ID: 999, Chat: 1, Channel: env.Shop, Customer: bd.Customer{ID: 1}})
		return err == nil && tr.CandidateCount == 2
	})
	w, err := env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: env.Shop, CustomerExternalID: "olga", FirstName: "Olga", Phone: "+7 916 123-45-67", Text: "Hello"})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.MG.Await(ctx, func() bool { r, _ := env.MG.Responsible(w.Dialog); return !r.IsZero() }); err != nil {
		t.Fatal(err)
	}
	if r, _ := env.MG.Responsible(w.Dialog); r != bd.ManagerOf(env.Boris) {
		t.Fatalf("Olga's dialog went to %s, want her personal manager Boris", r)
	}
	// Another customer, with no card, goes by round robin: Anna first.
	w2, err := env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: env.Shop, CustomerExternalID: "ivan", FirstName: "Ivan", Text: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.MG.Await(ctx, func() bool { r, _ := env.MG.Responsible(w2.Dialog); return !r.IsZero() }); err != nil {
		t.Fatal(err)
	}
	if r, _ := env.MG.Responsible(w2.Dialog); r != bd.ManagerOf(env.Anna) {
		t.Fatalf("Ivan's dialog went to %s, want Anna", r)
	}
}
