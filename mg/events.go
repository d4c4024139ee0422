package mg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// The websocket event types.
const (
	EventMessageNew        = "message_new"
	EventMessageUpdated    = "message_updated"
	EventMessageDeleted    = "message_deleted"
	EventMessageRestored   = "message_restored"
	EventDialogOpened      = "dialog_opened"
	EventDialogClosed      = "dialog_closed"
	EventDialogAssign      = "dialog_assign"
	EventChatCreated       = "chat_created"
	EventChatUpdated       = "chat_updated"
	EventChatsDeleted      = "chats_deleted"
	EventChatUnreadUpdated = "chat_unread_updated"
	EventUserOnlineUpdated = "user_online_updated"
	EventUserJoinedChat    = "user_joined_chat"
	EventUserLeftChat      = "user_left_chat"
	EventUserUpdated       = "user_updated"
	EventCustomerUpdated   = "customer_updated"
	EventBotUpdated        = "bot_updated"
	EventChannelUpdated    = "channel_updated"
	EventSettingsUpdated   = "settings_updated"
)

// DistributorEvents returns the event types a dialog distributor
// subscribes to, in a new slice.
func DistributorEvents() []string {
	return []string{
		EventMessageNew, EventDialogOpened, EventDialogClosed, EventDialogAssign,
		EventUserOnlineUpdated, EventUserUpdated,
	}
}

// EventMeta is an event's envelope metadata.
type EventMeta struct {
	// Timestamp is when MG emitted the event (sent as Unix seconds).
	Timestamp time.Time
	// AppID is declared by the v1 bot client only; usually 0.
	AppID int64
}

// Event is one decoded websocket event.
//
// Data holds a typed payload chosen by Type:
//
//	message_new, message_updated,
//	message_deleted, message_restored       *MessageData
//	dialog_opened, dialog_closed,
//	dialog_assign                           *DialogData
//	chat_created, chat_updated              *ChatData
//	chats_deleted                           *ChatsDeletedData
//	user_online_updated                     *UserOnlineData
//	user_joined_chat                        *UserJoinedChatData
//	user_left_chat                          *UserLeftChatData
//	user_updated                            *UserUpdatedData
//	customer_updated, bot_updated           *UserRef
//	channel_updated                         *ChannelData
//	chat_unread_updated, settings_updated   nil (MG defines no payload; see Raw)
//
// and nil for an unknown type.
type Event struct {
	Type string
	Meta EventMeta
	Data any
	// Raw is the data object as received.
	Raw json.RawMessage
}

// MessageData is the payload of the message_* events.
type MessageData struct {
	Message Message `json:"message"`
}

// DialogData is the payload of dialog_opened, dialog_closed and
// dialog_assign; Chat is sent with dialog_assign (the dialog may embed its
// chat too).
type DialogData struct {
	Dialog Dialog `json:"dialog"`
	Chat   *Chat  `json:"chat,omitempty"`
}

// ChatData is the payload of chat_created and chat_updated.
type ChatData struct {
	Chat Chat `json:"chat"`
}

// ChatsDeletedData is the payload of chats_deleted.
type ChatsDeletedData struct {
	ChatIDs []int64 `json:"chat_ids"`
}

// UserOnlineData is the payload of user_online_updated.
type UserOnlineData struct {
	User      UserRef `json:"user"`
	Online    bool    `json:"online"`
	Connected bool    `json:"connected"`
}

// UserJoinedChatData is the payload of user_joined_chat.
type UserJoinedChatData struct {
	Chat Chat    `json:"chat"`
	User UserRef `json:"user"`
}

// UserLeftChatData is the payload of user_left_chat.
type UserLeftChatData struct {
	Reason string  `json:"reason"`
	Chat   Chat    `json:"chat"`
	User   UserRef `json:"user"`
}

// UserUpdatedData is the payload of user_updated: the user's fields sent
// flat, plus is_active.
type UserUpdatedData struct {
	UserRef
	IsActive bool `json:"is_active"`
}

// ChannelData is the payload of channel_updated.
type ChannelData struct {
	Channel Channel `json:"channel"`
}

var payloads = map[string]func() any{
	EventMessageNew:        func() any { return new(MessageData) },
	EventMessageUpdated:    func() any { return new(MessageData) },
	EventMessageDeleted:    func() any { return new(MessageData) },
	EventMessageRestored:   func() any { return new(MessageData) },
	EventDialogOpened:      func() any { return new(DialogData) },
	EventDialogClosed:      func() any { return new(DialogData) },
	EventDialogAssign:      func() any { return new(DialogData) },
	EventChatCreated:       func() any { return new(ChatData) },
	EventChatUpdated:       func() any { return new(ChatData) },
	EventChatsDeleted:      func() any { return new(ChatsDeletedData) },
	EventUserOnlineUpdated: func() any { return new(UserOnlineData) },
	EventUserJoinedChat:    func() any { return new(UserJoinedChatData) },
	EventUserLeftChat:      func() any { return new(UserLeftChatData) },
	EventUserUpdated:       func() any { return new(UserUpdatedData) },
	EventCustomerUpdated:   func() any { return new(UserRef) },
	EventBotUpdated:        func() any { return new(UserRef) },
	EventChannelUpdated:    func() any { return new(ChannelData) },
	EventChatUnreadUpdated: nil,
	EventSettingsUpdated:   nil,
}

// KnownEvent reports whether DecodeEvent knows the event type.
func KnownEvent(typ string) bool {
	_, ok := payloads[typ]
	return ok
}

// DecodeEvent decodes one websocket frame: the envelope
// {"type", "meta": {"timestamp"}, "data"} and the typed payload of Data
// (see [Event]).
//
// A frame that is not a JSON object, has no type, or whose data does not
// fit the type's payload returns an error wrapping ErrMalformedEvent. An
// unknown type returns the envelope with Raw set and Data nil, and an error
// wrapping ErrUnknownEvent, so the caller can log it and go on. DecodeEvent
// never panics.
func DecodeEvent(frame []byte) (Event, error) {
	var env struct {
		Type string          `json:"type"`
		Meta json.RawMessage `json:"meta"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(frame, &env); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	if env.Type == "" {
		return Event{}, fmt.Errorf("%w: no type", ErrMalformedEvent)
	}
	ev := Event{Type: env.Type, Raw: env.Data}
	if isPresent(env.Meta) {
		var meta struct {
			Timestamp json.RawMessage `json:"timestamp"`
			AppID     int64           `json:"app_id"`
		}
		if err := json.Unmarshal(env.Meta, &meta); err != nil {
			return ev, fmt.Errorf("%w: %s: meta: %v", ErrMalformedEvent, env.Type, err)
		}
		ev.Meta.AppID = meta.AppID
		var ts Time
		_ = ts.UnmarshalJSON(meta.Timestamp) // lenient: never fails
		ev.Meta.Timestamp = ts.Time
	}
	mk, known := payloads[env.Type]
	if !known {
		return ev, fmt.Errorf("%w %q", ErrUnknownEvent, env.Type)
	}
	if mk == nil {
		return ev, nil
	}
	if d := bytes.TrimSpace(env.Data); len(d) == 0 || d[0] != '{' {
		return ev, fmt.Errorf("%w: %s: data must be an object", ErrMalformedEvent, env.Type)
	}
	data := mk()
	if err := json.Unmarshal(env.Data, data); err != nil {
		return ev, fmt.Errorf("%w: %s: %v", ErrMalformedEvent, env.Type, err)
	}
	ev.Data = data
	return ev, nil
}

func isPresent(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && string(raw) != "null"
}
