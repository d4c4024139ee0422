package reply_test

import (
	"context"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/reply"
)

// printSender is a Sender that prints instead of calling MessageGateway.
type printSender struct{}

func (printSender) Send(_ context.Context, account bd.AccountID, chat bd.ChatID, text string) error {
	fmt.Printf("%s, chat %d: %s\n", account, chat, text)
	return nil
}

func ExampleTemplate() {
	r, err := reply.NewTemplate(printSender{})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = r.Reply(context.Background(), reply.Request{
		Dialog: bd.Dialog{
			Account:  "shop.example.com",
			ID:       501,
			Chat:     77,
			Customer: bd.Customer{FirstName: "Olga"},
		},
		Situation: bd.ManagerAssigned,
		Text:      "Hello, {{.Customer}}! {{.Manager}} will answer you shortly.",
		Manager:   bd.Manager{ID: 12, FirstName: "Anna", LastName: "Smith"},
	})
	fmt.Println(err)
	// Output:
	// shop.example.com, chat 77: Hello, Olga! Anna Smith will answer you shortly.
	// <nil>
}

func ExampleValidate() {
	for _, text := range []string{
		"Hello, {{.Customer}}!",
		"Hello, {{.Client}}!",
		"Hello, {{.Customer!",
	} {
		fmt.Println(reply.Validate(text))
	}
	// Output:
	// <nil>
	// reply: text: template: reply:1:9: executing "reply" at <.Client>: can't evaluate field Client in type reply.Vars
	// reply: text: template: reply:1: bad character U+0021 '!'
}
