// Package reply sends the automatic replies a customer gets in each
// situation: dialog received, manager assigned, no manager online, all
// managers busy, outside working hours.
//
// The distributor decides when a reply is due and makes sure each
// (dialog, situation) is replied to at most once; a [Replier] only renders
// and sends. [Template] renders the account's text with the manager's and
// customer's names and hands it to a [Sender]; [Nop] sends nothing.
//
// # Exactly once
//
// A reply is sent by a retrying job: when an attempt fails, the job tries
// again later with Request.Attempt one higher. A failure does not always
// mean the text did not reach the chat: a timeout or a lost answer after
// the messenger took the message leaves it open. So, on every attempt
// after the first, [Template] asks its Sender whether the text already
// landed, when the Sender can tell (it implements [Checker], as the MG
// client does), and sends nothing if it did. A Sender that cannot tell
// gets the text again: at least once, not exactly once.
//
// # Checking texts before they are saved
//
// A Replier that can tell which texts it cannot send implements
// [TextChecker] too; settings are checked with it as a whole
// (distributor.CheckSettings, Distributor.SaveSettings), so that a text it
// would refuse is named beside its field when the settings are saved, not
// found when the reply is due. [Template] checks its placeholders so.
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
	// Attempt numbers the tries of this reply: 1 (or 0) for the first,
	// 2 and up for a retry after an attempt that failed or whose outcome
	// is unknown. A Replier must make sure a retry does not send the text
	// a second time when an earlier attempt did send it; [Template] does so
	// through [Checker].
	Attempt int
}

// Replier sends an automatic reply into a dialog's chat.
//
// Reply is safe for concurrent use and may block on I/O. A returned error
// means the reply was perhaps not sent: the caller tries again later with
// req.Attempt one higher, and the Replier then sends the text only if no
// earlier attempt did (see [Request.Attempt] and [Checker]). A Replier
// returns a *[TextError] for a text that can never be sent; retrying that
// does not help.
type Replier interface {
	Reply(ctx context.Context, req Request) error
}

// Sender delivers a text into a chat, publicly (the customer sees it).
// The MessageGateway client implements it with POST /messages, scope public.
//
// Send is safe for concurrent use and may block on I/O. A nil error means
// the text was taken. An error means it may not have been; whether it
// perhaps was (a timeout, a lost answer) is for a [Checker] to find out.
type Sender interface {
	Send(ctx context.Context, account bd.AccountID, chat bd.ChatID, text string) error
}

// Checker is implemented by a [Sender] that can tell whether a text it was
// asked to send has landed, so that a retry after an ambiguous failure
// does not send it twice (the optional-interface idiom of
// database/sql/driver). The MG client implements it by listing the bot's
// messages in the dialog.
//
// HasSent reports whether text, exactly, was sent into the chat within the
// dialog (dialog 0: anywhere in the chat) by this sender. It is safe for
// concurrent use and may block on I/O. An error means it could not tell;
// the caller must then neither assume the text landed nor send it again
// blindly, but fail and try later. It cannot tell apart two messages of
// the same text in the same dialog.
type Checker interface {
	HasSent(ctx context.Context, account bd.AccountID, chat bd.ChatID, dialog bd.DialogID, text string) (bool, error)
}

// TextChecker is implemented by a [Replier] that can tell, before a text
// is saved, whether it can send it (the optional-interface idiom of
// database/sql/driver: a Replier may also be a TextChecker). Settings are
// checked with it as a whole (distributor.CheckSettings,
// Distributor.SaveSettings): every non-empty reply text of every
// situation goes through CheckText, and a text it refuses is named as a
// problem of its field ("replies.<situation>"), so nothing is saved that
// the Replier would refuse to send. [Template] implements it with the
// placeholder check of [Validate].
//
// A Replier's CheckText takes the place of the built-in placeholder
// check: a Replier that renders texts its own way accepts what it can
// render and refuses what it cannot. One that uses the built-in
// placeholders and checks more may call [Validate] first. For a Replier
// that is no TextChecker, settings get the built-in checks only
// (bd.Settings.Validate, placeholders included).
//
// CheckText reports whether text can be sent as the reply of situation
// sit; it is never given an empty text. It is pure (no I/O, the same
// answer for the same arguments) and safe for concurrent use. A non-nil
// error says what is wrong with the text in words the account's admin
// understands, without a package prefix ("unknown placeholder {client}:
// use {customer} or {manager}"): a settings page shows it beside the
// text's field as it is. A *[TextError] (as from [Validate]) is shown by
// its Err, without the "reply: text: " of its Error.
type TextChecker interface {
	CheckText(sit bd.Situation, text string) error
}

// Nop is a Replier that sends nothing and never fails.
var Nop Replier = nop{}

type nop struct{}

func (nop) Reply(context.Context, Request) error { return nil }
