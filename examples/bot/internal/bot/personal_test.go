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
// Boris goes to Boris, though round robin would choose Anna; once the card
// names Anna (retailCRM's customer history tells), to Anna.
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
	// The card's personal manager changes in retailCRM: the customer
	// history says so, and Olga's next dialog goes to Anna.
	if err := env.MG.CloseDialog(w.Dialog); err != nil {
		t.Fatal(err)
	}
	// The feed of changes has started (the first read of the history only
	// finds where to start): a few polls of retailCRM have passed.
	n := env.CRM.Requests(bottest.FullKey)
	bottest.Eventually(t, 10*time.Second, "a few polls of retailCRM", func() bool { return env.CRM.Requests(bottest.FullKey) >= n+10 })
	if err := env.CRM.SetCustomerManager(card, env.AnnaCRM); err != nil {
		t.Fatal(err)
	}
	olga := bd.Dialog{Account: id, ID: 9999, Chat: w.Chat, Channel: env.Shop, Customer: bd.Customer{ID: w.Customer, Phone: "+79161234567"}}
	bottest.Eventually(t, 10*time.Second, "the changed card to be read", func() bool {
		tr, err := sup.Decide(ctx, olga)
		return err == nil && tr.Personal == env.Anna
	})
	again, err := env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: env.Shop, CustomerExternalID: "olga", FirstName: "Olga", Phone: "+7 916 123-45-67", Text: "Me again"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Dialog == w.Dialog {
		t.Fatalf("no new dialog")
	}
	if err := env.MG.Await(ctx, func() bool { r, _ := env.MG.Responsible(again.Dialog); return !r.IsZero() }); err != nil {
		t.Fatal(err)
	}
	if r, _ := env.MG.Responsible(again.Dialog); r != bd.ManagerOf(env.Anna) {
		t.Fatalf("Olga's new dialog went to %s, want her new personal manager Anna", r)
	}

	// Another customer, with no card, goes by round robin.
	w2, err := env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: env.Shop, CustomerExternalID: "ivan", FirstName: "Ivan", Text: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.MG.Await(ctx, func() bool { r, _ := env.MG.Responsible(w2.Dialog); return !r.IsZero() }); err != nil {
		t.Fatal(err)
	}
	if r, _ := env.MG.Responsible(w2.Dialog); r.IsZero() {
		t.Fatalf("Ivan's dialog went to nobody")
	}
}
