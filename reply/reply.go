// Package reply sends the automatic replies a customer gets in each
// situation: dialog received, manager assigned, no manager online, all
// managers busy, outside working hours.
//
// The distributor decides when a reply is due and makes sure each
// (dialog, situation) is replied to at most once; a [Replier] only renders
// and sends. [Template] renders the account's text with the manager's and
// customer's names and hands it to a [Sender]; [Nop] sends nothing.
package reply

import (
	"context"

	bd "github.com/botdistributor/botdistributor"
)

// Request is one reply to send.
type Request struct {
	Dialog    bd.Dialog
	Situation bd.Situation
	// Text is the account's text for the situation; it may use the
	// template fields of [Vars].
	Text string
	// Manager is the assigned manager, for ManagerAssigned; zero otherwise.
	Manager bd.Manager
}

// Replier sends an automatic reply into a dialog's chat.
//
// Reply is safe for concurrent use and may block on I/O. A returned error
// means the reply was not sent; the distributor may try again later.
type Replier interface {
	Reply(ctx context.Context, req Request) error
}

// Sender delivers a text into a chat, publicly (the customer sees it).
// The MessageGateway client implements it with POST /messages, scope public.
type Sender interface {
	Send(ctx context.Context, account bd.AccountID, chat bd.ChatID, text string) error
}

// Nop is a Replier that sends nothing and never fails.
var Nop Replier = nop{}

type nop struct{}

func (nop) Reply(context.Context, Request) error { return nil }
