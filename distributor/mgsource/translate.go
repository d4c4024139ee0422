package mgsource

import (
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/mg"
)

// maxChats bounds the translator's chat cache; it starts afresh beyond it.
const maxChats = 100000

// chatInfo is what a chat tells about its dialogs; it never changes.
type chatInfo struct {
	channel  bd.ChannelID
	customer bd.Customer
}

// Translator turns MG websocket events into distributor events for one
// account. It remembers the users it has seen (to complete the partial
// user events MG sends) and what each chat's channel and customer are (to
// complete events that do not embed their chat).
//
// A Translator is safe for concurrent use. The zero value is not usable;
// make one with NewTranslator.
type Translator struct {
	account bd.AccountID
	status  func(bd.ManagerID) (bd.ManagerStatus, bool)

	mu        sync.Mutex
	self      bd.BotID
	users     map[bd.ManagerID]bd.Manager
	technical map[bd.ManagerID]bool
	chats     map[bd.ChatID]chatInfo
}

// NewTranslator returns a translator for the account. status, when not
// nil, gives a manager's retailCRM status; without it, or when it reports
// none, a manager's status is free: MG knows no CRM status, and joining the
// CRM roster is done elsewhere.
func NewTranslator(account bd.AccountID, status func(bd.ManagerID) (bd.ManagerStatus, bool)) *Translator {
	return &Translator{
		account:   account,
		status:    status,
		users:     make(map[bd.ManagerID]bd.Manager),
		technical: make(map[bd.ManagerID]bool),
		chats:     make(map[bd.ChatID]chatInfo),
	}
}

// SetSelf tells the translator the own bot's id: its messages (automatic
// replies) are not answers to the customer and are dropped.
func (t *Translator) SetSelf(id bd.BotID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.self = id
}

// SetUsers replaces the known users with users, the MG user list, and
// returns the roster made of them: technical accounts are left out;
// deactivated users stay in with Active false, so the distributor knows
// they are not eligible.
func (t *Translator) SetUsers(users []mg.User) []bd.Manager {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.users)
	clear(t.technical)
	roster := make([]bd.Manager, 0, len(users))
	for _, u := range users {
		if u.ID <= 0 {
			continue
		}
		if u.IsTechnicalAccount {
			t.technical[u.ID] = true
			continue
		}
		m := bd.Manager{ID: u.ID, FirstName: u.FirstName, LastName: u.LastName, Online: u.IsOnline, Active: u.IsActive}
		m.Status = t.statusOf(u.ID)
		t.users[u.ID] = m
		roster = append(roster, m)
	}
	return roster
}

func (t *Translator) statusOf(id bd.ManagerID) bd.ManagerStatus {
	if t.status != nil {
		if s, ok := t.status(id); ok && s.Valid() {
			return s
		}
	}
	return bd.StatusFree
}

// Translate returns the distributor event for an MG event, and false for
// events the distributor does not act on. The mapping:
//
//	dialog_opened                   DialogOpened
//	message_new from a customer     CustomerMessage
//	message_new from a user, a bot
//	  or the channel (public)       ManagerMessage
//	dialog_closed                   DialogClosed
//	dialog_assign                   DialogAssigned
//	user_online_updated,
//	user_updated                    ManagerChanged
//
// Dropped: system messages, private notes, messages of the own bot (see
// SetSelf), events of technical accounts, and every other event type.
//
// A dialog's channel and customer come from the chat the event embeds, or
// from one seen before for the same chat; when neither is known they are
// zero and the caller should look the chat up (see [Source]). Likewise a
// message without its dialog id translates with Dialog.ID 0.
//
// A ManagerChanged event carries the whole manager, as the distributor's
// roster takes it: the fields the MG event holds (presence for
// user_online_updated; names and activity for user_updated) over the user
// as last known. A user never seen before is taken as active; a manager's
// status is free unless the status function knows better.
func (t *Translator) Translate(ev mg.Event) (distributor.Event, bool) {
	at := ev.Meta.Timestamp
	switch data := ev.Data.(type) {
	case *mg.DialogData:
		return t.dialogEvent(ev.Type, data, at)
	case *mg.MessageData:
		if ev.Type != mg.EventMessageNew {
			return distributor.Event{}, false
		}
		return t.messageEvent(&data.Message, at)
	case *mg.UserOnlineData:
		return t.userEvent(data.User, at, func(m *bd.Manager) {
			m.Online = data.Online
		}, true)
	case *mg.UserUpdatedData:
		return t.userEvent(data.UserRef, at, func(m *bd.Manager) {
			m.Active = data.IsActive
		}, false)
	}
	return distributor.Event{}, false
}

func (t *Translator) dialogEvent(typ string, data *mg.DialogData, at time.Time) (distributor.Event, bool) {
	d := &data.Dialog
	if d.ID <= 0 {
		return distributor.Event{}, false
	}
	chat := d.Chat
	if chat == nil {
		chat = data.Chat
	}
	dl := t.dialog(d.ID, d.ChatID, chat, nil)
	ev := distributor.Event{Account: t.account, Dialog: dl, At: at}
	switch typ {
	case mg.EventDialogOpened:
		ev.Kind = distributor.DialogOpened
		ev.Dialog.OpenedAt = d.CreatedAt.Time
		if ev.At.IsZero() {
			ev.At = d.CreatedAt.Time
		}
	case mg.EventDialogClosed:
		ev.Kind = distributor.DialogClosed
		if !d.ClosedAt.IsZero() {
			ev.At = d.ClosedAt.Time
		}
	case mg.EventDialogAssign:
		ev.Kind = distributor.DialogAssigned
		ev.Responsible = d.Responsible.Who()
		ev.Dialog.OpenedAt = d.CreatedAt.Time
	default:
		return distributor.Event{}, false
	}
	return ev, true
}

func (t *Translator) messageEvent(m *mg.Message, at time.Time) (distributor.Event, bool) {
	if m.From == nil || m.Type == mg.MessageSystem || m.ChatID <= 0 {
		return distributor.Event{}, false
	}
	if !m.Time.IsZero() {
		at = m.Time.Time
	}
	ev := distributor.Event{Account: t.account, MessageID: m.ID, At: at}
	switch m.From.Type {
	case mg.TypeCustomer:
		ev.Kind = distributor.CustomerMessage
		ev.Dialog = t.dialog(m.DialogID(), m.ChatID, m.Chat, m.From)
	case mg.TypeUser, mg.TypeBot, mg.TypeChannel:
		if m.Scope == mg.ScopePrivate {
			return distributor.Event{}, false
		}
		if m.From.Type == mg.TypeBot {
			t.mu.Lock()
			own := t.self != 0 && bd.BotID(m.From.ID) == t.self
			t.mu.Unlock()
			if own {
				return distributor.Event{}, false
			}
		}
		ev.Kind = distributor.ManagerMessage
		ev.Dialog = t.dialog(m.DialogID(), m.ChatID, m.Chat, nil)
	default:
		return distributor.Event{}, false
	}
	return ev, true
}

// dialog assembles a bd.Dialog from what the event holds and what the cache
// knows about the chat, and remembers what the event taught.
func (t *Translator) dialog(id bd.DialogID, chatID bd.ChatID, chat *mg.Chat, from *mg.UserRef) bd.Dialog {
	if chatID == 0 && chat != nil {
		chatID = chat.ID
	}
	dl := bd.Dialog{Account: t.account, ID: id, Chat: chatID}
	var learned chatInfo
	if chat != nil {
		if chat.Channel != nil {
			learned.channel = chat.Channel.ID
		}
		if chat.Customer != nil && chat.Customer.ID > 0 {
			learned.customer = chat.Customer.Customer()
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// The chat's customer is the fullest; then what the cache knows; the
	// sender's reference (often just a display name) last.
	known := t.chats[chatID]
	if learned.channel == 0 {
		learned.channel = known.channel
	}
	if learned.customer.ID == 0 || learned.customer.ID == known.customer.ID {
		learned.customer = mergeCustomer(learned.customer, known.customer)
	}
	if from != nil && from.ID > 0 {
		if c := from.Customer(); learned.customer.ID == 0 || learned.customer.ID == c.ID {
			learned.customer = mergeCustomer(learned.customer, c)
		}
	}
	if chatID > 0 && (learned.channel != 0 || learned.customer.ID != 0) {
		if len(t.chats) >= maxChats {
			clear(t.chats)
		}
		t.chats[chatID] = learned
	}
	dl.Channel, dl.Customer = learned.channel, learned.customer
	return dl
}

// mergeCustomer fills the empty fields of a from b.
func mergeCustomer(a, b bd.Customer) bd.Customer {
	if a.ID == 0 {
		a.ID = b.ID
	}
	if a.FirstName == "" && a.LastName == "" {
		a.FirstName, a.LastName = b.FirstName, b.LastName
	}
	if a.Phone == "" {
		a.Phone = b.Phone
	}
	if a.Email == "" {
		a.Email = b.Email
	}
	return a
}

// rememberChat records a chat read over REST.
func (t *Translator) rememberChat(c mg.Chat) chatInfo {
	var info chatInfo
	if c.Channel != nil {
		info.channel = c.Channel.ID
	}
	if c.Customer != nil {
		info.customer = c.Customer.Customer()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.chats) >= maxChats {
		clear(t.chats)
	}
	t.chats[c.ID] = info
	return info
}

// chat returns what is known of a chat.
func (t *Translator) chat(id bd.ChatID) (chatInfo, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.chats[id]
	return c, ok && c.channel != 0 && c.customer.ID != 0
}

func (t *Translator) userEvent(u mg.UserRef, at time.Time, apply func(*bd.Manager), assumeActive bool) (distributor.Event, bool) {
	id := bd.ManagerID(u.ID)
	if id <= 0 || (u.Type != "" && u.Type != mg.TypeUser) {
		return distributor.Event{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if u.IsTechnicalAccount {
		t.technical[id] = true
	}
	if t.technical[id] {
		return distributor.Event{}, false
	}
	m, known := t.users[id]
	if !known {
		m = bd.Manager{ID: id, Active: assumeActive}
	}
	if u.FirstName != "" || u.LastName != "" {
		m.FirstName, m.LastName = u.FirstName, u.LastName
	}
	apply(&m)
	m.Status = t.statusOf(id)
	t.users[id] = m
	return distributor.Event{Kind: distributor.ManagerChanged, Account: t.account, Manager: m, At: at}, true
}
