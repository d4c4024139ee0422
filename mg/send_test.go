package mg_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/sandbox"
)

// sleeps records the delays a client waits instead of waiting them.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

// sendFixture is a sandbox MG with one customer's dialog and a client that
// records its waits.
type sendFixture struct {
	m     *sandbox.MG
	c     *mg.Client
	slept *sleeps
	w     sandbox.MGWritten
}

func newSendFixture(t *testing.T, p mg.RetryPolicy) *sendFixture {
	t.Helper()
	m := newMG(t)
	s := &sleeps{}
	if p.BaseDelay == 0 {
		p.BaseDelay, p.MaxDelay = time.Millisecond, 2*time.Millisecond
	}
	p.Sleep = s.sleep
	c := newClient(t, m, mg.WithRetry(p))
	ch := channel(t, m, "telegram", "TG")
	return &sendFixture{m: m, c: c, slept: s, w: customer(t, m, ch, "s1", "hello")}
}

func (f *sendFixture) botMessages() []sandbox.MGMessage { return f.m.BotMessages(f.w.Dialog) }

func TestSendRetriesRefusedAnswersAfterTheServersDelay(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter time.Duration
		wantSlept  []time.Duration // nil: backoff, not checked exactly
	}{
		{"429 with Retry-After", 429, 2 * time.Second, []time.Duration{2 * time.Second, 2 * time.Second}},
		{"503 with Retry-After", 503, time.Second, []time.Duration{time.Second, time.Second}},
		{"429 without Retry-After", 429, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSendFixture(t, mg.RetryPolicy{})
			mustFaults(t, f.m, sandbox.MGFaults{FailNext: 2, FailStatus: tt.status, RetryAfter: tt.retryAfter})
			res, err := f.c.SendMessage(testCtx(t), mg.SendMessageRequest{ChatID: f.w.Chat, Scope: mg.ScopePublic, Content: "Thanks!"})
			if err != nil {
				t.Fatalf("send after 2 refusals: %v", err)
			}
			if n := f.m.CountRequests("POST", "/messages"); n != 3 {
				t.Fatalf("POST /messages requests = %d, want 3", n)
			}
			got := f.botMessages()
			if len(got) != 1 || got[0].ID != res.MessageID || got[0].Text != "Thanks!" {
				t.Fatalf("bot messages = %+v, want exactly the one sent", got)
			}
			slept := f.slept.got()
			if len(slept) != 2 {
				t.Fatalf("slept %v, want 2 waits", slept)
			}
			if tt.wantSlept != nil && !slices.Equal(slept, tt.wantSlept) {
				t.Fatalf("slept %v, want %v", slept, tt.wantSlept)
			}
		})
	}
}

func TestSendGivesUpOnRefusalsAndReportsTheDelay(t *testing.T) {
	tests := []struct {
		name       string
		policy     mg.RetryPolicy
		retryAfter time.Duration
		requests   int
		slept      []time.Duration
	}{
		{"attempts used up", mg.RetryPolicy{}, time.Second, 3, []time.Duration{time.Second, time.Second}},
		{"wait budget used up", mg.RetryPolicy{RefusedAttempts: 10}, 4 * time.Second, 3, []time.Duration{4 * time.Second, 4 * time.Second}},
		{"delay beyond the budget", mg.RetryPolicy{}, 20 * time.Second, 1, nil},
		{"delay beyond MaxRetryAfter", mg.RetryPolicy{MaxRetryAfter: time.Second, RefusedMaxWait: time.Minute}, 5 * time.Second, 1, nil},
		{"retries disabled", mg.RetryPolicy{RefusedAttempts: 1}, time.Second, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSendFixture(t, tt.policy)
			mustFaults(t, f.m, sandbox.MGFaults{FailNext: 100, FailStatus: 429, RetryAfter: tt.retryAfter})
			err := f.c.Send(testCtx(t), "acc", f.w.Chat, "Thanks!")
			var apiErr *mg.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != 429 || !errors.Is(err, mg.ErrRateLimited) {
				t.Fatalf("err = %v, want MG's 429", err)
			}
			if errors.Is(err, mg.ErrAmbiguous) {
				t.Fatalf("a refusal is not ambiguous: %v", err)
			}
			if d, ok := mg.RetryAfter(err); !ok || d != tt.retryAfter {
				t.Fatalf("RetryAfter = %v, %v; want %v", d, ok, tt.retryAfter)
			}
			if n := f.m.CountRequests("POST", "/messages"); n != tt.requests {
				t.Fatalf("POST /messages requests = %d, want %d", n, tt.requests)
			}
			if got := f.slept.got(); !slices.Equal(got, tt.slept) {
				t.Fatalf("slept %v, want %v", got, tt.slept)
			}
			if got := f.botMessages(); len(got) != 0 {
				t.Fatalf("refused messages were stored: %+v", got)
			}
		})
	}
}

func TestSendStopsRetryingWhenContextEnds(t *testing.T) {
	f := newSendFixture(t, mg.RetryPolicy{})
	mustFaults(t, f.m, sandbox.MGFaults{FailNext: 100, FailStatus: 503, RetryAfter: time.Second})
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if err := f.c.Send(ctx, "", f.w.Chat, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	if n := f.m.CountRequests("POST", "/messages"); n != 0 {
		t.Fatalf("%d requests on a cancelled context", n)
	}

	ctx, cancel = context.WithCancel(testCtx(t))
	c := newClient(t, f.m, mg.WithRetry(mg.RetryPolicy{Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}}))
	err := c.Send(ctx, "", f.w.Chat, "x")
	if !errors.Is(err, mg.ErrUnavailable) || errors.Is(err, mg.ErrAmbiguous) {
		t.Fatalf("cancelled while waiting: %v, want the 503", err)
	}
	if n := f.m.CountRequests("POST", "/messages"); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestSendFailuresAfterApplyAreAmbiguous(t *testing.T) {
	tests := []struct {
		name   string
		faults sandbox.MGFaults
		landed bool
	}{
		{"502 after apply", sandbox.MGFaults{ErrAfterApplyNext: 1}, true},
		{"500 after apply", sandbox.MGFaults{ErrAfterApplyNext: 1, ErrAfterApplyStatus: 500}, true},
		{"504 after apply", sandbox.MGFaults{ErrAfterApplyNext: 1, ErrAfterApplyStatus: 504}, true},
		{"connection dropped after apply", sandbox.MGFaults{ErrAfterApplyNext: 1, DropAfterApply: true}, true},
		{"502 before apply", sandbox.MGFaults{FailNext: 1, FailStatus: 502}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSendFixture(t, mg.RetryPolicy{})
			ctx := testCtx(t)
			mustFaults(t, f.m, tt.faults)
			err := f.c.Send(ctx, "acc", f.w.Chat, "Your order is on its way")
			if !errors.Is(err, mg.ErrAmbiguous) {
				t.Fatalf("err = %v, want ErrAmbiguous", err)
			}
			if _, ok := mg.RetryAfter(err); ok {
				t.Fatalf("RetryAfter reports a delay for %v", err)
			}
			if n := f.m.CountRequests("POST", "/messages"); n != 1 {
				t.Fatalf("POST /messages requests = %d, want 1: an ambiguous failure is not retried", n)
			}
			if got := len(f.botMessages()); got != map[bool]int{true: 1, false: 0}[tt.landed] {
				t.Fatalf("MG holds %d bot messages, landed = %v", got, tt.landed)
			}
			sent, err := f.c.HasSent(ctx, "acc", f.w.Chat, f.w.Dialog, "Your order is on its way")
			if err != nil || sent != tt.landed {
				t.Fatalf("HasSent = %v, %v; want %v", sent, err, tt.landed)
			}
		})
	}
}

func TestSendTimeoutIsAmbiguous(t *testing.T) {
	f := newSendFixture(t, mg.RetryPolicy{})
	mustFaults(t, f.m, sandbox.MGFaults{Latency: time.Hour, Match: func(method, _ string) bool { return method == http.MethodPost }})
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- f.c.Send(ctx, "", f.w.Chat, "x") }()
	await(t, f.m, "the request to arrive", func() bool { return f.m.CountRequests("POST", "/messages") == 1 })
	cancel()
	err := <-done
	if !errors.Is(err, mg.ErrAmbiguous) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrAmbiguous and context.Canceled", err)
	}
}

func TestSendToUnreachableMGIsNotAmbiguous(t *testing.T) {
	m2, err := sandbox.NewMG()
	if err != nil {
		t.Fatal(err)
	}
	deadURL := m2.URL()
	m2.Close()
	c, err := mg.New(deadURL, "token", mg.WithRetry(mg.RetryPolicy{Sleep: (&sleeps{}).sleep}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Send(testCtx(t), "", 5000, "x")
	if err == nil || errors.Is(err, mg.ErrAmbiguous) {
		t.Fatalf("err = %v: a refused connection never reached MG", err)
	}
}

func TestSendRefusedByMGIsNotAmbiguous(t *testing.T) {
	f := newSendFixture(t, mg.RetryPolicy{})
	err := f.c.Send(testCtx(t), "", 424242, "x")
	if !errors.Is(err, mg.ErrNotFound) || errors.Is(err, mg.ErrAmbiguous) {
		t.Fatalf("unknown chat: %v", err)
	}
	if n := f.m.CountRequests("POST", "/messages"); n != 1 {
		t.Fatalf("POST /messages requests = %d, want 1", n)
	}
}

func TestHasSent(t *testing.T) {
	f := newSendFixture(t, mg.RetryPolicy{})
	m, c, w := f.m, f.c, f.w
	ctx := testCtx(t)
	ch := channel(t, m, "whatsapp", "WA")
	other := customer(t, m, ch, "o1", "hi")
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann"})
	_, helperToken, err := m.AddBot("Helper", mg.RoleResponsible)
	if err != nil {
		t.Fatal(err)
	}
	helper := newClientToken(t, m, helperToken)

	if err := c.Send(ctx, "", w.Chat, "Hello from the bot"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendMessage(ctx, mg.SendMessageRequest{ChatID: w.Chat, Scope: mg.ScopePrivate, Content: "Private note"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ManagerWrites(ann, w.Chat, "Written by Ann"); err != nil {
		t.Fatal(err)
	}
	if err := helper.Send(ctx, "", w.Chat, "Written by the helper bot"); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, "", other.Chat, "Sent to the other chat"); err != nil {
		t.Fatal(err)
	}
	// The dialog closes and the customer opens a new one.
	if err := m.CloseDialog(w.Dialog); err != nil {
		t.Fatal(err)
	}
	w2 := customer(t, m, channelOf(t, m, w.Dialog), "s1", "me again")
	if w2.Chat != w.Chat || w2.Dialog == w.Dialog {
		t.Fatalf("second dialog = %+v", w2)
	}
	if err := c.Send(ctx, "", w.Chat, "Second dialog reply"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		chat   bd.ChatID
		dialog bd.DialogID
		text   string
		want   bool
	}{
		{"sent", w.Chat, w.Dialog, "Hello from the bot", true},
		{"sent, any dialog", w.Chat, 0, "Hello from the bot", true},
		{"other text", w.Chat, w.Dialog, "Hello from the bot!", false},
		{"prefix only", w.Chat, w.Dialog, "Hello", false},
		{"private note", w.Chat, w.Dialog, "Private note", false},
		{"written by a manager", w.Chat, w.Dialog, "Written by Ann", false},
		{"written by another bot", w.Chat, w.Dialog, "Written by the helper bot", false},
		{"another chat", w.Chat, 0, "Sent to the other chat", false},
		{"in that chat", other.Chat, other.Dialog, "Sent to the other chat", true},
		{"later dialog", w.Chat, w.Dialog, "Second dialog reply", false},
		{"in the later dialog", w.Chat, w2.Dialog, "Second dialog reply", true},
		{"not in the later dialog", w.Chat, w2.Dialog, "Hello from the bot", false},
	}
	for _, tt := range tests {
		got, err := c.HasSent(ctx, "acc", tt.chat, tt.dialog, tt.text)
		if err != nil || got != tt.want {
			t.Errorf("%s: HasSent = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if n := m.CountRequests("GET", "/bots"); n != 1 {
		t.Errorf("GET /bots requests = %d, want 1: the own bot id is kept", n)
	}
	for _, q := range requestQueries(m, "GET", "/messages") {
		if q.Get("bot_id") != "1" || q.Get("chat_id") == "" || q.Get("scope") != mg.ScopePublic {
			t.Errorf("GET /messages?%s: want chat_id, bot_id=1 and scope=public", q.Encode())
		}
	}
	if _, err := c.HasSent(ctx, "", 0, 0, "x"); err == nil {
		t.Error("chat 0: want an error")
	}
	mustFaults(t, m, sandbox.MGFaults{FailNext: 100, FailStatus: 500})
	if _, err := c.HasSent(ctx, "", w.Chat, w.Dialog, "Hello from the bot"); !errors.Is(err, mg.ErrUnavailable) {
		t.Errorf("HasSent with MG down: %v, want ErrUnavailable", err)
	}
}

func channelOf(t *testing.T, m *sandbox.MG, dialog bd.DialogID) bd.ChannelID {
	t.Helper()
	d, ok := m.Dialog(dialog)
	if !ok {
		t.Fatalf("dialog %d not found", dialog)
	}
	return d.Channel
}

func TestDialogStatus(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ctx := testCtx(t)
	ch := channel(t, m, "telegram", "TG")
	open := customer(t, m, ch, "a", "hi")
	closed := customer(t, m, ch, "b", "hi")
	old := customer(t, m, ch, "c", "hi")
	if err := m.CloseDialog(closed.Dialog); err != nil {
		t.Fatal(err)
	}
	if err := m.CloseDialog(old.Dialog); err != nil {
		t.Fatal(err)
	}
	newer := customer(t, m, ch, "c", "again")
	if newer.Dialog == old.Dialog {
		t.Fatal("no new dialog opened")
	}

	tests := []struct {
		name                 string
		dialog               bd.DialogID
		found, active, latst bool
		latestID             bd.DialogID
	}{
		{"open", open.Dialog, true, true, true, open.Dialog},
		{"closed", closed.Dialog, true, false, true, closed.Dialog},
		{"superseded", old.Dialog, true, false, false, newer.Dialog},
		{"newer", newer.Dialog, true, true, true, newer.Dialog},
		{"unknown", 99999, false, false, false, 0},
	}
	for _, tt := range tests {
		st, err := c.DialogStatus(ctx, tt.dialog)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if st.Found != tt.found || st.Active != tt.active || st.Latest() != tt.latst || st.LatestID != tt.latestID {
			t.Errorf("%s: status %+v (%s)", tt.name, st, st)
		}
		want := tt.found && tt.active && tt.latst
		if st.Open() != want {
			t.Errorf("%s: Open() = %v, want %v", tt.name, st.Open(), want)
		}
		got, err := c.DialogOpen(ctx, "acc", tt.dialog)
		if err != nil || got != want {
			t.Errorf("%s: DialogOpen = %v, %v; want %v", tt.name, got, err, want)
		}
	}
	if _, err := c.DialogStatus(ctx, 0); err == nil {
		t.Error("dialog 0: want an error")
	}
	mustFaults(t, m, sandbox.MGFaults{FailNext: 100})
	if _, err := c.DialogOpen(ctx, "acc", open.Dialog); !errors.Is(err, mg.ErrUnavailable) {
		t.Errorf("MG down: %v, want ErrUnavailable", err)
	}
}

func TestClientPortsSendAndCheck(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ctx := testCtx(t)
	w := customer(t, m, channel(t, m, "telegram", "TG"), "a", "hi")
	if err := c.Send(ctx, "shop", w.Chat, "Hi!"); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.HasSent(ctx, "shop", w.Chat, w.Dialog, "Hi!"); !ok || err != nil {
		t.Fatalf("HasSent = %v, %v", ok, err)
	}
	if ok, err := c.HasSent(ctx, "shop", w.Chat, w.Dialog, "Bye!"); ok || err != nil {
		t.Fatalf("HasSent of a text never sent = %v, %v", ok, err)
	}
	if ok, err := c.DialogOpen(ctx, "shop", w.Dialog); !ok || err != nil {
		t.Fatalf("DialogOpen = %v, %v", ok, err)
	}
}

// requestQueries returns the parsed queries of the requests MG received
// with the method and path.
func requestQueries(m *sandbox.MG, method, path string) []url.Values {
	var out []url.Values
	for _, r := range m.Requests() {
		if r.Method == method && r.Path == path {
			q, _ := url.ParseQuery(r.Query)
			out = append(out, q)
		}
	}
	return out
}

// A reply job that retries reply.Template over the client until it
// succeeds posts every reply exactly once, while MG loses answers after
// taking the message, fails before taking it, and throttles.
func TestTemplateOverClientRepliesExactlyOnce(t *testing.T) {
	f := newSendFixture(t, mg.RetryPolicy{})
	m, c := f.m, f.c
	ctx := testCtx(t)
	ch := channel(t, m, "telegram", "Shop")
	var dialogs []sandbox.MGWritten
	for i := range 40 {
		dialogs = append(dialogs, customer(t, m, ch, fmt.Sprint("x", i), "hi"))
	}
	tmpl, err := reply.NewTemplate(c)
	if err != nil {
		t.Fatal(err)
	}
	mustFaults(t, m, sandbox.MGFaults{ErrAfterApply: 0.3, ServerErrorRatio: 0.2, RateLimitRatio: 0.1, RetryAfter: time.Second})
	ambiguous := 0
	for _, w := range dialogs {
		req := reply.Request{Dialog: bd.Dialog{Account: "shop", ID: w.Dialog, Chat: w.Chat, Customer: bd.Customer{FirstName: "Bob"}},
			Situation: bd.NoManagerOnline, Text: "Sorry {{.Customer}}, nobody is online."}
		for attempt := 1; ; attempt++ {
			if attempt > 30 {
				t.Fatalf("dialog %d: no success after 30 attempts", w.Dialog)
			}
			req.Attempt = attempt
			err := tmpl.Reply(ctx, req)
			if err == nil {
				break
			}
			if errors.Is(err, mg.ErrAmbiguous) {
				ambiguous++
			}
		}
	}
	mustFaults(t, m, sandbox.MGFaults{})
	for _, w := range dialogs {
		got := m.BotMessages(w.Dialog)
		if len(got) != 1 || got[0].Text != "Sorry Bob, nobody is online." {
			t.Errorf("dialog %d: bot messages %+v, want exactly one reply", w.Dialog, got)
		}
	}
	applied := 0
	for _, r := range m.Requests() {
		if r.Applied && r.Method == "POST" {
			applied++
		}
	}
	if ambiguous == 0 || applied == 0 {
		t.Fatalf("the faults did not bite: %d ambiguous failures, %d answers lost after apply", ambiguous, applied)
	}
}
