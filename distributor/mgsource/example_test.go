package mgsource_test

import (
	"context"
	"fmt"
	"log"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store/memory"
)

// The MG client is the distributor's gateway, directly or routed per
// account.
var (
	_ distributor.Gateway = (*mg.Client)(nil)
)

// A distributor running on MessageGateway: here the sandbox MG, a memory
// store and one online manager.
func Example() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	fake, err := sandbox.NewMG()
	if err != nil {
		log.Fatal(err)
	}
	defer fake.Close()
	ann := fake.AddManager(sandbox.MGUser{FirstName: "Ann", Online: true})
	shop, _ := fake.AddChannel(ctx, "telegram", "Shop")

	const account bd.AccountID = "shop.example"
	st := memory.New()
	err = st.SaveAccount(ctx, bd.Account{ID: account, MGEndpoint: fake.URL(), MGToken: fake.BotToken(), Settings: bd.Settings{
		Active:   true,
		Managers: []bd.ManagerID{ann}, DefaultCapacity: 5,
		Availability: bd.StatusAndOnline, Reassign: bd.ReassignOff,
		Replies: map[bd.Situation]string{
			bd.DialogReceived: "Hello!", bd.ManagerAssigned: "{{.Manager}} will answer you.",
			bd.NoManagerOnline: "Nobody is online.", bd.AllManagersBusy: "Please wait.", bd.OutsideWorkingHours: "We are closed.",
		},
	}})
	if err != nil {
		log.Fatal(err)
	}

	client, err := mg.New(fake.URL(), fake.BotToken())
	if err != nil {
		log.Fatal(err)
	}
	replier, _ := reply.NewTemplate(client)
	d, err := distributor.New(account, st, mgsource.Gateway{MG: client}, distributor.WithReplier(replier))
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	src, err := mgsource.New(account, client, d)
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- src.Run(ctx) }()

	w, err := fake.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: shop, CustomerExternalID: "bob", FirstName: "Bob", Text: "Hi!"})
	if err != nil {
		log.Fatal(err)
	}
	fake.Await(ctx, func() bool { return len(fake.Delivered(w.Chat)) == 2 })
	who, _ := fake.Responsible(w.Dialog)
	fmt.Println("dialog", w.Dialog, "->", who)
	for _, m := range fake.Delivered(w.Chat) {
		fmt.Println("customer reads:", m.Text)
	}
	stop()
	fmt.Println("run:", <-done)
	// Output:
	// dialog 10000 -> manager 100
	// customer reads: Hello!
	// customer reads: Ann will answer you.
	// run: context canceled
}
