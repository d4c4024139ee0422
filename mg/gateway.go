package mg

import (
	"context"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
)

// Assign makes to responsible for the dialog, with the signature of the
// distributor's Gateway port. A Client speaks for one bot of one account:
// the account is the Distributor's own, and the Client does not use it.
func (c *Client) Assign(ctx context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error {
	_, err := c.AssignDialog(ctx, dialog, to)
	return err
}

// Send posts text into the chat publicly (scope public, type text), with
// the signature of reply.Sender. A Client speaks for one bot of one
// account, so account is not used.
// It retries like [Client.SendMessage]: on 429 and 503 only. An error
// wrapping [ErrAmbiguous] means the text may have been posted; ask
// [Client.HasSent] before sending it again.
func (c *Client) Send(ctx context.Context, account bd.AccountID, chat bd.ChatID, text string) error {
	_, err := c.SendMessage(ctx, SendMessageRequest{ChatID: chat, Scope: ScopePublic, Type: MessageText, Content: text})
	return err
}

// HasSent reports whether this Client's bot has posted text, as a public
// text message with exactly this content, into the chat's dialog. It has
// the signature of reply.Checker; account is not used, as in [Client.Send].
// A dialog of 0 looks at the whole chat.
//
// It lists the messages of the chat and dialog that the bot sent
// (GET /messages?chat_id=&dialog_id=&bot_id=&scope=public&type=text, page
// by page) and compares their content; the bot's own id comes from
// [Client.SelfBot] once and is kept. Use it before sending again after a
// failure wrapping [ErrAmbiguous]. It finds a message whatever its
// delivery status (a message MG took but could not deliver counts as
// sent), and it cannot tell two messages of the same text apart: an
// earlier reply with the same text in the same dialog counts too.
func (c *Client) HasSent(ctx context.Context, account bd.AccountID, chat bd.ChatID, dialog bd.DialogID, text string) (bool, error) {
	if chat <= 0 {
		return false, fmt.Errorf("mg: has sent: chat id must be positive, got %d", chat)
	}
	if dialog < 0 {
		return false, fmt.Errorf("mg: has sent: dialog id must not be negative, got %d", dialog)
	}
	self, err := c.selfBotID(ctx)
	if err != nil {
		return false, err
	}
	f := MessagesFilter{ChatID: int64(chat), DialogID: int64(dialog), BotID: int64(self), Scope: ScopePublic, Type: MessageText}
	for m, err := range c.AllMessages(ctx, f) {
		if err != nil {
			return false, err
		}
		// The filters are the server's; check what matters here again.
		if m.From == nil || m.From.Type != TypeBot || m.From.ID != int64(self) {
			continue
		}
		if dialog != 0 && m.DialogID() != dialog || m.ChatID != 0 && m.ChatID != chat {
			continue
		}
		if m.Content == text && (m.Scope == "" || m.Scope == ScopePublic) {
			return true, nil
		}
	}
	return false, nil
}

// selfBotID returns the bot's own id, asking MG the first time only.
func (c *Client) selfBotID(ctx context.Context) (bd.BotID, error) {
	c.selfMu.Lock()
	id := c.selfID
	c.selfMu.Unlock()
	if id != 0 {
		return id, nil
	}
	b, err := c.SelfBot(ctx)
	if err != nil {
		return 0, err
	}
	if b.ID <= 0 {
		return 0, fmt.Errorf("mg: GET /bots?self=1 returned bot id %d", b.ID)
	}
	c.selfMu.Lock()
	c.selfID = b.ID
	c.selfMu.Unlock()
	return b.ID, nil
}

// DialogStatus is what MG says about a dialog: whether it exists, is open,
// and is the latest dialog of its chat. Only an open dialog that is the
// latest of its chat can be assigned.
type DialogStatus struct {
	ID bd.DialogID
	// Found is false when MG knows no dialog with this id; the other
	// fields are zero then.
	Found bool
	// Chat is the dialog's chat.
	Chat bd.ChatID
	// Active is false once the dialog is closed.
	Active bool
	// LatestID is the latest dialog of the chat; it equals ID when the
	// dialog is the latest.
	LatestID bd.DialogID
	// Responsible is who holds the dialog in MG; zero for nobody.
	Responsible bd.Responsible
}

// Latest reports whether the dialog is the latest of its chat.
func (s DialogStatus) Latest() bool { return s.Found && s.LatestID == s.ID }

// Open reports whether the dialog exists, is active and is the latest of
// its chat, i.e. whether it can still be assigned.
func (s DialogStatus) Open() bool { return s.Found && s.Active && s.Latest() }

// String says in words what the status is, e.g. "dialog 5 is closed".
func (s DialogStatus) String() string {
	switch {
	case !s.Found:
		return fmt.Sprintf("dialog %d not found", s.ID)
	case !s.Active:
		return fmt.Sprintf("dialog %d is closed", s.ID)
	case !s.Latest():
		return fmt.Sprintf("dialog %d is not the latest of chat %d (dialog %d is)", s.ID, s.Chat, s.LatestID)
	}
	return fmt.Sprintf("dialog %d is open", s.ID)
}

// DialogStatus reads the dialog's state from MG: GET /dialogs?id= for the
// dialog, then GET /chats?id= for the chat's last_dialog; when the chat
// does not name one, GET /dialogs?chat_id=&since_id= looks for a newer
// dialog of the chat. A dialog MG does not list is reported with Found
// false, not as an error; an error means MG could not be asked.
//
// It decides from state, not from the wording of an error answer, which
// the Bot API does not fix: use it to learn why MG refused an assignment.
func (c *Client) DialogStatus(ctx context.Context, dialog bd.DialogID) (DialogStatus, error) {
	st := DialogStatus{ID: dialog}
	if dialog <= 0 {
		return st, fmt.Errorf("mg: dialog status: dialog id must be positive, got %d", dialog)
	}
	d, err := c.dialogByID(ctx, dialog)
	if err != nil || d == nil {
		return st, err
	}
	st.Found, st.Chat, st.Active, st.LatestID = true, d.ChatID, d.IsActive, dialog
	st.Responsible = d.Responsible.Who()
	if st.Chat == 0 {
		return st, nil // nothing to compare with; MG always sends chat_id
	}
	chats, err := c.Chats(ctx, ChatsFilter{ID: int64(st.Chat), IncludeMassCommunication: true})
	if err != nil {
		return st, err
	}
	for _, ch := range chats {
		if ch.ID == st.Chat && ch.LastDialog != nil && ch.LastDialog.ID != 0 {
			st.LatestID = max(ch.LastDialog.ID, dialog)
			return st, nil
		}
	}
	// The chat names no last dialog: look for a newer dialog of the chat.
	// (since_id may be inclusive, hence the check of the ids.)
	newer, err := c.Dialogs(ctx, DialogsFilter{ChatID: int64(st.Chat), IncludeMassCommunication: true, Page: Page{SinceID: int64(dialog), Limit: MaxLimit}})
	if err != nil {
		return st, err
	}
	for _, n := range newer {
		if n.ChatID == st.Chat || n.ChatID == 0 {
			st.LatestID = max(st.LatestID, n.ID)
		}
	}
	return st, nil
}

// DialogOpen reports whether the dialog can still be assigned: it exists,
// is open and is the latest dialog of its chat (see [Client.DialogStatus]).
// It has the signature of the distributor's DialogChecker port; account is
// ignored as in [Client.Assign].
func (c *Client) DialogOpen(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bool, error) {
	st, err := c.DialogStatus(ctx, dialog)
	if err != nil {
		return false, err
	}
	return st.Open(), nil
}

// DialogResponsible reads who holds the dialog in MG (GET /dialogs?id=,
// one request): zero for nobody, and for a dialog MG does not list. Use it
// to learn whether an assignment that failed with [ErrAmbiguous] was
// applied. It has the signature of mgsource's ResponsibleReader; account
// is ignored as in [Client.Assign].
func (c *Client) DialogResponsible(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bd.Responsible, error) {
	if dialog <= 0 {
		return bd.Responsible{}, fmt.Errorf("mg: dialog responsible: dialog id must be positive, got %d", dialog)
	}
	d, err := c.dialogByID(ctx, dialog)
	if err != nil || d == nil {
		return bd.Responsible{}, err
	}
	return d.Responsible.Who(), nil
}

// dialogByID reads one dialog (GET /dialogs?id=); nil when MG lists none.
func (c *Client) dialogByID(ctx context.Context, dialog bd.DialogID) (*Dialog, error) {
	ds, err := c.Dialogs(ctx, DialogsFilter{ID: int64(dialog), IncludeMassCommunication: true})
	if err != nil {
		return nil, err
	}
	for i := range ds {
		if ds[i].ID == dialog {
			return &ds[i], nil
		}
	}
	return nil, nil
}
