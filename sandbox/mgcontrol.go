package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	transport "github.com/retailcrm/mg-transport-api-client-go/v1"

	bd "github.com/botdistributor/botdistributor"
)

// MGUser is an MG user (a manager) as a test adds and inspects it.
type MGUser struct {
	// ID is assigned by AddManager.
	ID bd.ManagerID
	// ExternalID is the user's external id (on a real account, presumably
	// the retailCRM user id).
	ExternalID string
	FirstName  string
	LastName   string
	Username   string
	// Online is MG's is_online.
	Online bool
	// Inactive marks a deactivated user; the zero value is active.
	Inactive bool
	// Technical marks a technical account (is_technical_account).
	Technical bool
}

// AddManager adds an MG user and returns its id. No event is emitted: a
// user appearing is seen through GET /users.
func (m *MG) AddManager(u MGUser) bd.ManagerID {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	rec := &mgUser{
		id: m.st.newID("user"), externalID: u.ExternalID, username: u.Username,
		first: u.FirstName, last: u.LastName, active: !u.Inactive, online: u.Online,
		connected: u.Online, technical: u.Technical, created: now, updated: now,
	}
	if rec.externalID == "" {
		rec.externalID = fmt.Sprint(rec.id)
	}
	m.st.users[rec.id] = rec
	m.touch()
	return bd.ManagerID(rec.id)
}

func (m *MG) userLocked(id bd.ManagerID) (*mgUser, error) {
	u := m.st.users[int64(id)]
	if u == nil {
		return nil, fmt.Errorf("sandbox: mg: user #%d not found", id)
	}
	return u, nil
}

// SetOnline sets a user's presence and emits user_online_updated
// ({user, online, connected}). MG's "available" follows presence and
// activity in the sandbox (available = online and active); how the real
// MG derives it is undocumented.
func (m *MG) SetOnline(id bd.ManagerID, online bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.userLocked(id)
	if err != nil {
		return err
	}
	u.online = online
	u.connected = u.connected || online
	u.updated = m.now()
	m.emit("user_online_updated", mgObj{"user": m.refUser(u), "online": online, "connected": online})
	m.touch()
	return nil
}

// SetActive activates or deactivates a user and emits user_updated (the
// user's fields flat, plus is_active).
func (m *MG) SetActive(id bd.ManagerID, active bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.userLocked(id)
	if err != nil {
		return err
	}
	u.active = active
	u.updated = m.now()
	data := m.refUser(u)
	data["is_active"] = active
	m.emit("user_updated", data)
	m.touch()
	return nil
}

// Users returns the MG users ordered by id.
func (m *MG) Users() []MGUser {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []MGUser
	for _, u := range mgSorted(m.st.users) {
		out = append(out, MGUser{
			ID: bd.ManagerID(u.id), ExternalID: u.externalID, FirstName: u.first, LastName: u.last,
			Username: u.username, Online: u.online, Inactive: !u.active, Technical: u.technical,
		})
	}
	return out
}

// AddBot adds a bot with the roles ("distributor", "responsible",
// "hidden") and returns its id and token. A bot rule of the distributor
// needs a bot with the "responsible" role.
func (m *MG) AddBot(name string, roles ...string) (bd.BotID, bd.Secret, error) {
	token := m.newToken("bot")
	id, err := m.addBot(name, token, roles)
	if err != nil {
		return 0, "", err
	}
	return id, token, nil
}

// AddChannel activates a channel of the given type ("telegram",
// "whatsapp", ...) and name on the default transport, through the real
// mg-transport-api-client-go client, and returns its id. The transport
// client takes no context: ctx is checked before the call only.
func (m *MG) AddChannel(ctx context.Context, typ, name string) (bd.ChannelID, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r, _, err := m.transport.ActivateTransportChannel(transport.Channel{
		Type: typ, Name: name,
		Settings: transport.ChannelSettings{
			Text: transport.ChannelSettingsText{Creating: transport.ChannelFeatureBoth, MaxCharsCount: 4096},
		},
	})
	if err != nil {
		return 0, fmt.Errorf("sandbox: mg: activate channel: %w", err)
	}
	return bd.ChannelID(r.ChannelID), nil
}

// MGCustomerMessage is a message a customer writes in a channel.
type MGCustomerMessage struct {
	Channel bd.ChannelID
	// CustomerExternalID identifies the customer in the messenger; required.
	CustomerExternalID string
	// ExternalChatID identifies the chat in the messenger; empty means the
	// customer's own chat (CustomerExternalID).
	ExternalChatID string
	FirstName      string
	LastName       string
	Phone          string
	Email          string
	Text           string
	// MessageExternalID is the messenger's message id; empty means a
	// fresh one.
	MessageExternalID string
}

// MGWritten tells where a customer's message landed.
type MGWritten struct {
	MessageID int64
	Customer  bd.CustomerID
	Chat      bd.ChatID
	Dialog    bd.DialogID
	// Opened is true when the message opened a new dialog.
	Opened bool
}

// CustomerWrites sends a customer's message into MG through the real
// mg-transport-api-client-go client (POST /api/transport/v1/messages,
// originator customer), as a messenger integration would. The chat and
// customer are created on first contact; a dialog opens when the chat has
// none open; chat_created, dialog_opened and message_new go out on the
// websocket. The transport client takes no context: ctx is checked before
// the call, which the client bounds with its 30s timeout.
func (m *MG) CustomerWrites(ctx context.Context, cm MGCustomerMessage) (MGWritten, error) {
	if cm.CustomerExternalID == "" {
		return MGWritten{}, errors.New("sandbox: mg: customer message needs CustomerExternalID")
	}
	if strings.TrimSpace(cm.Text) == "" {
		return MGWritten{}, errors.New("sandbox: mg: customer message needs Text")
	}
	if cm.MessageExternalID == "" {
		cm.MessageExternalID = string(m.newToken("msg"))
	}
	if err := ctx.Err(); err != nil {
		return MGWritten{}, err
	}
	r, _, err := m.transport.Messages(transport.SendData{
		Message:    transport.Message{ExternalID: cm.MessageExternalID, Type: transport.MsgTypeText, Text: cm.Text},
		Originator: transport.OriginatorCustomer,
		Customer: transport.Customer{
			ExternalID: cm.CustomerExternalID, Nickname: cm.CustomerExternalID,
			Firstname: cm.FirstName, Lastname: cm.LastName, Phone: cm.Phone, Email: cm.Email,
		},
		Channel:        uint64(cm.Channel),
		ExternalChatID: cm.ExternalChatID,
	})
	if err != nil {
		return MGWritten{}, fmt.Errorf("sandbox: mg: customer message: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	msg := m.st.messages[int64(r.MessageID)]
	if msg == nil {
		return MGWritten{}, fmt.Errorf("sandbox: mg: message #%d not found after sending", r.MessageID)
	}
	d := m.st.dialogs[msg.dialog]
	return MGWritten{
		MessageID: msg.id, Customer: bd.CustomerID(msg.from.id), Chat: bd.ChatID(msg.chat),
		Dialog: bd.DialogID(msg.dialog), Opened: d != nil && d.begin == msg.id,
	}, nil
}

// ManagerWrites posts a message from a user (a manager writing in the MG
// interface) into the chat, scope public: message_new goes out and the
// customer's transport gets a message_sent webhook.
func (m *MG) ManagerWrites(id bd.ManagerID, chat bd.ChatID, text string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.userLocked(id); err != nil {
		return 0, err
	}
	msg, e := m.sendLocked(mgParty{"user", int64(id)}, int64(chat), "public", "text", text)
	if e != nil {
		return 0, fmt.Errorf("sandbox: mg: %s", e.msg)
	}
	return msg.id, nil
}

// AssignAsPerson makes to responsible for the dialog as a person would in
// the MG interface: the same rules as the Bot API's assign apply, and
// dialog_assign goes out when the responsible changes.
func (m *MG) AssignAsPerson(dialog bd.DialogID, to bd.Responsible) error {
	var r mgResp
	switch to.Kind {
	case bd.ManagerResponsible:
		r = mgResp{id: to.ID, typ: "user"}
	case bd.BotResponsible:
		r = mgResp{id: to.ID, typ: "bot"}
	default:
		return errors.New("sandbox: mg: AssignAsPerson needs a manager or a bot")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, e := m.assignLocked(int64(dialog), r); e != nil {
		return fmt.Errorf("sandbox: mg: %s", e.msg)
	}
	return nil
}

// CloseDialog closes the dialog as a person would in the MG interface;
// dialog_closed goes out.
func (m *MG) CloseDialog(dialog bd.DialogID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.closeLocked(int64(dialog)); e != nil {
		return fmt.Errorf("sandbox: mg: %s", e.msg)
	}
	return nil
}

// MGDialog is a dialog as a test inspects it.
type MGDialog struct {
	ID          bd.DialogID
	Chat        bd.ChatID
	Channel     bd.ChannelID
	Customer    bd.CustomerID
	Responsible bd.Responsible
	Active      bool
	OpenedAt    time.Time
	ClosedAt    time.Time
}

func (m *MG) viewDialog(d *mgDialog) MGDialog {
	v := MGDialog{ID: bd.DialogID(d.id), Chat: bd.ChatID(d.chat), Active: d.active, OpenedAt: d.created, ClosedAt: d.closed}
	if c := m.st.chats[d.chat]; c != nil {
		v.Channel, v.Customer = bd.ChannelID(c.channel), bd.CustomerID(c.customer)
	}
	if d.resp != nil {
		if d.resp.typ == "user" {
			v.Responsible = bd.ManagerOf(bd.ManagerID(d.resp.id))
		} else {
			v.Responsible = bd.BotOf(bd.BotID(d.resp.id))
		}
	}
	return v
}

// Dialog returns the dialog, and false if there is none with that id.
func (m *MG) Dialog(id bd.DialogID) (MGDialog, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.st.dialogs[int64(id)]
	if d == nil {
		return MGDialog{}, false
	}
	return m.viewDialog(d), true
}

// Dialogs returns every dialog ordered by id.
func (m *MG) Dialogs() []MGDialog {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []MGDialog
	for _, d := range mgSorted(m.st.dialogs) {
		out = append(out, m.viewDialog(d))
	}
	return out
}

// Responsible returns who is responsible for the dialog (zero for nobody),
// and false if there is no such dialog.
func (m *MG) Responsible(dialog bd.DialogID) (bd.Responsible, bool) {
	d, ok := m.Dialog(dialog)
	return d.Responsible, ok
}

// MGMessage is a message as a test inspects it.
type MGMessage struct {
	ID     int64
	Chat   bd.ChatID
	Dialog bd.DialogID
	// FromType is "customer", "user" or "bot"; FromID the sender's id.
	FromType string
	FromID   int64
	Scope    string
	Type     string
	Text     string
	// Status is received, sending, sent or failed.
	Status string
	Time   time.Time
}

// Messages returns the chat's messages, oldest first; chat 0 means every
// chat. With chat 0 it is a snapshot of the whole message log, the bots'
// messages included.
func (m *MG) Messages(chat bd.ChatID) []MGMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []MGMessage
	if chat != 0 {
		for _, id := range m.st.chatMessages[int64(chat)] {
			out = append(out, viewMessage(m.st.messages[id]))
		}
		return out
	}
	for _, msg := range mgSorted(m.st.messages) {
		out = append(out, viewMessage(msg))
	}
	return out
}

// BotMessages returns the messages bots posted into the dialog (through
// POST /messages, whatever their scope), oldest first. A load test counts
// a dialog's replies with it: expected, delivered, duplicated. A message
// posted while its chat had no open dialog belongs to no dialog and is
// not returned.
func (m *MG) BotMessages(dialog bd.DialogID) []MGMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.st.dialogs[int64(dialog)]
	if d == nil {
		return nil
	}
	var out []MGMessage
	for _, id := range m.st.chatMessages[d.chat] {
		if msg := m.st.messages[id]; msg.dialog == d.id && msg.from.typ == "bot" {
			out = append(out, viewMessage(msg))
		}
	}
	return out
}

func viewMessage(msg *mgMessage) MGMessage {
	return MGMessage{
		ID: msg.id, Chat: bd.ChatID(msg.chat), Dialog: bd.DialogID(msg.dialog),
		FromType: msg.from.typ, FromID: msg.from.id, Scope: msg.scope, Type: msg.typ,
		Text: msg.content, Status: msg.status, Time: msg.at,
	}
}
