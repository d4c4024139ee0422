package distributor

import (
	"context"
	"errors"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// Gateway is the part of MessageGateway the distributor acts through. The
// mg package provides one over the Bot API; tests use fakes.
//
// Assign makes to responsible for the dialog in MG (PATCH
// /dialogs/{id}/assign with user_id or bot_id). It is safe for concurrent use
// and may block on I/O. An error means MG did not take the assignment; the
// distributor then gives the reserved slot back and the dialog waits. An
// error wrapping ErrDialogGone means it never will (the dialog was closed,
// is no longer the latest of its chat, or does not exist): the distributor
// then treats the dialog as closed.
type Gateway interface {
	Assign(ctx context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error
}

// ErrDialogGone is wrapped by Gateway.Assign errors for dialogs that can
// no longer be assigned.
var ErrDialogGone = errors.New("distributor: dialog gone")

// EventKind is the kind of an [Event].
type EventKind uint8

// The event kinds the distributor acts on.
const (
	_ EventKind = iota
	// DialogOpened: a customer opened a new dialog (MG dialog_opened).
	DialogOpened
	// CustomerMessage: a customer wrote (MG message_new from a customer).
	// On a dialog with no responsible that is not waiting yet, it starts
	// distribution like DialogOpened.
	CustomerMessage
	// ManagerMessage: a manager or bot wrote in the dialog (MG message_new
	// from a user or bot); it marks the dialog as answered.
	ManagerMessage
	// DialogClosed: the dialog ended (MG dialog_closed); its load is released.
	DialogClosed
	// DialogAssigned: MG reports a new responsible (MG dialog_assign), e.g.
	// a person reassigned it in the MG interface; the store follows MG.
	DialogAssigned
	// ManagerChanged: a manager's status, presence or activity changed
	// (MG user_online_updated / user_updated, or a polled CRM status).
	ManagerChanged
)

var kindNames = [...]string{
	DialogOpened:    "dialog_opened",
	CustomerMessage: "customer_message",
	ManagerMessage:  "manager_message",
	DialogClosed:    "dialog_closed",
	DialogAssigned:  "dialog_assigned",
	ManagerChanged:  "manager_changed",
}

// String implements fmt.Stringer.
func (k EventKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Event is something that happened in MessageGateway or retailCRM.
type Event struct {
	Kind    EventKind
	Account bd.AccountID
	// Dialog is the dialog concerned; for every kind but ManagerChanged.
	Dialog bd.Dialog
	// Responsible is the new responsible, for DialogAssigned.
	Responsible bd.Responsible
	// Manager is the manager's new state, for ManagerChanged. An empty
	// Status keeps the status known before (MG presence events carry none).
	Manager bd.Manager
	// MessageID identifies the message of CustomerMessage and ManagerMessage.
	MessageID int64
	// At is when it happened; zero means now.
	At time.Time
}

// OpenDialog is an open dialog as MessageGateway reports it on a re-read
// (after a websocket reconnect or a restart), for [Distributor.Resync].
type OpenDialog struct {
	Dialog bd.Dialog
	// Responsible is MG's responsible for the dialog; zero if unassigned.
	Responsible bd.Responsible
}
