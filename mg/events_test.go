package mg

import (
	"errors"
	"reflect"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// Frames in the shapes of the reference (MG's bot client fixtures and its
// AsyncAPI spec). They seed FuzzDecodeEvent too.
var sampleFrames = map[string]string{
	"message_new": `{"type":"message_new","meta":{"timestamp":1700000000},"data":{"message":{
		"id":501,"time":"2023-11-14T22:13:20+03:00","type":"text","scope":"public","chat_id":77,
		"is_read":false,"is_edit":false,"status":"received",
		"from":{"id":9,"external_id":"tg-9","type":"customer","name":"Bob Smith","first_name":"Bob","last_name":"Smith","phone":"+79001234567","email":"bob@example.com"},
		"chat":{"id":77,"channel":{"id":3,"type":"telegram","name":"Shop bot","transport_id":1},
			"customer":{"id":9,"type":"customer","name":"Bob Smith"},"last_activity":"2023-11-14T19:13:20.000000Z",
			"last_dialog":{"id":1001,"responsible":{"id":12,"type":"user","name":"Ann Lee","first_name":"Ann"}}},
		"dialog":{"id":1001},"content":"Hello"}}}`,
	"message_updated":  `{"type":"message_updated","meta":{"timestamp":1700000001},"data":{"message":{"id":501,"chat_id":77,"type":"text","content":"Hello!","is_edit":true}}}`,
	"message_deleted":  `{"type":"message_deleted","meta":{"timestamp":1700000002},"data":{"message":{"id":501,"chat_id":77}}}`,
	"message_restored": `{"type":"message_restored","meta":{"timestamp":1700000003},"data":{"message":{"id":501,"chat_id":77}}}`,
	"system message": `{"type":"message_new","meta":{"timestamp":1700000004},"data":{"message":{"id":502,"type":"system","scope":"private","chat_id":77,
		"action":"dialog_assign","responsible":{"id":12,"type":"user","assigned_at":"2023-11-14T19:13:20.000000Z"},"dialog":{"id":1001}}}}`,
	"dialog_opened": `{"type":"dialog_opened","meta":{"timestamp":1700000005},"data":{"dialog":{
		"id":1001,"begin_message_id":501,"ending_message_id":null,"responsible":null,"assigned_at":null,
		"created_at":"2023-11-14T19:13:20.000000Z","closed_at":null,"utm":null,
		"chat":{"id":77,"channel":{"id":3,"type":"telegram"},"customer":{"id":9,"type":"customer","name":"Bob"}}}}}`,
	"dialog_closed": `{"type":"dialog_closed","meta":{"timestamp":1700000006},"data":{"dialog":{"id":1001,"begin_message_id":501,"ending_message_id":510,
		"closed_at":"2023-11-14T20:00:00.000000Z","chat":{"id":77}}}}`,
	"dialog_assign": `{"type":"dialog_assign","meta":{"timestamp":1700000007},"data":{
		"dialog":{"id":1001,"responsible":{"id":12,"type":"user","assigned_at":"2023-11-14T19:14:00.000000Z"},"assigned_at":"2023-11-14T19:14:00.000000Z"},
		"chat":{"id":77,"channel":{"id":3,"type":"telegram"}}}}`,
	"chat_created": `{"type":"chat_created","meta":{"timestamp":1700000008},"data":{"chat":{"id":77,"waiting_level":"none",
		"waiting_level_transition_time":"2023-11-14T19:13:20.000000Z","members":[{"is_author":true,"state":"active","user":{"id":9,"type":"customer"}}]}}}`,
	"chat_updated":        `{"type":"chat_updated","meta":{"timestamp":1700000009},"data":{"chat":{"id":77,"name":"Bob"}}}`,
	"chats_deleted":       `{"type":"chats_deleted","meta":{"timestamp":1700000010},"data":{"chat_ids":[77,78]}}`,
	"user_online_updated": `{"type":"user_online_updated","meta":{"timestamp":1700000011},"data":{"user":{"id":12,"type":"user","first_name":"Ann","available":true,"is_technical_account":false},"online":true,"connected":true}}`,
	"user_joined_chat":    `{"type":"user_joined_chat","meta":{"timestamp":1700000012},"data":{"chat":{"id":77},"user":{"id":12,"type":"user"}}}`,
	"user_left_chat":      `{"type":"user_left_chat","meta":{"timestamp":1700000013},"data":{"reason":"kicked","chat":{"id":77},"user":{"id":12}}}`,
	"user_updated":        `{"type":"user_updated","meta":{"timestamp":1700000014},"data":{"id":12,"type":"user","first_name":"Ann","last_name":"Lee","is_technical_account":false,"is_active":false}}`,
	"customer_updated":    `{"type":"customer_updated","meta":{"timestamp":1700000015},"data":{"id":9,"type":"customer","name":"Bob","phone":"+79001234567"}}`,
	"bot_updated":         `{"type":"bot_updated","meta":{"timestamp":1700000016,"app_id":4},"data":{"id":1,"type":"bot","name":"Distributor","is_system":false}}`,
	"channel_updated":     `{"type":"channel_updated","meta":{"timestamp":1700000017},"data":{"channel":{"id":3,"type":"whatsapp","name":"WA","settings":{"text":{"creating":"both"}},"is_active":true}}}`,
	"chat_unread_updated": `{"type":"chat_unread_updated","meta":{"timestamp":1700000018},"data":{"chat_id":77,"count":2}}`,
	"settings_updated":    `{"type":"settings_updated","meta":{"timestamp":1700000019},"data":{}}`,
}

func TestDecodeEventKnownTypes(t *testing.T) {
	wantData := map[string]any{
		"message_new": &MessageData{}, "message_updated": &MessageData{}, "message_deleted": &MessageData{},
		"message_restored": &MessageData{}, "system message": &MessageData{},
		"dialog_opened": &DialogData{}, "dialog_closed": &DialogData{}, "dialog_assign": &DialogData{},
		"chat_created": &ChatData{}, "chat_updated": &ChatData{}, "chats_deleted": &ChatsDeletedData{},
		"user_online_updated": &UserOnlineData{}, "user_joined_chat": &UserJoinedChatData{},
		"user_left_chat": &UserLeftChatData{}, "user_updated": &UserUpdatedData{},
		"customer_updated": &UserRef{}, "bot_updated": &UserRef{}, "channel_updated": &ChannelData{},
		"chat_unread_updated": nil, "settings_updated": nil,
	}
	for name, frame := range sampleFrames {
		ev, err := DecodeEvent([]byte(frame))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if ev.Meta.Timestamp.IsZero() || len(ev.Raw) == 0 {
			t.Errorf("%s: meta %+v raw %q", name, ev.Meta, ev.Raw)
		}
		want := wantData[name]
		if want == nil {
			if ev.Data != nil {
				t.Errorf("%s: Data = %T, want nil", name, ev.Data)
			}
			continue
		}
		if reflect.TypeOf(ev.Data) != reflect.TypeOf(want) {
			t.Errorf("%s: Data = %T, want %T", name, ev.Data, want)
		}
	}
}

func TestDecodeEventPayloadFields(t *testing.T) {
	ev, err := DecodeEvent([]byte(sampleFrames["message_new"]))
	if err != nil {
		t.Fatal(err)
	}
	m := ev.Data.(*MessageData).Message
	if m.ID != 501 || m.ChatID != 77 || m.DialogID() != 1001 || m.Content != "Hello" || m.From.Type != TypeCustomer {
		t.Fatalf("message: %+v", m)
	}
	if !m.Time.Equal(time.Date(2023, 11, 14, 19, 13, 20, 0, time.UTC)) {
		t.Fatalf("message time %v", m.Time)
	}
	if m.Chat.Channel.ID != 3 || m.Chat.LastDialog.Responsible.Who() != bd.ManagerOf(12) {
		t.Fatalf("chat: %+v", m.Chat)
	}
	if !ev.Meta.Timestamp.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("timestamp %v", ev.Meta.Timestamp)
	}

	ev, _ = DecodeEvent([]byte(sampleFrames["dialog_opened"]))
	d := ev.Data.(*DialogData).Dialog
	if d.ID != 1001 || d.ChatID != 77 || d.Chat.Channel.ID != 3 || d.Chat.Customer.ID != 9 || d.Responsible != nil || d.CreatedAt.IsZero() {
		t.Fatalf("dialog_opened: %+v", d)
	}

	ev, _ = DecodeEvent([]byte(sampleFrames["dialog_assign"]))
	a := ev.Data.(*DialogData)
	if a.Dialog.Responsible.Who() != bd.ManagerOf(12) || a.Chat.ID != 77 || a.Dialog.ChatID != 0 {
		t.Fatalf("dialog_assign: %+v", a)
	}

	ev, _ = DecodeEvent([]byte(sampleFrames["user_updated"]))
	u := ev.Data.(*UserUpdatedData)
	if u.ID != 12 || u.FirstName != "Ann" || u.IsActive {
		t.Fatalf("user_updated: %+v", u)
	}

	ev, _ = DecodeEvent([]byte(sampleFrames["user_online_updated"]))
	o := ev.Data.(*UserOnlineData)
	if o.User.ID != 12 || !o.Online || !o.Connected {
		t.Fatalf("user_online_updated: %+v", o)
	}
	ev, _ = DecodeEvent([]byte(sampleFrames["bot_updated"]))
	if ev.Meta.AppID != 4 {
		t.Fatalf("app_id: %+v", ev.Meta)
	}
}

func TestDecodeEventBadFrames(t *testing.T) {
	tests := []struct {
		name, frame string
		want        error
	}{
		{"not json", `hello`, ErrMalformedEvent},
		{"empty", ``, ErrMalformedEvent},
		{"array", `[1,2]`, ErrMalformedEvent},
		{"no type", `{"data":{}}`, ErrMalformedEvent},
		{"type not a string", `{"type":5}`, ErrMalformedEvent},
		{"meta not an object", `{"type":"dialog_opened","meta":3,"data":{"dialog":{"id":1}}}`, ErrMalformedEvent},
		{"data missing", `{"type":"dialog_opened","meta":{}}`, ErrMalformedEvent},
		{"data null", `{"type":"dialog_opened","data":null}`, ErrMalformedEvent},
		{"data not an object", `{"type":"message_new","data":"x"}`, ErrMalformedEvent},
		{"wrong field type", `{"type":"dialog_opened","data":{"dialog":{"id":"seven"}}}`, ErrMalformedEvent},
		{"unknown type", `{"type":"dialog_tagged","meta":{"timestamp":1},"data":{"x":1}}`, ErrUnknownEvent},
	}
	for _, tt := range tests {
		ev, err := DecodeEvent([]byte(tt.frame))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if ev.Data != nil {
			t.Errorf("%s: Data = %#v, want nil", tt.name, ev.Data)
		}
	}
	ev, _ := DecodeEvent([]byte(`{"type":"dialog_tagged","meta":{"timestamp":1},"data":{"x":1}}`))
	if ev.Type != "dialog_tagged" || string(ev.Raw) != `{"x":1}` {
		t.Fatalf("unknown event keeps its envelope: %+v", ev)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, frame := range sampleFrames {
		f.Add([]byte(frame))
	}
	f.Add([]byte(`{"type":"dialog_tagged","data":{}}`))
	f.Add([]byte(`{"type":"message_new","data":{"message":{"time":"2023-11-14 19:13:20","dialog":null}}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		ev, err := DecodeEvent(frame)
		switch {
		case err == nil:
			if !KnownEvent(ev.Type) {
				t.Fatalf("decoded an unknown type %q without error", ev.Type)
			}
			if ev.Data == nil && payloads[ev.Type] != nil {
				t.Fatalf("%s decoded without a payload", ev.Type)
			}
		case errors.Is(err, ErrUnknownEvent):
			if KnownEvent(ev.Type) || ev.Data != nil {
				t.Fatalf("unknown-type error for %q with data %T", ev.Type, ev.Data)
			}
		case errors.Is(err, ErrMalformedEvent):
			if ev.Data != nil {
				t.Fatalf("malformed frame with data %T", ev.Data)
			}
		default:
			t.Fatalf("error wraps neither sentinel: %v", err)
		}
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	frame := []byte(sampleFrames["message_new"])
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(frame); err != nil {
			b.Fatal(err)
		}
	}
}
