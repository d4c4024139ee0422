package sandbox_test

import (
	"github.com/botdistributor/botdistributor/internal/leakcheck"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	transport "github.com/retailcrm/mg-transport-api-client-go/v1"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/sandbox"
)

func mgNew(t *testing.T, opts ...sandbox.MGOption) *sandbox.MG {
	t.Helper()
	m, err := sandbox.NewMG(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func mgCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mgDo sends a raw Bot API request with the bot's token (unless token is
// "-") and returns the status and body.
func mgDo(t *testing.T, m *sandbox.MG, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, m.URL()+"/api/bot/v1"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "-" {
		req.Header.Set("X-Bot-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMGRejectsBadOptions(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  sandbox.MGOption
		want string
	}{
		{"not a url", sandbox.WithWebhookURL("not a url"), `sandbox: mg: WithWebhookURL: "not a url" is not an absolute http(s) URL`},
		{"not http", sandbox.WithWebhookURL("ftp://x/y"), `sandbox: mg: WithWebhookURL: "ftp://x/y" is not an absolute http(s) URL`},
		{"unknown role", sandbox.WithBotRoles("boss"), ""},
		{"nil option", nil, "sandbox: mg: nil option"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := sandbox.NewMG(tt.opt)
			if err == nil {
				m.Close()
				t.Fatal("want an error")
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestMGErrorsFollowTheReference(t *testing.T) {
	m := mgNew(t)
	tok := m.BotToken().Reveal()
	ch, err := m.AddChannel(mgCtx(t), "telegram", "TG")
	if err != nil {
		t.Fatal(err)
	}
	w, err := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "e1", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path, token, body string
		status                    int
		errText                   string
	}{
		{"GET", "/bots", "-", "", 401, "X-Bot-Token header is required"},
		{"GET", "/bots", "nope", "", 401, "invalid token"},
		{"GET", "/nowhere", tok, "", 404, "not found"},
		{"GET", "/dialogs?active=maybe", tok, "", 400, `active: "maybe" is not a boolean`},
		{"GET", "/dialogs?limit=0", tok, "", 400, "limit must be between 1 and 1000"},
		{"GET", "/dialogs?limit=1001", tok, "", 400, "limit must be between 1 and 1000"},
		{"GET", "/dialogs?since_id=x", tok, "", 400, "since_id"},
		{"PATCH", "/dialogs/77/assign", tok, `{"user_id":100}`, 404, "dialog #77 not found"},
		{"PATCH", fmt.Sprintf("/dialogs/%d/assign", w.Dialog), tok, `{}`, 400, "user_id or bot_id is required"},
		{"PATCH", fmt.Sprintf("/dialogs/%d/assign", w.Dialog), tok, `{"user_id":1,"bot_id":1}`, 400, "only one of user_id and bot_id"},
		{"PATCH", fmt.Sprintf("/dialogs/%d/assign", w.Dialog), tok, `{"user_id":4242}`, 404, "user #4242 not found"},
		{"PATCH", fmt.Sprintf("/dialogs/%d/assign", w.Dialog), tok, `{"bot_id":1}`, 400, "has no responsible role"},
		{"PATCH", fmt.Sprintf("/dialogs/%d/assign", w.Dialog), tok, `not json`, 400, "invalid request body"},
		{"PATCH", fmt.Sprintf("/dialogs/%d/unassign", w.Dialog), tok, ``, 400, "dialog is not assigned"},
		{"PATCH", "/dialogs/77/unassign", tok, ``, 404, "dialog #77 not found"},
		{"DELETE", "/dialogs/77/close", tok, ``, 404, "dialog #77 not found"},
		{"POST", "/messages", tok, `{"chat_id":0,"scope":"public","content":"x"}`, 400, "chat_id is required"},
		{"POST", "/messages", tok, fmt.Sprintf(`{"chat_id":%d,"content":"x"}`, w.Chat), 400, "scope is required"},
		{"POST", "/messages", tok, fmt.Sprintf(`{"chat_id":%d,"scope":"public","type":"image"}`, w.Chat), 400, "text messages only"},
		{"POST", "/messages", tok, `{"chat_id":77,"scope":"public","content":"x"}`, 404, "chat #77 not found"},
		{"GET", "/ws?events=", tok, "", 400, "events is required"},
	}
	for _, tt := range tests {
		status, body := mgDo(t, m, tt.method, tt.path, tt.token, tt.body)
		var e struct{ Errors []string }
		if status != tt.status || json.Unmarshal([]byte(body), &e) != nil || len(e.Errors) != 1 || !strings.Contains(e.Errors[0], tt.errText) {
			t.Errorf("%s %s: %d %s, want %d with %q", tt.method, tt.path, status, body, tt.status, tt.errText)
		}
	}

	// The dialog is closed; assigning it, or the old dialog once a new one
	// opened, is refused.
	if err := m.CloseDialog(w.Dialog); err != nil {
		t.Fatal(err)
	}
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann"})
	if status, body := mgDo(t, m, "PATCH", fmt.Sprintf("/dialogs/%d/assign", w.Dialog), tok, fmt.Sprintf(`{"user_id":%d}`, ann)); status != 400 || !strings.Contains(body, "dialog is closed") {
		t.Errorf("assign closed dialog: %d %s", status, body)
	}
	if err := m.CloseDialog(w.Dialog); err == nil || !strings.Contains(err.Error(), "already closed") {
		t.Errorf("close twice: %v", err)
	}
	w2, _ := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "e1", Text: "again"})
	if !w2.Opened || w2.Chat != w.Chat {
		t.Fatalf("second dialog: %+v", w2)
	}
	if status, body := mgDo(t, m, "PATCH", fmt.Sprintf("/dialogs/%d/assign", w.Dialog), tok, fmt.Sprintf(`{"user_id":%d}`, ann)); status != 400 || !strings.Contains(body, "dialog is not the latest in the chat") {
		t.Errorf("assign old dialog: %d %s", status, body)
	}
	if err := m.SetActive(ann, false); err != nil {
		t.Fatal(err)
	}
	if status, body := mgDo(t, m, "PATCH", fmt.Sprintf("/dialogs/%d/assign", w2.Dialog), tok, fmt.Sprintf(`{"user_id":%d}`, ann)); status != 400 || !strings.Contains(body, "not active") {
		t.Errorf("assign to inactive user: %d %s", status, body)
	}
}

func TestMGListShapes(t *testing.T) {
	m := mgNew(t)
	tok := m.BotToken().Reveal()
	ch, _ := m.AddChannel(mgCtx(t), "telegram", "TG")
	w, _ := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "s1", FirstName: "Bob", Text: "hi"})
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann"})
	if err := m.AssignAsPerson(w.Dialog, bd.ManagerOf(ann)); err != nil {
		t.Fatal(err)
	}
	status, body := mgDo(t, m, "GET", "/dialogs", tok, "")
	var dialogs []map[string]any
	if status != 200 || json.Unmarshal([]byte(body), &dialogs) != nil || len(dialogs) != 1 {
		t.Fatalf("GET /dialogs: %d %s", status, body)
	}
	d := dialogs[0]
	for _, k := range []string{"id", "chat_id", "begin_message_id", "ending_message_id", "bot_id", "is_assigned", "responsible", "is_active", "created_at", "updated_at", "closed_at"} {
		if _, ok := d[k]; !ok {
			t.Errorf("dialog lacks %q: %s", k, body)
		}
	}
	resp := d["responsible"].(map[string]any)
	if resp["type"] != "user" || resp["id"] != float64(ann) || !strings.HasSuffix(resp["assigned_at"].(string), "Z") || len(resp["assigned_at"].(string)) != len("2018-01-01T00:00:00.000000Z") {
		t.Errorf("responsible = %v", resp)
	}
	status, body = mgDo(t, m, "GET", "/messages?chat_id="+fmt.Sprint(w.Chat), tok, "")
	var msgs []map[string]any
	if status != 200 || json.Unmarshal([]byte(body), &msgs) != nil || len(msgs) != 1 {
		t.Fatalf("GET /messages: %d %s", status, body)
	}
	if ts := msgs[0]["time"].(string); !strings.HasSuffix(ts, "+03:00") {
		t.Errorf("message time %q is not plain RFC 3339 with an offset", ts)
	}
	if from := msgs[0]["from"].(map[string]any); from["type"] != "customer" || from["name"] != "Bob" {
		t.Errorf("from = %v", from)
	}
	// An empty list is [] (a bare array), not null.
	if status, body = mgDo(t, m, "GET", "/dialogs?active=0", tok, ""); status != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("empty list: %d %s", status, body)
	}
}

// The message_sent webhook has the shape mg-transport-api-client-go reads,
// and the transport's answer decides the message's status.
func TestMGWebhookToExternalTransport(t *testing.T) {
	var mu sync.Mutex
	var got []transport.MessageWebhookData
	fail := false
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wh transport.WebhookRequest
		if err := json.NewDecoder(r.Body).Decode(&wh); err != nil || wh.Type != transport.MessageSendWebhookType {
			http.Error(w, "bad webhook", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, wh.MessageWebhookData())
		f := fail
		mu.Unlock()
		ans := transport.NewSentMessageResponse(fmt.Sprint("ext-", wh.Meta.ID))
		if f {
			ans = transport.NewTransportErrorResponse(transport.MessageErrorCustomerNotExists, "gone")
		}
		_ = json.NewEncoder(w).Encode(ans)
	}))
	defer hook.Close()
	m := mgNew(t, sandbox.WithWebhookURL(hook.URL+"/hook"))
	ch, _ := m.AddChannel(mgCtx(t), "telegram", "TG")
	w, _ := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "cust-9", ExternalChatID: "chat-9", Text: "hi"})
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann", LastName: "Lee"})
	first, err := m.ManagerWrites(ann, w.Chat, "Hello from Ann")
	if err != nil {
		t.Fatal(err)
	}
	status := func(id int64) string {
		for _, msg := range m.Messages(w.Chat) {
			if msg.ID == id {
				return msg.Status
			}
		}
		return ""
	}
	mgAwait(t, m, func() bool { return status(first) == "sent" })
	mu.Lock()
	d := got[0]
	fail = true
	mu.Unlock()
	if d.ExternalUserID != "cust-9" || d.ExternalChatID != "chat-9" || d.ChannelID != uint64(ch) || d.Content != "Hello from Ann" || d.Type != "text" ||
		d.User == nil || d.User.FirstName != "Ann" || d.User.LastName != "Lee" || d.Bot != nil {
		t.Fatalf("webhook data = %+v", d)
	}
	second, _ := m.ManagerWrites(ann, w.Chat, "Are you there?")
	mgAwait(t, m, func() bool { return status(second) == "failed" })
	if len(m.Delivered(0)) != 0 {
		t.Fatal("the built-in messenger must not receive webhooks of an external transport")
	}
}

func TestMGTransportChannelsThroughTheRealClient(t *testing.T) {
	m := mgNew(t)
	cl := transport.New(m.URL(), m.TransportToken().Reveal())
	act, status, err := cl.ActivateTransportChannel(transport.Channel{Type: "telegram", Name: "@shop"})
	if err != nil || status != 200 || act.ChannelID == 0 || act.ExternalID == "" || act.ActivatedAt.IsZero() {
		t.Fatalf("activate: %+v %d %v", act, status, err)
	}
	if _, _, err := cl.UpdateTransportChannel(transport.Channel{ID: act.ChannelID, Type: "telegram", Name: "@shop2"}); err != nil {
		t.Fatal(err)
	}
	list, _, err := cl.TransportChannels(transport.Channels{Active: true})
	if err != nil || len(list) != 1 || *list[0].Name != "@shop2" || !list[0].IsActive {
		t.Fatalf("channels: %+v %v", list, err)
	}
	if _, _, err := cl.DeactivateTransportChannel(act.ChannelID); err != nil {
		t.Fatal(err)
	}
	_, _, err = cl.Messages(transport.SendData{
		Message: transport.Message{ExternalID: "m1", Type: "text", Text: "hi"}, Originator: transport.OriginatorCustomer,
		Customer: transport.Customer{ExternalID: "c1"}, Channel: act.ChannelID,
	})
	if err == nil || !strings.Contains(err.Error(), "not active") {
		t.Fatalf("message into a deactivated channel: %v", err)
	}
	other := transport.New(m.URL(), "wrong")
	if _, status, err := other.TransportChannels(transport.Channels{}); err == nil || status != 401 {
		t.Fatalf("wrong transport token: %d %v", status, err)
	}
	// Another transport does not see or use this one's channels.
	tok := m.RegisterTransport("http://127.0.0.1:1/hook")
	stranger := transport.New(m.URL(), tok.Reveal())
	if list, _, _ := stranger.TransportChannels(transport.Channels{}); len(list) != 0 {
		t.Fatalf("stranger sees %+v", list)
	}
	if _, _, err := stranger.DeactivateTransportChannel(act.ChannelID); err == nil {
		t.Fatal("stranger deactivated a channel it does not own")
	}
}

func TestMGCustomerMessagesOpenDialogsOncePerChat(t *testing.T) {
	m := mgNew(t)
	ch, _ := m.AddChannel(mgCtx(t), "whatsapp", "WA")
	a, err := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "x", Text: "one"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "x", Text: "two"})
	c, _ := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "y", Text: "three"})
	if !a.Opened || b.Opened || b.Dialog != a.Dialog || b.Chat != a.Chat || !c.Opened || c.Chat == a.Chat {
		t.Fatalf("a %+v b %+v c %+v", a, b, c)
	}
	_, err = m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "x", Text: "dup", MessageExternalID: "same"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "x", Text: "dup", MessageExternalID: "same"}); err == nil {
		t.Fatal("a repeated message external_id must be refused")
	}
	if _, err := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: 999, CustomerExternalID: "x", Text: "t"}); err == nil {
		t.Fatal("an unknown channel must be refused")
	}
	ds := m.Dialogs()
	if len(ds) != 2 || ds[0].Channel != ch || ds[0].Customer != a.Customer || !ds[0].Active || ds[0].OpenedAt.IsZero() {
		t.Fatalf("dialogs = %+v", ds)
	}
}

func TestMGFaultsValidationAndDeterminism(t *testing.T) {
	m := mgNew(t)
	for _, f := range []sandbox.MGFaults{
		{ServerErrorRatio: -0.1}, {RateLimitRatio: 2}, {ServerErrorRatio: 0.6, RateLimitRatio: 0.6},
		{Latency: -time.Second}, {FailNext: -1}, {FailStatus: 200},
	} {
		if err := m.SetFaults(f); err == nil {
			t.Errorf("%+v: want an error", f)
		}
	}
	pattern := func(seed uint64) string {
		m := mgNew(t, sandbox.WithSeed(seed))
		if err := m.SetFaults(sandbox.MGFaults{ServerErrorRatio: 0.3, RateLimitRatio: 0.2}); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for range 40 {
			status, _ := mgDo(t, m, "GET", "/users", m.BotToken().Reveal(), "")
			fmt.Fprint(&b, status/100)
		}
		return b.String()
	}
	p1, p2 := pattern(42), pattern(42)
	if p1 != p2 {
		t.Fatalf("same seed, different faults:\n%s\n%s", p1, p2)
	}
	if !strings.Contains(p1, "2") || !strings.Contains(p1, "4") || !strings.Contains(p1, "5") {
		t.Fatalf("pattern %s lacks successes, 429s or 5xx", p1)
	}
}

func TestMGCloseLeavesNoGoroutines(t *testing.T) {
	before := leakcheck.Take()
	m, err := sandbox.NewMG()
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := m.AddChannel(mgCtx(t), "telegram", "TG")
	w, _ := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "z", Text: "hi"})
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann"})
	if _, err := m.ManagerWrites(ann, w.Chat, "reply"); err != nil {
		t.Fatal(err)
	}
	mgAwait(t, m, func() bool { return len(m.Delivered(w.Chat)) == 1 })
	if err := m.SetFaults(sandbox.MGFaults{Latency: time.Hour}); err != nil {
		t.Fatal(err)
	}
	stuck := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", m.URL()+"/api/bot/v1/users", nil)
		req.Header.Set("X-Bot-Token", m.BotToken().Reveal())
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		stuck <- err
	}()
	mgAwait(t, m, func() bool { return len(m.Requests()) == 1 })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	<-stuck // the delayed request was cut by Close
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
	if extra := before.Extra(5 * time.Second); len(extra) > 0 {
		t.Fatalf("%d goroutines outlived Close:\n\n%s", len(extra), strings.Join(extra, "\n\n"))
	}
	if _, err := m.CustomerWrites(mgCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "z", Text: "late"}); err == nil {
		t.Fatal("a closed MG must refuse messages")
	}
	http.DefaultClient.CloseIdleConnections()
}

func mgAwait(t *testing.T, m *sandbox.MG, cond func() bool) {
	t.Helper()
	if err := m.Await(mgCtx(t), cond); err != nil {
		t.Fatalf("condition not met: %v", err)
	}
}

func TestMGAwaitHonoursContext(t *testing.T) {
	m := mgNew(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Await(ctx, func() bool { return false }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Await = %v", err)
	}
}
