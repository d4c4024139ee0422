package mg_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
)

func TestNewRejectsBadInput(t *testing.T) {
	const token = "tok-very-secret"
	tests := []struct {
		endpoint string
		token    bd.Secret
		want     string
	}{
		{"", token, "empty endpoint"},
		{"mg.example.com", token, "http or https"},
		{"ftp://mg.example.com", token, "http or https"},
		{"https://", token, "no host"},
		{"https://user:pass@mg.example.com", token, "credentials"},
		{"https://mg.example.com?x=1", token, "query"},
		{"https://mg.example.com/#f", token, "fragment"},
		{"https://mg.example.com/api/bot/v1/", token, "already ends with /api/bot/v1"},
		{"https://mg.example.com", "", "empty bot token"},
		{"https://mg.example.com", "tok en-very-secret", "whitespace"},
		{"https://mg.example.com", "tok\nvery-secret", "whitespace"},
	}
	for _, tt := range tests {
		_, err := mg.New(tt.endpoint, tt.token)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q): err = %v, want it to mention %q", tt.endpoint, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "very-secret") || strings.Contains(err.Error(), ":pass@") {
			t.Errorf("New(%q): error leaks a credential: %v", tt.endpoint, err)
		}
	}
	c, err := mg.New("https://mg-s1.retailcrm.pro/", token)
	if err != nil || c.Endpoint() != "https://mg-s1.retailcrm.pro" {
		t.Fatalf("valid endpoint: %v, %v", c, err)
	}
}

func TestBotsAndSelf(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ctx := testCtx(t)
	helper, _, err := m.AddBot("Helper", mg.RoleResponsible)
	if err != nil {
		t.Fatal(err)
	}
	self, err := c.SelfBot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if self.ID != m.BotID() || !self.IsSelf || !self.HasRole(mg.RoleDistributor) || self.CreatedAt.IsZero() {
		t.Fatalf("self = %+v", self)
	}
	bots, err := c.Bots(ctx, mg.BotsFilter{Roles: []string{mg.RoleResponsible}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bots) != 1 || bots[0].ID != helper || bots[0].IsSelf {
		t.Fatalf("responsible bots = %+v", bots)
	}
	all, err := c.Bots(ctx, mg.BotsFilter{Active: mg.Yes})
	if err != nil || len(all) != 2 {
		t.Fatalf("all bots = %+v, %v", all, err)
	}
	if got := m.CountRequests("GET", "/bots"); got != 3 {
		t.Fatalf("GET /bots requests = %d, want 3", got)
	}
	last := m.Requests()[len(m.Requests())-1]
	if last.Query != "active=1" {
		t.Fatalf("query = %q, want active=1", last.Query)
	}
}

func TestChannelsUsersCustomersChats(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ctx := testCtx(t)
	tg := channel(t, m, "telegram", "Shop TG")
	wa := channel(t, m, "whatsapp", "Shop WA")
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann", LastName: "Lee", Online: true})
	m.AddManager(sandbox.MGUser{FirstName: "Bob", Inactive: true})
	tech := m.AddManager(sandbox.MGUser{FirstName: "System", Technical: true})
	w := customer(t, m, wa, "c1", "hi")

	chans, err := c.Channels(ctx, mg.ChannelsFilter{Types: []string{"whatsapp"}, Active: mg.Yes})
	if err != nil || len(chans) != 1 || chans[0].ID != wa || chans[0].Name != "Shop WA" || len(chans[0].Settings) == 0 {
		t.Fatalf("whatsapp channels = %+v, %v", chans, err)
	}
	chans, _ = c.Channels(ctx, mg.ChannelsFilter{})
	if len(chans) != 2 || chans[0].ID != tg {
		t.Fatalf("channels = %+v", chans)
	}

	users, err := c.Users(ctx, mg.UsersFilter{Active: mg.Yes})
	if err != nil {
		t.Fatal(err)
	}
	var ids []bd.ManagerID
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	if !slices.Equal(ids, []bd.ManagerID{ann, tech}) {
		t.Fatalf("active users = %v, want [%d %d]", ids, ann, tech)
	}
	if !users[0].IsOnline || !users[0].Available || users[0].FirstName != "Ann" || !users[1].IsTechnicalAccount {
		t.Fatalf("users = %+v", users)
	}
	offline, _ := c.Users(ctx, mg.UsersFilter{Online: mg.No})
	if len(offline) != 2 {
		t.Fatalf("offline users = %+v", offline)
	}

	custs, err := c.Customers(ctx, mg.CustomersFilter{ExternalID: "c1"})
	if err != nil || len(custs) != 1 || custs[0].ID != w.Customer || custs[0].Phone != "+7900c1" || custs[0].ChannelID != wa {
		t.Fatalf("customers = %+v, %v", custs, err)
	}

	chats, err := c.Chats(ctx, mg.ChatsFilter{ID: int64(w.Chat)})
	if err != nil || len(chats) != 1 {
		t.Fatalf("chats = %+v, %v", chats, err)
	}
	ch := chats[0]
	if ch.Channel == nil || ch.Channel.ID != wa || ch.Customer == nil || ch.Customer.ID != int64(w.Customer) ||
		ch.LastDialog == nil || ch.LastDialog.ID != w.Dialog || ch.LastMessage == nil || ch.LastMessage.Content != "hi" {
		t.Fatalf("chat = %+v", ch)
	}
	if err := m.AssignAsPerson(w.Dialog, bd.ManagerOf(ann)); err != nil {
		t.Fatal(err)
	}
	chats, _ = c.Chats(ctx, mg.ChatsFilter{CustomerExternalID: "c1"})
	if got := chats[0].LastDialog.Responsible.Who(); got != bd.ManagerOf(ann) || chats[0].LastDialog.Responsible.FirstName != "Ann" {
		t.Fatalf("last dialog responsible (full form) = %+v", chats[0].LastDialog.Responsible)
	}
}

func TestDialogsFilters(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ctx := testCtx(t)
	ch := channel(t, m, "telegram", "TG")
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann", Online: true})
	var ws []sandbox.MGWritten
	for i := range 4 {
		ws = append(ws, customer(t, m, ch, fmt.Sprint("d", i), "hello"))
	}
	if err := m.AssignAsPerson(ws[1].Dialog, bd.ManagerOf(ann)); err != nil {
		t.Fatal(err)
	}
	if err := m.CloseDialog(ws[3].Dialog); err != nil {
		t.Fatal(err)
	}
	dialogIDs := func(f mg.DialogsFilter) []bd.DialogID {
		t.Helper()
		ds, err := c.Dialogs(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []bd.DialogID
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    mg.DialogsFilter
		want []bd.DialogID
	}{
		{"open unassigned", mg.DialogsFilter{Active: mg.Yes, Assigned: mg.No}, []bd.DialogID{ws[0].Dialog, ws[2].Dialog}},
		{"assigned", mg.DialogsFilter{Assigned: mg.Yes}, []bd.DialogID{ws[1].Dialog}},
		{"closed", mg.DialogsFilter{Active: mg.No}, []bd.DialogID{ws[3].Dialog}},
		{"by user", mg.DialogsFilter{UserID: int64(ann)}, []bd.DialogID{ws[1].Dialog}},
		{"by id", mg.DialogsFilter{ID: int64(ws[2].Dialog)}, []bd.DialogID{ws[2].Dialog}},
		{"by chat", mg.DialogsFilter{ChatID: int64(ws[0].Chat)}, []bd.DialogID{ws[0].Dialog}},
		{"since id", mg.DialogsFilter{Page: mg.Page{SinceID: int64(ws[1].Dialog)}}, []bd.DialogID{ws[2].Dialog, ws[3].Dialog}},
		{"limit", mg.DialogsFilter{Page: mg.Page{Limit: 2}}, []bd.DialogID{ws[0].Dialog, ws[1].Dialog}},
	}
	for _, tt := range tests {
		if got := dialogIDs(tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	ds, _ := c.Dialogs(ctx, mg.DialogsFilter{ID: int64(ws[1].Dialog)})
	d := ds[0]
	if !d.IsAssigned || d.Responsible.Who() != bd.ManagerOf(ann) || d.ChatID != ws[1].Chat || !d.IsActive || d.CreatedAt.IsZero() || d.BeginMessageID != ws[1].MessageID {
		t.Fatalf("dialog = %+v", d)
	}
	if _, err := c.Dialogs(ctx, mg.DialogsFilter{Page: mg.Page{Limit: 1001}}); err == nil || !strings.Contains(err.Error(), "limit 1001") {
		t.Fatalf("limit 1001: %v", err)
	}
}

func TestAllDialogsPagesUntilShortPage(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")
	var want []bd.DialogID
	for i := range 25 {
		want = append(want, customer(t, m, ch, fmt.Sprint("p", i), "hi").Dialog)
	}
	for _, tc := range []struct {
		limit, requests int
		want            []bd.DialogID
	}{
		{10, 3, want},      // 10, 10, 5
		{5, 6, want},       // 5 full pages, then an empty one
		{0, 1, want},       // MaxLimit: one short page
		{10, 3, want[:20]}, // two full pages, then an empty one
	} {
		f := mg.DialogsFilter{Active: mg.Yes, Page: mg.Page{Limit: tc.limit}}
		if len(tc.want) == 20 {
			f.Page.UntilID = int64(want[20])
		}
		before := m.CountRequests("GET", "/dialogs")
		got, err := mg.Collect(c.AllDialogs(testCtx(t), f))
		if err != nil {
			t.Fatal(err)
		}
		var ids []bd.DialogID
		for _, d := range got {
			ids = append(ids, d.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("limit %d: got %v, want %v", tc.limit, ids, tc.want)
		}
		if n := m.CountRequests("GET", "/dialogs") - before; n != tc.requests {
			t.Errorf("limit %d, %d dialogs: %d requests, want %d", tc.limit, len(tc.want), n, tc.requests)
		}
	}
}

func TestAllDialogsStopsOnError(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m, mg.WithRetry(mg.RetryPolicy{MaxAttempts: 1}))
	ch := channel(t, m, "telegram", "TG")
	for i := range 3 {
		customer(t, m, ch, fmt.Sprint("e", i), "hi")
	}
	if err := m.SetFaults(sandbox.MGFaults{FailNext: 1, FailStatus: 500}); err != nil {
		t.Fatal(err)
	}
	got, err := mg.Collect(c.AllDialogs(testCtx(t), mg.DialogsFilter{}))
	if !errors.Is(err, mg.ErrUnavailable) || len(got) != 0 {
		t.Fatalf("got %d dialogs, err %v; want ErrUnavailable", len(got), err)
	}
}

func TestAllUsers(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	for i := range 7 {
		m.AddManager(sandbox.MGUser{FirstName: fmt.Sprint("M", i)})
	}
	users, err := mg.Collect(c.AllUsers(testCtx(t), mg.UsersFilter{Page: mg.Page{Limit: 3}}))
	if err != nil || len(users) != 7 || users[6].FirstName != "M6" {
		t.Fatalf("users = %+v, %v", users, err)
	}
}

func TestAssignUnassignClose(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ctx := testCtx(t)
	ch := channel(t, m, "telegram", "TG")
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann"})
	bob := m.AddManager(sandbox.MGUser{FirstName: "Bob"})
	helper, _, _ := m.AddBot("Helper", mg.RoleResponsible)
	w := customer(t, m, ch, "a1", "hi")

	res, err := c.AssignDialog(ctx, w.Dialog, bd.ManagerOf(ann))
	if err != nil {
		t.Fatal(err)
	}
	if res.Responsible.Who() != bd.ManagerOf(ann) || res.IsReassign || res.PreviousResponsible != nil || res.LeftUserID != 0 {
		t.Fatalf("first assign = %+v", res)
	}
	res, err = c.AssignDialog(ctx, w.Dialog, bd.ManagerOf(bob))
	if err != nil {
		t.Fatal(err)
	}
	if res.Responsible.Who() != bd.ManagerOf(bob) || !res.IsReassign || res.PreviousResponsible.Who() != bd.ManagerOf(ann) || res.LeftUserID != int64(ann) {
		t.Fatalf("reassign = %+v", res)
	}
	if err := c.Assign(ctx, "any-account", w.Dialog, bd.BotOf(helper)); err != nil {
		t.Fatal(err)
	}
	if r, _ := m.Responsible(w.Dialog); r != bd.BotOf(helper) {
		t.Fatalf("MG responsible = %v, want bot %d", r, helper)
	}
	ds, _ := c.Dialogs(ctx, mg.DialogsFilter{ID: int64(w.Dialog)})
	if ds[0].BotID != helper {
		t.Fatalf("bot_id = %d, want %d", ds[0].BotID, helper)
	}

	un, err := c.UnassignDialog(ctx, w.Dialog)
	if err != nil || un.PreviousResponsible.Who() != bd.BotOf(helper) {
		t.Fatalf("unassign = %+v, %v", un, err)
	}
	if _, err := c.UnassignDialog(ctx, w.Dialog); !errors.Is(err, mg.ErrDialogNotAssigned) {
		t.Fatalf("second unassign: %v, want ErrDialogNotAssigned", err)
	}

	if err := c.CloseDialog(ctx, w.Dialog); err != nil {
		t.Fatal(err)
	}
	if d, _ := m.Dialog(w.Dialog); d.Active {
		t.Fatal("dialog still active after close")
	}
	var apiErr *mg.APIError
	if err := c.CloseDialog(ctx, w.Dialog); !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("second close: %v, want a 400 APIError", err)
	}

	// The customer writes again: a new dialog opens and the old one is no
	// longer the latest of the chat.
	w2 := customer(t, m, ch, "a1", "me again")
	if w2.Dialog == w.Dialog || w2.Chat != w.Chat || !w2.Opened {
		t.Fatalf("second dialog = %+v", w2)
	}
	if _, err := c.AssignDialog(ctx, w.Dialog, bd.ManagerOf(ann)); !errors.Is(err, mg.ErrDialogNotLatest) {
		t.Fatalf("assign old dialog: %v, want ErrDialogNotLatest", err)
	}

	_, err = c.AssignDialog(ctx, 999999, bd.ManagerOf(ann))
	if !errors.Is(err, mg.ErrNotFound) || !errors.As(err, &apiErr) || apiErr.Errors[0] != "dialog #999999 not found" {
		t.Fatalf("unknown dialog: %v", err)
	}
	if err := c.CloseDialog(ctx, 999999); !errors.Is(err, mg.ErrNotFound) {
		t.Fatalf("close unknown dialog: %v", err)
	}
	for _, to := range []bd.Responsible{{}, bd.ManagerOf(0), bd.BotOf(-1)} {
		if _, err := c.AssignDialog(ctx, w2.Dialog, to); err == nil {
			t.Errorf("assign to %v: want an error", to)
		}
	}
	if _, err := c.AssignDialog(ctx, 0, bd.ManagerOf(ann)); err == nil {
		t.Error("assign dialog 0: want an error")
	}
}

func TestSendMessageAndMessages(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ctx := testCtx(t)
	ch := channel(t, m, "telegram", "TG")
	w := customer(t, m, ch, "s1", "where is my order?")

	res, err := c.SendMessage(ctx, mg.SendMessageRequest{ChatID: w.Chat, Scope: mg.ScopePublic, Content: "On its way"})
	if err != nil || res.MessageID == 0 || res.Time.IsZero() {
		t.Fatalf("send = %+v, %v", res, err)
	}
	if err := c.Send(ctx, "acc", w.Chat, "Anything else?"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendMessage(ctx, mg.SendMessageRequest{ChatID: w.Chat, Scope: mg.ScopePrivate, Content: "note"}); err != nil {
		t.Fatal(err)
	}
	await(t, m, "two deliveries", func() bool { return len(m.Delivered(w.Chat)) == 2 })
	got := m.Delivered(w.Chat)
	if got[0].Text != "On its way" || got[1].Text != "Anything else?" || got[0].Bot != "Distributor" || got[0].CustomerExternalID != "s1" {
		t.Fatalf("delivered = %+v", got)
	}

	msgs, err := c.Messages(ctx, mg.MessagesFilter{DialogID: int64(w.Dialog)})
	if err != nil || len(msgs) != 4 {
		t.Fatalf("messages = %+v, %v", msgs, err)
	}
	if msgs[0].From.Type != mg.TypeCustomer || msgs[1].From.Type != mg.TypeBot || msgs[1].ID != res.MessageID || msgs[3].Scope != mg.ScopePrivate {
		t.Fatalf("messages = %+v", msgs)
	}
	if msgs[1].Time.IsZero() || msgs[1].DialogID() != w.Dialog {
		t.Fatalf("message time/dialog not decoded: %+v", msgs[1])
	}
	fromCustomer, _ := c.Messages(ctx, mg.MessagesFilter{ChatID: int64(w.Chat), CustomerID: int64(w.Customer)})
	if len(fromCustomer) != 1 || fromCustomer[0].Content != "where is my order?" {
		t.Fatalf("customer messages = %+v", fromCustomer)
	}
	public, _ := c.Messages(ctx, mg.MessagesFilter{ChatID: int64(w.Chat), Scope: mg.ScopePublic, BotID: int64(m.BotID())})
	if len(public) != 2 {
		t.Fatalf("public bot messages = %+v", public)
	}

	before := len(m.Requests())
	for _, bad := range []mg.SendMessageRequest{
		{Scope: mg.ScopePublic, Content: "x"},
		{ChatID: w.Chat, Content: "x"},
		{ChatID: w.Chat, Scope: "everyone", Content: "x"},
		{ChatID: w.Chat, Scope: mg.ScopePublic},
	} {
		if _, err := c.SendMessage(ctx, bad); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
	if len(m.Requests()) != before {
		t.Fatal("invalid messages must be refused before any request")
	}
	if _, err := c.SendMessage(ctx, mg.SendMessageRequest{ChatID: 424242, Scope: mg.ScopePublic, Content: "x"}); !errors.Is(err, mg.ErrNotFound) {
		t.Fatalf("unknown chat: %v", err)
	}
}

func TestRetriesIdempotentCalls(t *testing.T) {
	for _, status := range []int{500, 502, 503, 504, 429} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			m := newMG(t)
			c := newClient(t, m)
			ctx := testCtx(t)
			ch := channel(t, m, "telegram", "TG")
			ann := m.AddManager(sandbox.MGUser{FirstName: "Ann"})
			w := customer(t, m, ch, "r1", "hi")

			mustFaults(t, m, sandbox.MGFaults{FailNext: 2, FailStatus: status})
			users, err := c.Users(ctx, mg.UsersFilter{})
			if err != nil || len(users) != 1 {
				t.Fatalf("users after 2 failures: %+v, %v", users, err)
			}
			if n := m.CountRequests("GET", "/users"); n != 3 {
				t.Fatalf("GET /users requests = %d, want 3", n)
			}

			mustFaults(t, m, sandbox.MGFaults{FailNext: 3, FailStatus: status})
			path := fmt.Sprintf("/dialogs/%d/assign", w.Dialog)
			if err := c.Assign(ctx, "", w.Dialog, bd.ManagerOf(ann)); err != nil {
				t.Fatalf("assign after 3 failures: %v", err)
			}
			if n := m.CountRequests("PATCH", path); n != 4 {
				t.Fatalf("assign requests = %d, want 4", n)
			}

			mustFaults(t, m, sandbox.MGFaults{FailNext: 100, FailStatus: status})
			_, err = c.Channels(ctx, mg.ChannelsFilter{})
			var apiErr *mg.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != status {
				t.Fatalf("exhausted retries: %v", err)
			}
			want := mg.ErrUnavailable
			if status == 429 {
				want = mg.ErrRateLimited
			}
			if !errors.Is(err, want) {
				t.Fatalf("exhausted retries: %v, want %v", err, want)
			}
			if n := m.CountRequests("GET", "/channels"); n != 4 {
				t.Fatalf("GET /channels requests = %d, want 4 (MaxAttempts)", n)
			}
		})
	}
}

func mustFaults(t *testing.T, m *sandbox.MG, f sandbox.MGFaults) {
	t.Helper()
	if err := m.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

func TestNonIdempotentCallsRetryOnlyRefusals(t *testing.T) {
	tests := []struct {
		status    int
		requests  int  // per call
		ok        bool // the call succeeds in the end
		ambiguous bool
	}{
		{429, 2, true, false},
		{503, 2, true, false},
		{500, 1, false, true},
		{502, 1, false, true},
		{504, 1, false, true},
		{501, 1, false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			m := newMG(t)
			c := newClient(t, m)
			ctx := testCtx(t)
			ch := channel(t, m, "telegram", "TG")
			ann := m.AddManager(sandbox.MGUser{FirstName: "Ann"})
			w := customer(t, m, ch, "n1", "hi")
			if _, err := c.AssignDialog(ctx, w.Dialog, bd.ManagerOf(ann)); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error, method, path string) {
				t.Helper()
				if (err == nil) != tt.ok {
					t.Fatalf("%s: err = %v, want success %v", what, err, tt.ok)
				}
				if got := errors.Is(err, mg.ErrAmbiguous); got != tt.ambiguous {
					t.Fatalf("%s: errors.Is(%v, ErrAmbiguous) = %v, want %v", what, err, got, tt.ambiguous)
				}
				if n := m.CountRequests(method, path); n != tt.requests {
					t.Fatalf("%s: %d requests, want %d", what, n, tt.requests)
				}
			}

			mustFaults(t, m, sandbox.MGFaults{FailNext: 1, FailStatus: tt.status})
			check("send", c.Send(ctx, "", w.Chat, "hello"), "POST", "/messages")
			want := 1
			if tt.ok {
				want = 2
			}
			if msgs := m.Messages(w.Chat); len(msgs) != want {
				t.Fatalf("MG holds %d messages, want %d", len(msgs), want)
			}

			mustFaults(t, m, sandbox.MGFaults{FailNext: 1, FailStatus: tt.status})
			_, err := c.UnassignDialog(ctx, w.Dialog)
			check("unassign", err, "PATCH", fmt.Sprintf("/dialogs/%d/unassign", w.Dialog))
			mustFaults(t, m, sandbox.MGFaults{FailNext: 1, FailStatus: tt.status})
			check("close", c.CloseDialog(ctx, w.Dialog), "DELETE", fmt.Sprintf("/dialogs/%d/close", w.Dialog))
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	m := newMG(t)
	var slept []time.Duration
	record := func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	c := newClient(t, m, mg.WithRetry(mg.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, Sleep: record}))
	mustFaults(t, m, sandbox.MGFaults{FailNext: 1, FailStatus: 429, RetryAfter: 3 * time.Second})
	if _, err := c.Users(testCtx(t), mg.UsersFilter{}); err != nil {
		t.Fatal(err)
	}
	if len(slept) != 1 || slept[0] != 3*time.Second {
		t.Fatalf("slept %v, want [3s] from Retry-After", slept)
	}

	slept = nil
	c = newClient(t, m, mg.WithRetry(mg.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxRetryAfter: time.Second, Sleep: record}))
	mustFaults(t, m, sandbox.MGFaults{FailNext: 1, FailStatus: 429, RetryAfter: 3 * time.Second})
	before := m.CountRequests("GET", "/users")
	_, err := c.Users(testCtx(t), mg.UsersFilter{})
	if !errors.Is(err, mg.ErrRateLimited) || len(slept) != 0 || m.CountRequests("GET", "/users")-before != 1 {
		t.Fatalf("Retry-After beyond MaxRetryAfter: err %v, slept %v", err, slept)
	}
}

func TestRetriesStopWhenContextEnds(t *testing.T) {
	m := newMG(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	c := newClient(t, m, mg.WithRetry(mg.RetryPolicy{MaxAttempts: 10, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond,
		Sleep: func(context.Context, time.Duration) error { cancel(); return context.Canceled }}))
	mustFaults(t, m, sandbox.MGFaults{FailNext: 100})
	_, err := c.Users(ctx, mg.UsersFilter{})
	if !errors.Is(err, mg.ErrUnavailable) || m.CountRequests("GET", "/users") != 1 {
		t.Fatalf("err %v after %d requests", err, m.CountRequests("GET", "/users"))
	}
	_, err = c.Users(ctx, mg.UsersFilter{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("call on a cancelled context: %v", err)
	}
}

func TestRandomFaultsAreAbsorbedByRetries(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m, mg.WithRetry(mg.RetryPolicy{MaxAttempts: 12, BaseDelay: time.Microsecond, MaxDelay: time.Microsecond}))
	m.AddManager(sandbox.MGUser{FirstName: "Ann"})
	mustFaults(t, m, sandbox.MGFaults{ServerErrorRatio: 0.3, RateLimitRatio: 0.1})
	for i := range 50 {
		if users, err := c.Users(testCtx(t), mg.UsersFilter{}); err != nil || len(users) != 1 {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	injected := 0
	for _, r := range m.Requests() {
		if r.Injected {
			injected++
		}
	}
	if injected == 0 {
		t.Fatal("no fault was injected")
	}
}

func TestLatencyFaultRespectsContext(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m, mg.WithRetry(mg.RetryPolicy{MaxAttempts: 1}))
	mustFaults(t, m, sandbox.MGFaults{Latency: time.Hour})
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { _, err := c.Users(ctx, mg.UsersFilter{}); done <- err }()
	await(t, m, "the request to arrive", func() bool { return m.CountRequests("GET", "/users") == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestTokenNeverInErrorsOrLogs(t *testing.T) {
	m := newMG(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	token := m.BotToken().Reveal()
	var errs []error
	keep := func(err error) {
		if err == nil {
			t.Error("expected an error")
			return
		}
		errs = append(errs, err)
	}

	c := newClient(t, m, mg.WithLogger(logger))
	ctx := testCtx(t)
	_, err := c.Dialogs(ctx, mg.DialogsFilter{Page: mg.Page{Limit: -1}})
	keep(err)
	_, err = c.AssignDialog(ctx, 4242, bd.ManagerOf(1))
	keep(err)
	mustFaults(t, m, sandbox.MGFaults{FailNext: 100})
	_, err = c.Users(ctx, mg.UsersFilter{})
	keep(err)
	keep(c.Send(ctx, "", 5000, "hi"))
	mustFaults(t, m, sandbox.MGFaults{})
	wrong := newClientToken(t, m, bd.Secret(token+"x"), mg.WithLogger(logger))
	_, err = wrong.SelfBot(ctx)
	keep(err)
	if !errors.Is(err, mg.ErrUnauthorized) {
		t.Errorf("wrong token: %v, want ErrUnauthorized", err)
	}
	keep(wrong.Events(ctx, []string{mg.EventDialogOpened}, func(context.Context, mg.Event) error { return nil }))

	// A server that echoes the token back in its error answer.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"errors":["bad token %s"]}`, r.Header.Get("X-Bot-Token"))
	}))
	defer echo.Close()
	ec, err := mg.New(echo.URL, m.BotToken(), mg.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ec.Users(ctx, mg.UsersFilter{})
	keep(err)
	// An endpoint nobody listens on: a transport error.
	m2, _ := sandbox.NewMG()
	deadURL := m2.URL()
	m2.Close()
	dead, _ := mg.New(deadURL, m.BotToken(), mg.WithLogger(logger), mg.WithRetry(fastRetry))
	_, err = dead.Users(ctx, mg.UsersFilter{})
	keep(err)
	keep(dead.Events(ctx, []string{mg.EventDialogOpened}, func(context.Context, mg.Event) error { return nil }, mg.WithBackoff(mg.Backoff{Sleep: func(context.Context, time.Duration) error { return errors.New("give up") }})))

	for _, err := range errs {
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(s, token) {
				t.Errorf("error leaks the token: %s", s)
			}
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no debug logs were written")
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("logs leak the token:\n%s", logs.String())
	}
}
