package mg

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// Time is a MessageGateway timestamp.
//
// MG writes object timestamps as RFC 3339 with microseconds
// ("2018-01-01T00:00:00.000000Z") and message times as plain RFC 3339,
// possibly with an offset ("2018-01-01T03:00:00+03:00"). Time decodes both,
// any other fractional precision, a space instead of the "T", a missing
// zone (read as UTC), a number of Unix seconds, and "" or null as the zero
// time. A string in no known layout also decodes as the zero time instead
// of failing: a timestamp is never a reason to reject a dialog or an event.
type Time struct{ time.Time }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// UnmarshalJSON implements json.Unmarshaler leniently (see [Time]).
func (t *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	t.Time = time.Time{}
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] != '"' {
		if sec, err := strconv.ParseFloat(string(b), 64); err == nil && sec > 0 && sec < 1e11 {
			whole := int64(sec)
			t.Time = time.Unix(whole, int64((sec-float64(whole))*1e9)).UTC()
		}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return nil
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, layout := range timeLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v
			return nil
		}
	}
	return nil
}

// MarshalJSON implements json.Marshaler: null for the zero time, otherwise
// RFC 3339 with microseconds, the layout MG uses for objects.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.Format("2006-01-02T15:04:05.000000Z07:00") + `"`), nil
}

// Flag is a tri-state boolean query filter. The zero value, Any, sends
// nothing; Yes and No send 1 and 0.
type Flag uint8

// The values of a Flag.
const (
	// Any: the filter is not sent.
	Any Flag = iota
	// Yes sends 1.
	Yes
	// No sends 0.
	No
)

// FlagOf returns Yes for true and No for false.
func FlagOf(v bool) Flag {
	if v {
		return Yes
	}
	return No
}

func (f Flag) query() (string, bool) {
	switch f {
	case Yes:
		return "1", true
	case No:
		return "0", true
	}
	return "", false
}

// The kinds of participant in UserRef.Type and Responsible.Type.
const (
	TypeUser     = "user"
	TypeBot      = "bot"
	TypeCustomer = "customer"
	TypeChannel  = "channel"
)

// The bot roles.
const (
	// RoleDistributor marks the bot that distributes dialogs.
	RoleDistributor = "distributor"
	// RoleResponsible lets the bot be made responsible for dialogs.
	RoleResponsible = "responsible"
	// RoleHidden hides the bot.
	RoleHidden = "hidden"
)

// The message scopes.
const (
	// ScopePublic messages are delivered to the customer through the channel.
	ScopePublic = "public"
	// ScopePrivate messages are internal notes, seen only by users and bots.
	ScopePrivate = "private"
)

// The message types a bot reads or sends.
const (
	MessageText    = "text"
	MessageSystem  = "system"
	MessageCommand = "command"
	MessageOrder   = "order"
	MessageProduct = "product"
	MessageFile    = "file"
	MessageImage   = "image"
	MessageAudio   = "audio"
)

// Bot is an MG bot (GET /bots).
type Bot struct {
	ID            bd.BotID `json:"id"`
	Name          string   `json:"name"`
	ClientID      string   `json:"client_id"`
	AvatarURL     string   `json:"avatar_url"`
	CreatedAt     Time     `json:"created_at"`
	UpdatedAt     Time     `json:"updated_at"`
	DeactivatedAt Time     `json:"deactivated_at"`
	IsActive      bool     `json:"is_active"`
	// IsSelf is true for the bot whose token made the request.
	IsSelf   bool     `json:"is_self"`
	IsSystem bool     `json:"is_system"`
	Roles    []string `json:"roles"`
}

// HasRole reports whether the bot has the role (e.g. RoleResponsible).
func (b Bot) HasRole(role string) bool {
	for _, r := range b.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Channel is an MG channel (GET /channels, and embedded in chats).
type Channel struct {
	ID   bd.ChannelID `json:"id"`
	Type string       `json:"type"`
	Name string       `json:"name"`
	// Settings is the channel's capability object, kept as received.
	Settings      json.RawMessage `json:"settings,omitempty"`
	TransportID   int64           `json:"transport_id,omitempty"`
	Avatar        string          `json:"avatar,omitempty"`
	CreatedAt     Time            `json:"created_at"`
	UpdatedAt     Time            `json:"updated_at"`
	ActivatedAt   Time            `json:"activated_at"`
	DeactivatedAt Time            `json:"deactivated_at"`
	IsActive      bool            `json:"is_active"`
}

// User is an MG user, a retailCRM manager as MG sees them (GET /users).
type User struct {
	// ID is the MG user id, the one PATCH /dialogs/{id}/assign takes.
	ID bd.ManagerID `json:"id"`
	// ExternalID is the external identifier; presumably the retailCRM user
	// id (inferred, not documented).
	ExternalID string `json:"external_id"`
	Username   string `json:"username"`
	FirstName  string `json:"first_name"`
	LastName   string `json:"last_name"`
	AvatarURL  string `json:"avatar_url"`
	// IsActive is false for deactivated users.
	IsActive bool `json:"is_active"`
	// IsOnline: the user is connected now.
	IsOnline bool `json:"is_online"`
	// Available: the user is available for communication. How it relates
	// to the retailCRM status is not documented.
	Available bool `json:"available"`
	// Connected: the user has ever connected.
	Connected bool `json:"connected"`
	// IsTechnicalAccount marks system accounts, never distributed to.
	IsTechnicalAccount bool `json:"is_technical_account"`
	CreatedAt          Time `json:"created_at"`
	UpdatedAt          Time `json:"updated_at"`
	RevokedAt          Time `json:"revoked_at"`
}

// UTM holds a customer's or dialog's campaign tags.
type UTM struct {
	Source   string `json:"source,omitempty"`
	Medium   string `json:"medium,omitempty"`
	Campaign string `json:"campaign,omitempty"`
	Term     string `json:"term,omitempty"`
	Content  string `json:"content,omitempty"`
}

// Customer is an MG customer (GET /customers).
type Customer struct {
	ID bd.CustomerID `json:"id"`
	// ExternalID is the customer's id in the messenger.
	ExternalID string       `json:"external_id"`
	ChannelID  bd.ChannelID `json:"channel_id"`
	Username   string       `json:"username"`
	FirstName  string       `json:"first_name"`
	LastName   string       `json:"last_name"`
	AvatarURL  string       `json:"avatar_url"`
	ProfileURL string       `json:"profile_url"`
	Country    string       `json:"country"`
	Language   string       `json:"language"`
	Phone      string       `json:"phone"`
	Email      string       `json:"email"`
	UTM        *UTM         `json:"utm"`
	IsBlocked  bool         `json:"is_blocked"`
	CreatedAt  Time         `json:"created_at"`
	UpdatedAt  Time         `json:"updated_at"`
	RevokedAt  Time         `json:"revoked_at"`
}

// UserRef is a participant as MG embeds it in messages, chats and events:
// a user, bot, customer or channel, told apart by Type.
type UserRef struct {
	ID         int64  `json:"id"`
	ExternalID string `json:"external_id"`
	// Type is TypeUser, TypeBot, TypeCustomer or TypeChannel.
	Type      string `json:"type"`
	Name      string `json:"name"`
	Avatar    string `json:"avatar"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Username  string `json:"username"`
	Phone     string `json:"phone"`
	// Email is set for customers only.
	Email     string `json:"email"`
	Available bool   `json:"available"`
	// IsTechnicalAccount is set for users only.
	IsTechnicalAccount bool `json:"is_technical_account"`
	IsAdmin            bool `json:"is_admin"`
	// IsSystem is set for bots only.
	IsSystem bool `json:"is_system"`
	// IsBlocked is set for customers only.
	IsBlocked bool `json:"is_blocked"`
}

// Customer returns the referenced customer as the distributor models it.
// It is meaningful when Type is TypeCustomer.
func (u UserRef) Customer() bd.Customer {
	first, last := u.FirstName, u.LastName
	if first == "" && last == "" {
		first = u.Name
	}
	return bd.Customer{ID: bd.CustomerID(u.ID), FirstName: first, LastName: last, Phone: u.Phone, Email: u.Email}
}

// Responsible is who a dialog is assigned to. MG sends it in a short form,
// {id, type, assigned_at} (with external_id in newer versions), or, inside
// chat.last_dialog, as a full participant reference; both decode into this
// type, the name fields being set only in the latter.
type Responsible struct {
	ID int64 `json:"id"`
	// Type is TypeUser or TypeBot.
	Type       string `json:"type"`
	AssignedAt Time   `json:"assigned_at"`
	ExternalID string `json:"external_id,omitempty"`
	Name       string `json:"name,omitempty"`
	FirstName  string `json:"first_name,omitempty"`
	LastName   string `json:"last_name,omitempty"`
}

// Who returns the responsible as the distributor models it; a nil
// Responsible, a zero id or an unknown type is nobody.
func (r *Responsible) Who() bd.Responsible {
	if r == nil || r.ID == 0 {
		return bd.Responsible{}
	}
	switch r.Type {
	case TypeUser:
		return bd.ManagerOf(bd.ManagerID(r.ID))
	case TypeBot:
		return bd.BotOf(bd.BotID(r.ID))
	}
	return bd.Responsible{}
}

// Tag is a dialog tag.
type Tag struct {
	Name      string `json:"name"`
	ColorCode string `json:"color_code,omitempty"`
}

// Dialog is an MG dialog. It decodes both the REST shape (GET /dialogs,
// with chat_id) and the event shape (with an embedded chat); ChatID is set
// from the embedded chat when only that is present.
type Dialog struct {
	ID     bd.DialogID `json:"id"`
	ChatID bd.ChatID   `json:"chat_id"`
	// Chat is embedded in websocket events; often nil in REST answers.
	Chat            *Chat `json:"chat,omitempty"`
	BeginMessageID  int64 `json:"begin_message_id"`
	EndingMessageID int64 `json:"ending_message_id"`
	// BotID is the bot assigned to the dialog, if any.
	BotID      bd.BotID `json:"bot_id"`
	IsAssigned bool     `json:"is_assigned"`
	// Responsible is nil when nobody is.
	Responsible *Responsible `json:"responsible"`
	AssignedAt  Time         `json:"assigned_at"`
	// IsActive is false once the dialog is closed.
	IsActive  bool  `json:"is_active"`
	CreatedAt Time  `json:"created_at"`
	UpdatedAt Time  `json:"updated_at"`
	ClosedAt  Time  `json:"closed_at"`
	Tags      []Tag `json:"tags,omitempty"`
	UTM       *UTM  `json:"utm"`
}

// UnmarshalJSON implements json.Unmarshaler, filling ChatID from the
// embedded chat when absent.
func (d *Dialog) UnmarshalJSON(b []byte) error {
	type plain Dialog
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.ChatID == 0 && v.Chat != nil {
		v.ChatID = v.Chat.ID
	}
	*d = Dialog(v)
	return nil
}

// Member is a chat membership as embedded in event chats.
type Member struct {
	IsAuthor bool     `json:"is_author"`
	State    string   `json:"state"`
	User     *UserRef `json:"user"`
}

// Chat is an MG chat (GET /chats, and embedded in events).
type Chat struct {
	ID      bd.ChatID `json:"id"`
	Name    string    `json:"name"`
	Avatar  string    `json:"avatar"`
	Channel *Channel  `json:"channel"`
	// Customer is the customer writing in the chat.
	Customer     *UserRef `json:"customer"`
	AuthorID     int64    `json:"author_id"`
	LastMessage  *Message `json:"last_message"`
	LastActivity Time     `json:"last_activity"`
	// LastDialog is the chat's latest dialog; its responsible may come in
	// the full participant form.
	LastDialog   *Dialog  `json:"last_dialog"`
	WaitingLevel string   `json:"waiting_level,omitempty"`
	Members      []Member `json:"members,omitempty"`
	CreatedAt    Time     `json:"created_at"`
	UpdatedAt    Time     `json:"updated_at"`
}

// DialogRef is the {id} of a message's dialog.
type DialogRef struct {
	ID bd.DialogID `json:"id"`
}

// MessageError is why MG could not deliver a message.
type MessageError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Quote is the message a message replies to.
type Quote struct {
	ID      int64    `json:"id"`
	Content string   `json:"content"`
	From    *UserRef `json:"from"`
	Time    Time     `json:"time"`
}

// Item is an attached file of a file, image or audio message.
type Item struct {
	ID      string `json:"id"`
	Caption string `json:"caption,omitempty"`
	Size    int64  `json:"size,omitempty"`
	Kind    string `json:"kind,omitempty"`
}

// Message is an MG message (GET /messages, and in message events).
type Message struct {
	ID int64 `json:"id"`
	// Time is when the message was sent.
	Time Time `json:"time"`
	// Type is MessageText, MessageSystem, MessageCommand, ...
	Type string `json:"type"`
	// Scope is ScopePublic or ScopePrivate.
	Scope  string    `json:"scope"`
	ChatID bd.ChatID `json:"chat_id"`
	IsRead bool      `json:"is_read"`
	IsEdit bool      `json:"is_edit"`
	// Status is received, sending, sent, failed or seen.
	Status string   `json:"status"`
	From   *UserRef `json:"from"`
	// Chat is embedded in events.
	Chat *Chat `json:"chat,omitempty"`
	// Dialog is the message's dialog (present on all message types since
	// late 2024).
	Dialog  *DialogRef `json:"dialog,omitempty"`
	Content string     `json:"content"`
	Quote   *Quote     `json:"quote,omitempty"`
	Items   []Item     `json:"items,omitempty"`
	Note    string     `json:"note,omitempty"`
	// Product and Order cards are kept as received.
	Product json.RawMessage `json:"product,omitempty"`
	Order   json.RawMessage `json:"order,omitempty"`
	Error   *MessageError   `json:"error,omitempty"`
	// Action is set on system messages: dialog_opened, dialog_closed,
	// user_joined, user_left, dialog_assign, dialog_unassign, ...
	Action string `json:"action,omitempty"`
	// User and Responsible are set on some system messages.
	User          *UserRef     `json:"user,omitempty"`
	Responsible   *Responsible `json:"responsible,omitempty"`
	TemplateCode  string       `json:"template_code,omitempty"`
	ChannelID     bd.ChannelID `json:"channel_id,omitempty"`
	ChannelSentAt Time         `json:"channel_sent_at"`
	CreatedAt     Time         `json:"created_at"`
	UpdatedAt     Time         `json:"updated_at"`
}

// UnmarshalJSON implements json.Unmarshaler, filling ChatID from the
// embedded chat when absent.
func (m *Message) UnmarshalJSON(b []byte) error {
	type plain Message
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.ChatID == 0 && v.Chat != nil {
		v.ChatID = v.Chat.ID
	}
	*m = Message(v)
	return nil
}

// DialogID returns the message's dialog id, or 0 when MG did not send it.
func (m *Message) DialogID() bd.DialogID {
	if m.Dialog == nil {
		return 0
	}
	return m.Dialog.ID
}
