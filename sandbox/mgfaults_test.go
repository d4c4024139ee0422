package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/sandbox"
)

// mgSend posts a public text from the bot through the raw Bot API.
func mgSend(t *testing.T, m *sandbox.MG, chat bd.ChatID, text string) (int, string) {
	t.Helper()
	return mgDo(t, m, "POST", "/messages", m.BotToken().Reveal(), fmt.Sprintf(`{"chat_id":%d,"scope":"public","type":"text","content":%q}`, chat, text))
}

func TestMGErrAfterApplyStoresAndDeliversButFails(t *testing.T) {
	tests := []struct {
		name       string
		faults     sandbox.MGFaults
		wantStatus int
	}{
		{"default 502", sandbox.MGFaults{ErrAfterApplyNext: 1}, 502},
		{"chosen status", sandbox.MGFaults{ErrAfterApplyNext: 1, ErrAfterApplyStatus: 504}, 504},
		{"ratio", sandbox.MGFaults{ErrAfterApply: 1}, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mgNew(t)
			ch, _ := m.AddChannel(mgCtx(t), "telegram", "TG")
			w, _ := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "a", Text: "hi"})
			if err := m.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			status, body := mgSend(t, m, w.Chat, "Thanks")
			if status != tt.wantStatus || !strings.Contains(body, "errors") {
				t.Fatalf("answer %d %s, want %d", status, body, tt.wantStatus)
			}
			got := m.BotMessages(w.Dialog)
			if len(got) != 1 || got[0].Text != "Thanks" || got[0].FromID != int64(m.BotID()) {
				t.Fatalf("bot messages = %+v, want the message stored", got)
			}
			if err := m.Await(mgCtx(t), func() bool { return len(m.Delivered(w.Chat)) == 1 }); err != nil {
				t.Fatalf("the message was not delivered: %v", err)
			}
			reqs := m.Requests()
			last := reqs[len(reqs)-1]
			if !last.Injected || !last.Applied || last.Status != tt.wantStatus {
				t.Fatalf("request log = %+v", last)
			}
		})
	}
}

func TestMGDropAfterApply(t *testing.T) {
	m := mgNew(t)
	ch, _ := m.AddChannel(mgCtx(t), "telegram", "TG")
	w, _ := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "a", Text: "hi"})
	if err := m.SetFaults(sandbox.MGFaults{ErrAfterApplyNext: 1, DropAfterApply: true}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", m.URL()+"/api/bot/v1/messages", strings.NewReader(fmt.Sprintf(`{"chat_id":%d,"scope":"public","content":"x"}`, w.Chat)))
	req.Header.Set("X-Bot-Token", m.BotToken().Reveal())
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer %d, want a dropped connection", resp.StatusCode)
	}
	if got := m.BotMessages(w.Dialog); len(got) != 1 {
		t.Fatalf("bot messages = %+v, want the message stored", got)
	}
	if last := m.Requests()[len(m.Requests())-1]; !last.Applied || last.Status != 0 {
		t.Fatalf("request log = %+v", last)
	}
}

func TestMGInjected503CarriesRetryAfter(t *testing.T) {
	m := mgNew(t)
	if err := m.SetFaults(sandbox.MGFaults{FailNext: 1, FailStatus: 503, RetryAfter: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", m.URL()+"/api/bot/v1/users", nil)
	req.Header.Set("X-Bot-Token", m.BotToken().Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("answer %d with Retry-After %q, want 503 with 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestMGErrAfterApplyValidation(t *testing.T) {
	m := mgNew(t)
	for _, f := range []sandbox.MGFaults{
		{ErrAfterApply: -0.1}, {ErrAfterApply: 1.1}, {ErrAfterApply: 0.5, ServerErrorRatio: 0.3, RateLimitRatio: 0.3},
		{ErrAfterApplyNext: -1}, {ErrAfterApplyStatus: 302},
	} {
		if err := m.SetFaults(f); err == nil {
			t.Errorf("%+v: want an error", f)
		}
	}
}

// GET /messages answers from the message log with the bot's own messages,
// by chat, dialog and bot; GET /dialogs and GET /chats tell whether a
// dialog is open and the latest of its chat.
func TestMGMessagesAndDialogStateAreFaithful(t *testing.T) {
	m := mgNew(t)
	tok := m.BotToken().Reveal()
	ch, _ := m.AddChannel(mgCtx(t), "telegram", "TG")
	w, _ := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "a", Text: "hi"})
	helper, helperTok, _ := m.AddBot("Helper", "responsible")
	mgSend(t, m, w.Chat, "first")
	mgDo(t, m, "POST", "/messages", helperTok.Reveal(), fmt.Sprintf(`{"chat_id":%d,"scope":"public","content":"helper"}`, w.Chat))
	if err := m.CloseDialog(w.Dialog); err != nil {
		t.Fatal(err)
	}
	w2, _ := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "a", Text: "again"})
	mgSend(t, m, w.Chat, "second")

	contents := func(query string) []string {
		t.Helper()
		status, body := mgDo(t, m, "GET", "/messages?"+query, tok, "")
		var msgs []struct {
			Content string `json:"content"`
			Dialog  struct {
				ID int64 `json:"id"`
			} `json:"dialog"`
		}
		if status != 200 || json.Unmarshal([]byte(body), &msgs) != nil {
			t.Fatalf("GET /messages?%s: %d %s", query, status, body)
		}
		var out []string
		for _, msg := range msgs {
			out = append(out, msg.Content)
		}
		return out
	}
	tests := []struct {
		query string
		want  string
	}{
		{fmt.Sprintf("chat_id=%d", w.Chat), "hi first helper again second"},
		{fmt.Sprintf("chat_id=%d&bot_id=%d", w.Chat, m.BotID()), "first second"},
		{fmt.Sprintf("chat_id=%d&dialog_id=%d&bot_id=%d", w.Chat, w.Dialog, m.BotID()), "first"},
		{fmt.Sprintf("dialog_id=%d&bot_id=%d", w2.Dialog, m.BotID()), "second"},
		{fmt.Sprintf("dialog_id=%d&bot_id=%d", w.Dialog, helper), "helper"},
	}
	for _, tt := range tests {
		if got := strings.Join(contents(tt.query), " "); got != tt.want {
			t.Errorf("GET /messages?%s = %q, want %q", tt.query, got, tt.want)
		}
	}
	if got := m.BotMessages(w.Dialog); len(got) != 2 || got[0].Text != "first" || got[1].Text != "helper" {
		t.Errorf("BotMessages(first dialog) = %+v", got)
	}
	if got := m.BotMessages(w2.Dialog); len(got) != 1 || got[0].Text != "second" {
		t.Errorf("BotMessages(second dialog) = %+v", got)
	}
	if got := m.BotMessages(99999); got != nil {
		t.Errorf("BotMessages(unknown) = %+v", got)
	}

	status, body := mgDo(t, m, "GET", fmt.Sprintf("/dialogs?id=%d", w.Dialog), tok, "")
	if status != 200 || !strings.Contains(body, `"is_active":false`) {
		t.Errorf("closed dialog: %d %s", status, body)
	}
	status, body = mgDo(t, m, "GET", fmt.Sprintf("/chats?id=%d", w.Chat), tok, "")
	var chats []struct {
		LastDialog struct {
			ID       int64 `json:"id"`
			IsActive bool  `json:"is_active"`
		} `json:"last_dialog"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &chats) != nil || len(chats) != 1 {
		t.Fatalf("GET /chats: %d %s", status, body)
	}
	if ld := chats[0].LastDialog; ld.ID != int64(w2.Dialog) || !ld.IsActive {
		t.Errorf("last_dialog = %+v, want %d active", ld, w2.Dialog)
	}
}
