package mg_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/sandbox"
)

// The client implements the reply.Sender and reply.Checker ports.
var (
	_ reply.Sender  = (*mg.Client)(nil)
	_ reply.Checker = (*mg.Client)(nil)
)

// Listing the open dialogs nobody is responsible for and assigning one,
// against the sandbox MG.
func Example() {
	ctx := context.Background()
	fake, err := sandbox.NewMG()
	if err != nil {
		log.Fatal(err)
	}
	defer fake.Close()
	ch, _ := fake.AddChannel(ctx, "telegram", "Shop")
	ann := fake.AddManager(sandbox.MGUser{FirstName: "Ann", Online: true})
	fake.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "bob", Text: "Hello"})

	c, err := mg.New(fake.URL(), fake.BotToken())
	if err != nil {
		log.Fatal(err)
	}
	self, err := c.SelfBot(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bot:", self.Name)
	for d, err := range c.AllDialogs(ctx, mg.DialogsFilter{Active: mg.Yes, Assigned: mg.No}) {
		if err != nil {
			log.Fatal(err)
		}
		res, err := c.AssignDialog(ctx, d.ID, bd.ManagerOf(ann))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("dialog", d.ID, "assigned to", res.Responsible.Who())
	}
	_, err = c.AssignDialog(ctx, 1, bd.ManagerOf(ann))
	fmt.Println("unknown dialog:", errors.Is(err, mg.ErrNotFound))
	// Output:
	// bot: Distributor
	// dialog 10000 assigned to manager 100
	// unknown dialog: true
}

// Streaming events: OnConnect re-reads state after every (re)connect, the
// handler gets typed payloads in order.
func ExampleClient_Stream() {
	fake, err := sandbox.NewMG()
	if err != nil {
		log.Fatal(err)
	}
	defer fake.Close()
	c, err := mg.New(fake.URL(), fake.BotToken())
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := context.WithCancel(context.Background())
	connected := make(chan struct{})
	stream, err := c.Stream([]string{mg.EventDialogOpened, mg.EventMessageNew}, func(ctx context.Context, ev mg.Event) error {
		switch data := ev.Data.(type) {
		case *mg.DialogData:
			fmt.Println(ev.Type, data.Dialog.ID)
		case *mg.MessageData:
			fmt.Printf("%s from %s: %s\n", ev.Type, data.Message.From.Type, data.Message.Content)
			stop() // enough for the example
		}
		return nil
	}, mg.WithOnConnect(func(ctx context.Context) error {
		open, err := mg.Collect(c.AllDialogs(ctx, mg.DialogsFilter{Active: mg.Yes}))
		fmt.Println("connected; open dialogs:", len(open))
		close(connected)
		return err
	}))
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- stream.Run(ctx) }()

	<-connected
	ch, _ := fake.AddChannel(ctx, "telegram", "Shop")
	fake.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "bob", Text: "Hello"})
	fmt.Println("run:", <-done)
	// Output:
	// connected; open dialogs: 0
	// dialog_opened 10000
	// message_new from customer: Hello
	// run: context canceled
}
