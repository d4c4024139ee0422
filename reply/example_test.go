package reply_test

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
		Text:      "Hello[, {customer_first_name}]! {manager} will answer you shortly.",
		Manager:   bd.Manager{ID: 12, FirstName: "Anna", LastName: "Smith"},
	})
	fmt.Println(err)
	// Output:
	// shop.example.com, chat 77: Hello, Olga! Anna Smith will answer you shortly.
	// <nil>
}

func ExampleValidate() {
	for _, text := range []string{
		"Hello, {customer}!",
		"Hello, {client}!",
		"Hello, {customer!",
		"Hello, {{.Customer}}!", // the earlier form still works
	} {
		fmt.Println(reply.Validate(text))
	}
	// Output:
	// <nil>
	// reply: text: unknown placeholder {client}: use {customer}, {customer_first_name}, {manager} or {manager_first_name}
	// reply: text: the brace at character 8 is not closed: write a placeholder such as {customer}
	// <nil>
}

func ExampleUpgrade() {
	text, ok := reply.Upgrade("Hello{{if .Customer}}, {{.Customer}}{{end}}! {{.Manager}} will answer.")
	fmt.Println(text, ok)
	// Output:
	// Hello[, {customer}]! {manager} will answer. true
}

// lossySender takes every text but loses the answer the first time, as
// when a timeout hides that MessageGateway posted the message. It is also a
// reply.Checker, so a retry can look whether the text landed.
type lossySender struct{ sent []string }

func (s *lossySender) Send(_ context.Context, _ bd.AccountID, _ bd.ChatID, text string) error {
	s.sent = append(s.sent, text)
	if len(s.sent) == 1 {
		return errors.New("timeout waiting for the answer")
	}
	return nil
}

func (s *lossySender) HasSent(_ context.Context, _ bd.AccountID, _ bd.ChatID, _ bd.DialogID, text string) (bool, error) {
	return slices.Contains(s.sent, text), nil
}

// A reply job retries with Attempt one higher until Reply succeeds; the
// retry finds the text already posted and does not post it again.
func ExampleChecker() {
	s := &lossySender{}
	r, _ := reply.NewTemplate(s)
	req := reply.Request{
		Dialog:    bd.Dialog{Account: "shop.example.com", ID: 501, Chat: 77},
		Situation: bd.NoManagerOnline,
		Text:      "Nobody is online, we will answer soon.",
	}
	for req.Attempt = 1; ; req.Attempt++ {
		err := r.Reply(context.Background(), req)
		fmt.Printf("attempt %d: %v\n", req.Attempt, err)
		if err == nil {
			break
		}
	}
	fmt.Println("posted", len(s.sent), "time(s)")
	// Output:
	// attempt 1: reply: send no_manager_online reply to chat 77: timeout waiting for the answer
	// attempt 2: <nil>
	// posted 1 time(s)
}
