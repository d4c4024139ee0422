package mgsource

import (
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/mg"
)

const acct bd.AccountID = "shop"

func decode(t *testing.T, frame string) mg.Event {
	t.Helper()
	ev, err := mg.DecodeEvent([]byte(frame))
	if err != nil {
		t.Fatalf("decode %s: %v", frame, err)
	}
	return ev
}

const (
	chatJSON   = `{"id":77,"channel":{"id":3,"type":"telegram"},"customer":{"id":9,"type":"customer","first_name":"Bob","last_name":"Smith","phone":"+79001234567","email":"bob@example.com"}}`
	openedJSON = `{"type":"dialog_opened","meta":{"timestamp":1700000005},"data":{"dialog":{"id":1001,"created_at":"2023-11-14T19:13:20.000000Z","chat":` + chatJSON + `}}}`
)

func TestTranslateDialogEvents(t *testing.T) {
	tr := NewTranslator(acct, nil)
	bob := bd.Customer{ID: 9, FirstName: "Bob", LastName: "Smith", Phone: "+79001234567", Email: "bob@example.com"}
	opened := time.Date(2023, 11, 14, 19, 13, 20, 0, time.UTC)

	ev, ok := tr.Translate(decode(t, openedJSON))
	want := distributor.Event{
		Kind: distributor.DialogOpened, Account: acct,
		Dialog: bd.Dialog{Account: acct, ID: 1001, Chat: 77, Channel: 3, Customer: bob, OpenedAt: opened},
		At:     time.Unix(1700000005, 0),
	}
	if !ok || !sameEvent(ev, want) {
		t.Fatalf("dialog_opened:\n got %+v\nwant %+v", ev, want)
	}

	// dialog_assign carries the chat beside the dialog.
	ev, ok = tr.Translate(decode(t, `{"type":"dialog_assign","meta":{"timestamp":1700000007},"data":{
		"dialog":{"id":1001,"created_at":"2023-11-14T19:13:20.000000Z","responsible":{"id":12,"type":"user","assigned_at":"2023-11-14T19:14:00.000000Z"}},
		"chat":`+chatJSON+`}}`))
	if !ok || ev.Kind != distributor.DialogAssigned || ev.Responsible != bd.ManagerOf(12) || ev.Dialog.Chat != 77 || ev.Dialog.Channel != 3 || ev.Dialog.Customer != bob {
		t.Fatalf("dialog_assign: %+v", ev)
	}
	ev, ok = tr.Translate(decode(t, `{"type":"dialog_assign","meta":{"timestamp":1},"data":{"dialog":{"id":1001,"responsible":null},"chat":{"id":77}}}`))
	if !ok || !ev.Responsible.IsZero() {
		t.Fatalf("dialog_assign to nobody: %+v", ev)
	}

	// dialog_closed without its chat: the chat is known from before.
	ev, ok = tr.Translate(decode(t, `{"type":"dialog_closed","meta":{"timestamp":1700000009},"data":{"dialog":{"id":1001,"chat":{"id":77},"closed_at":"2023-11-14T20:00:00.000000Z"}}}`))
	if !ok || ev.Kind != distributor.DialogClosed || ev.Dialog.ID != 1001 || ev.Dialog.Channel != 3 || !ev.At.Equal(time.Date(2023, 11, 14, 20, 0, 0, 0, time.UTC)) {
		t.Fatalf("dialog_closed: %+v", ev)
	}
	if _, ok := tr.Translate(decode(t, `{"type":"dialog_opened","data":{"dialog":{"id":0}}}`)); ok {
		t.Fatal("a dialog without id must be dropped")
	}
}

func TestTranslateMessages(t *testing.T) {
	tr := NewTranslator(acct, nil)
	tr.SetSelf(1)
	msg := func(from, scope, typ string, dialog string) string {
		return `{"type":"message_new","meta":{"timestamp":1700000000},"data":{"message":{"id":501,"time":"2023-11-14T22:13:20+03:00",
			"type":"` + typ + `","scope":"` + scope + `","chat_id":77,"from":` + from + `,"chat":` + chatJSON + dialog + `,"content":"x"}}}`
	}
	withDialog := `,"dialog":{"id":1001}`
	customer := `{"id":9,"type":"customer","name":"Bob Smith"}`
	tests := []struct {
		name   string
		frame  string
		ok     bool
		kind   distributor.EventKind
		dialog bd.DialogID
	}{
		{"customer", msg(customer, "public", "text", withDialog), true, distributor.CustomerMessage, 1001},
		{"customer command", msg(customer, "public", "command", withDialog), true, distributor.CustomerMessage, 1001},
		{"customer, no dialog id", msg(customer, "public", "text", ""), true, distributor.CustomerMessage, 0},
		{"manager", msg(`{"id":12,"type":"user"}`, "public", "text", withDialog), true, distributor.ManagerMessage, 1001},
		{"other bot", msg(`{"id":2,"type":"bot"}`, "public", "text", withDialog), true, distributor.ManagerMessage, 1001},
		{"channel", msg(`{"id":3,"type":"channel"}`, "public", "text", withDialog), true, distributor.ManagerMessage, 1001},
		{"own bot", msg(`{"id":1,"type":"bot"}`, "public", "text", withDialog), false, 0, 0},
		{"private note", msg(`{"id":12,"type":"user"}`, "private", "text", withDialog), false, 0, 0},
		{"system", msg(`{"id":12,"type":"user"}`, "private", "system", withDialog), false, 0, 0},
		{"no sender", `{"type":"message_new","data":{"message":{"id":5,"chat_id":77}}}`, false, 0, 0},
		{"updated", `{"type":"message_updated","data":{"message":{"id":5,"chat_id":77,"from":{"id":9,"type":"customer"}}}}`, false, 0, 0},
	}
	for _, tt := range tests {
		ev, ok := tr.Translate(decode(t, tt.frame))
		if ok != tt.ok {
			t.Errorf("%s: ok = %v, want %v", tt.name, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if ev.Kind != tt.kind || ev.Dialog.ID != tt.dialog || ev.MessageID != 501 || ev.Dialog.Chat != 77 || ev.Dialog.Channel != 3 || ev.Account != acct {
			t.Errorf("%s: %+v", tt.name, ev)
		}
		if !ev.At.Equal(time.Date(2023, 11, 14, 19, 13, 20, 0, time.UTC)) {
			t.Errorf("%s: At = %v, want the message time", tt.name, ev.At)
		}
		if tt.kind == distributor.CustomerMessage && (ev.Dialog.Customer.ID != 9 || ev.Dialog.Customer.Phone != "+79001234567") {
			t.Errorf("%s: customer %+v", tt.name, ev.Dialog.Customer)
		}
	}
}

func TestTranslateUsesChatCache(t *testing.T) {
	tr := NewTranslator(acct, nil)
	tr.Translate(decode(t, openedJSON))
	ev, ok := tr.Translate(decode(t, `{"type":"message_new","data":{"message":{"id":502,"type":"text","scope":"public","chat_id":77,
		"from":{"id":9,"type":"customer","name":"Bob Smith"},"dialog":{"id":1001}}}}`))
	if !ok || ev.Dialog.Channel != 3 || ev.Dialog.Customer.Phone != "+79001234567" || ev.Dialog.Customer.FirstName != "Bob" {
		t.Fatalf("message without chat: %+v", ev)
	}
	if _, known := tr.chat(77); !known {
		t.Fatal("chat 77 not cached")
	}
	if _, known := tr.chat(78); known {
		t.Fatal("chat 78 cached out of nowhere")
	}
}

func TestTranslateUsers(t *testing.T) {
	statuses := map[bd.ManagerID]bd.ManagerStatus{12: bd.StatusBusy, 13: "lunch"}
	tr := NewTranslator(acct, func(id bd.ManagerID) (bd.ManagerStatus, bool) { s, ok := statuses[id]; return s, ok })
	roster := tr.SetUsers([]mg.User{
		{ID: 12, FirstName: "Ann", LastName: "Lee", IsActive: true, IsOnline: false},
		{ID: 13, FirstName: "Bob", IsActive: false},
		{ID: 14, FirstName: "Robot", IsActive: true, IsOnline: true, IsTechnicalAccount: true},
		{ID: 15, FirstName: "Cid", IsActive: true, IsOnline: true},
	})
	want := []bd.Manager{
		{ID: 12, FirstName: "Ann", LastName: "Lee", Status: bd.StatusBusy, Active: true},
		{ID: 13, FirstName: "Bob", Status: bd.StatusFree},
		{ID: 15, FirstName: "Cid", Status: bd.StatusFree, Online: true, Active: true},
	}
	if len(roster) != len(want) {
		t.Fatalf("roster = %+v", roster)
	}
	for i := range want {
		if roster[i] != want[i] {
			t.Errorf("roster[%d] = %+v, want %+v", i, roster[i], want[i])
		}
	}

	ev, ok := tr.Translate(decode(t, `{"type":"user_online_updated","meta":{"timestamp":5},"data":{"user":{"id":12,"type":"user","first_name":"Ann"},"online":true,"connected":true}}`))
	if !ok || ev.Kind != distributor.ManagerChanged || ev.Manager != (bd.Manager{ID: 12, FirstName: "Ann", Status: bd.StatusBusy, Online: true, Active: true}) {
		t.Fatalf("online: %+v", ev)
	}
	ev, ok = tr.Translate(decode(t, `{"type":"user_updated","data":{"id":12,"type":"user","first_name":"Ann","last_name":"Lee","is_active":false}}`))
	if !ok || ev.Manager != (bd.Manager{ID: 12, FirstName: "Ann", LastName: "Lee", Status: bd.StatusBusy, Online: true, Active: false}) {
		t.Fatalf("deactivated: %+v", ev.Manager)
	}
	if _, ok := tr.Translate(decode(t, `{"type":"user_online_updated","data":{"user":{"id":14,"type":"user"},"online":false}}`)); ok {
		t.Fatal("a technical account must be dropped")
	}
	if _, ok := tr.Translate(decode(t, `{"type":"user_updated","data":{"id":16,"type":"user","is_technical_account":true,"is_active":true}}`)); ok {
		t.Fatal("a technical account must be dropped")
	}
	ev, ok = tr.Translate(decode(t, `{"type":"user_online_updated","data":{"user":{"id":20,"type":"user","first_name":"New"},"online":true}}`))
	if !ok || ev.Manager != (bd.Manager{ID: 20, FirstName: "New", Status: bd.StatusFree, Online: true, Active: true}) {
		t.Fatalf("unknown user: %+v", ev.Manager)
	}
	for _, frame := range []string{
		`{"type":"customer_updated","data":{"id":9,"type":"customer"}}`,
		`{"type":"chat_created","data":{"chat":{"id":1}}}`,
		`{"type":"channel_updated","data":{"channel":{"id":1}}}`,
		`{"type":"user_online_updated","data":{"user":{"id":0},"online":true}}`,
	} {
		if ev, ok := tr.Translate(decode(t, frame)); ok {
			t.Errorf("%s: translated to %+v", frame, ev)
		}
	}
}

func sameEvent(a, b distributor.Event) bool {
	return a.Kind == b.Kind && a.Account == b.Account && a.Dialog.ID == b.Dialog.ID && a.Dialog.Chat == b.Dialog.Chat &&
		a.Dialog.Channel == b.Dialog.Channel && a.Dialog.Customer == b.Dialog.Customer && a.Dialog.Account == b.Dialog.Account &&
		a.Dialog.OpenedAt.Equal(b.Dialog.OpenedAt) && a.At.Equal(b.At) && a.Responsible == b.Responsible &&
		a.Manager == b.Manager && a.MessageID == b.MessageID
}
