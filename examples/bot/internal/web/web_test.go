package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
	"github.com/botdistributor/botdistributor/examples/bot/internal/web"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/sandbox"
)

// formFor is the settings form as the page submits it for s.
func formFor(csrf string, s bd.Settings) url.Values {
	v := url.Values{"csrf": {csrf}}
	for _, m := range s.Managers {
		v.Add("manager", m.String())
	}
	for m, c := range s.Capacity {
		v.Set("capacity_"+m.String(), strconv.Itoa(c))
	}
	v.Set("default_capacity", strconv.Itoa(s.DefaultCapacity))
	v.Set("strategy", s.Strategy)
	v.Set("availability", string(s.Availability))
	v.Set("reassign", string(s.Reassign))
	for sit, text := range s.Replies {
		v.Set("reply_"+string(sit), text)
	}
	for c, r := range s.Channels {
		prefix := fmt.Sprintf("channel_%d_", c)
		v.Set(prefix+"target", string(r.Target))
		for _, m := range r.Managers {
			v.Add(prefix+"manager", m.String())
		}
		if r.Bot != 0 {
			v.Set(prefix+"bot", strconv.FormatInt(int64(r.Bot), 10))
		}
	}
	if s.Active {
		v.Set("active", "on")
	}
	if s.AutoBind {
		v.Set("auto_bind", "on")
	}
	if s.AutoCreate {
		v.Set("auto_create", "on")
	}
	if s.Sticky {
		v.Set("sticky", "on")
	}
	return v
}

func accountID(path string) bd.AccountID {
	id, _ := url.PathUnescape(strings.TrimPrefix(path, "/accounts/"))
	return bd.AccountID(id)
}

func TestNewNeedsAPassword(t *testing.T) {
	h := newHarness(t)
	if _, err := web.New(web.Config{Backend: h.sup}); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("New without a password: %v", err)
	}
}

// Every page but the login page needs a logged-in session.
func TestPagesNeedLogin(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/", "/accounts/x", "/accounts/x/decisions"} {
		if r := h.get(path); r.status != http.StatusSeeOther || r.location != "/login" {
			t.Errorf("GET %s without login: %d to %q", path, r.status, r.location)
		}
	}
	// A POST with a valid CSRF token of an anonymous session is still refused.
	token := h.csrf("/login")
	if r := h.post("/connect", url.Values{"csrf": {token}, "domain": {h.env.CRM.URL()}, "api_key": {bottest.FullKey}}); r.status != http.StatusForbidden {
		t.Errorf("POST /connect without login: %d", r.status)
	}
	if n := len(h.sup.Accounts(context.Background())); n != 0 {
		t.Fatalf("%d accounts connected without login", n)
	}

	r := h.post("/login", url.Values{"csrf": {token}, "user": {adminUser}, "password": {"wrong"}})
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Wrong user name or password") {
		t.Fatalf("wrong password: %d\n%s", r.status, r.body)
	}
	h.login()
	if r := h.get("/"); r.status != http.StatusOK || !strings.Contains(r.body, `id="connect"`) {
		t.Fatalf("GET / after login: %d", r.status)
	}
	// Logging out ends the session.
	if r := h.post("/logout", url.Values{"csrf": {h.csrf("/")}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if r := h.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("GET / after logout: %d", r.status)
	}
}

// Every POST needs the CSRF token of its own session.
func TestPostsNeedTheSessionsCSRFToken(t *testing.T) {
	h := newHarness(t)
	// The login form too.
	h.csrf("/login")
	if r := h.post("/login", url.Values{"user": {adminUser}, "password": {adminPassword}}); r.status != http.StatusForbidden {
		t.Fatalf("login without a token: %d", r.status)
	}
	h.login()
	path := h.connect()
	id := accountID(path)
	before, err := h.sup.Settings(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}

	other := newClient(t)
	otherToken := csrfField.FindStringSubmatch(h.getWith(other, "/login").body)[1]
	changed := h.env.Settings()
	changed.DefaultCapacity = 9
	for name, token := range map[string]string{"no token": "", "a made-up token": "abc", "another session's token": otherToken} {
		form := formFor(token, changed)
		if token == "" {
			form.Del("csrf")
		}
		if r := h.post(path+"/settings", form); r.status != http.StatusForbidden {
			t.Errorf("settings with %s: %d", name, r.status)
		}
		if r := h.post("/connect", url.Values{"csrf": {token}, "domain": {h.env.CRM.URL()}, "api_key": {bottest.FullKey}}); r.status != http.StatusForbidden {
			t.Errorf("connect with %s: %d", name, r.status)
		}
		if r := h.post("/logout", url.Values{"csrf": {token}}); r.status != http.StatusForbidden {
			t.Errorf("logout with %s: %d", name, r.status)
		}
	}
	// The right token from another origin is refused as well.
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path+"/settings", strings.NewReader(formFor(h.csrf(path), changed).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if r := h.do(h.client, req); r.status != http.StatusForbidden {
		t.Errorf("settings from another origin: %d", r.status)
	}
	after, err := h.sup.Settings(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatal("a refused POST changed the settings")
	}
	// With the token, the same form is taken.
	if r := h.post(path+"/settings", formFor(h.csrf(path), changed)); r.status != http.StatusSeeOther {
		t.Fatalf("settings with the token: %d\n%s", r.status, r.body)
	}
}

// Connecting shows what is wrong in plain words, and never the key.
func TestConnectErrorsAreShownPlainly(t *testing.T) {
	h := newHarness(t)
	h.login()
	notCRM, err := sandbox.NewCRM(sandbox.WithNotRetailCRM())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notCRM.Close() })
	closed, err := sandbox.NewCRM()
	if err != nil {
		t.Fatal(err)
	}
	closedURL := closed.URL()
	closed.Close()

	for _, tc := range []struct {
		name, domain, key string
		want              []string
	}{
		{"wrong key", h.env.CRM.URL(), "not-a-key-8d1e", []string{"refused the API key"}},
		{"missing scopes", h.env.CRM.URL(), bottest.LimitedKey, []string{"lacks permissions", "Customers, Users"}},
		{"some stores only", h.env.CRM.URL(), bottest.SelectiveKey, []string{"access to all stores"}},
		{"not retailCRM", notCRM.URL(), bottest.FullKey, []string{"not a retailCRM account"}},
		{"unreachable", closedURL, bottest.FullKey, []string{"cannot be reached"}},
		{"malformed address", "ftp://shop.example", bottest.FullKey, []string{"address is not valid", "https or http"}},
		{"no key", h.env.CRM.URL(), "", []string{"Give both"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.post("/connect", url.Values{"csrf": {h.csrf("/")}, "domain": {tc.domain}, "api_key": {tc.key}})
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422\n%s", r.status, r.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("the page does not say %q:\n%s", w, between(r.body, `id="connect-error"`, "</p>"))
				}
			}
			if tc.key != "" && strings.Contains(r.body, tc.key) {
				t.Errorf("the page shows the API key")
			}
		})
	}
	if n := len(h.sup.Accounts(context.Background())); n != 0 {
		t.Fatalf("%d accounts connected by failed attempts", n)
	}
}

// between returns the text of s from the first from to the next to.
func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return "(" + from + " not found)"
	}
	out, _, _ := strings.Cut(rest, to)
	return out
}

// After connecting, the Settings block offers the roster, the channels and
// the responsible bots.
func TestConnectShowsTheSettingsBlock(t *testing.T) {
	h := newHarness(t)
	h.login()
	path := h.connect()
	r := h.get(path + "?connected=1")
	if r.status != http.StatusOK {
		t.Fatalf("account page: %d", r.status)
	}
	for _, want := range []string{
		`id="settings"`, "The account is connected",
		"Anna Smirnova", "Boris Ivanov", "busy, online", // roster joined with retailCRM
		"Shop", "Support", "FAQ bot", // channels and the responsible bot
		`name="reply_no_manager_online"`, `name="default_capacity"`,
		"least_loaded", "round_robin", // registry names
		"in this process, connected; last event", // the fleet holds the account here
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the Settings block lacks %q", want)
		}
	}
	if r := h.get("/accounts/nope.example"); r.status != http.StatusNotFound {
		t.Errorf("unknown account: %d", r.status)
	}
}

// A save with an empty automatic reply is refused naming the field, and
// the settings in force stay; filled in, it is saved.
func TestSaveRefusedOnAnEmptyReply(t *testing.T) {
	h := newHarness(t)
	h.login()
	path := h.connect()
	id := accountID(path)
	ctx := context.Background()
	before, err := h.sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	want := h.env.Settings()
	want.DefaultCapacity = 7
	form := formFor(h.csrf(path), want)
	form.Set("reply_no_manager_online", "   ")
	r := h.post(path+"/settings", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", r.status)
	}
	problems := between(r.body, `id="problems"`, "</div>")
	for _, w := range []string{"Nothing was saved", "replies.no_manager_online", "Reply when no manager is online", "is empty"} {
		if !strings.Contains(problems, w) {
			t.Errorf("the refusal does not say %q:\n%s", w, problems)
		}
	}
	if !strings.Contains(r.body, `value="7"`) {
		t.Error("the refused form lost what was typed")
	}
	after, err := h.sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("a refused save changed the settings:\nbefore %+v\nafter  %+v", before, after)
	}

	form.Set("reply_no_manager_online", "Nobody is here, sorry.")
	r = h.post(path+"/settings", form)
	if r.status != http.StatusSeeOther || !strings.HasSuffix(r.location, "?saved=1") {
		t.Fatalf("filled save: %d to %q\n%s", r.status, r.location, between(r.body, `id="problems"`, "</div>"))
	}
	got, err := h.sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want.Replies[bd.NoManagerOnline] = "Nobody is here, sorry."
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("saved settings:\n got %+v\nwant %+v", got, want)
	}
	if r := h.get(r.location); !strings.Contains(r.body, "Settings saved.") || !strings.Contains(r.body, "Nobody is here, sorry.") {
		t.Fatal("the page after saving does not show the saved settings")
	}
}

// A reply text the replier's check refuses is named beside its field with
// the check's own message, as it is, and nothing is saved: the built-in
// template's placeholder check of the bot's distributors.
func TestSaveShowsTheTextCheckBesideItsField(t *testing.T) {
	h := newHarness(t)
	h.login()
	path := h.connect()
	form := formFor(h.csrf(path), h.env.Settings())
	form.Set("reply_dialog_received", "Hello, {client}!")
	r := h.post(path+"/settings", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", r.status)
	}
	const msg = "unknown placeholder {client}: use {customer}, {customer_first_name}, {manager} or {manager_first_name}"
	if field := between(r.body, `id="reply_dialog_received"`, "</div>"); !strings.Contains(field, `<span class="problem">`+msg+`</span>`) {
		t.Errorf("the dialog_received field does not show %q:\n%s", msg, field)
	}
	if strings.Contains(r.body, "reply: text") {
		t.Error("the page shows the reply package's prefix")
	}
}

// todoReplier is a Replier whose reply.TextChecker refuses a text still
// saying TODO.
type todoReplier struct{}

func (todoReplier) Reply(context.Context, reply.Request) error { return nil }

func (todoReplier) CheckText(_ bd.Situation, text string) error {
	if strings.Contains(text, "TODO") {
		return errors.New("still says TODO: write the text the customer gets")
	}
	return nil
}

// checkedBackend is the supervisor checking settings with other
// distributor options, e.g. another replier.
type checkedBackend struct {
	*bot.Supervisor
	opts []distributor.Option
}

func (b checkedBackend) ValidateSettings(s bd.Settings) error {
	return distributor.CheckSettings(s, b.opts...)
}

// A custom replier's text check is shown beside the text's field, in both
// languages, and nothing is saved.
func TestSaveShowsACustomTextCheckBesideItsField(t *testing.T) {
	h := newHarnessWith(t, func(s *bot.Supervisor) web.Backend {
		return checkedBackend{Supervisor: s, opts: []distributor.Option{distributor.WithReplier(todoReplier{})}}
	})
	h.login()
	path := h.connect()
	id := accountID(path)
	before, err := h.sup.Settings(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	const msg = "still says TODO: write the text the customer gets"
	for _, lang := range []struct{ accept, label string }{
		{"en", "Reply when no manager is online"},
		{"ru-RU,ru;q=0.9", "Ответ, когда нет менеджеров на связи"},
	} {
		jar, _ := cookiejar.New(nil)
		h.client = &http.Client{Jar: jar, Transport: langTransport{lang.accept},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		h.login()
		form := formFor(h.csrf(path), h.env.Settings())
		form.Set("reply_no_manager_online", "TODO")
		r := h.post(path+"/settings", form)
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: status %d, want 422", lang.accept, r.status)
		}
		if field := between(r.body, `id="reply_no_manager_online"`, "</div>"); !strings.Contains(field, `<span class="problem">`+msg+`</span>`) {
			t.Errorf("%s: the no_manager_online field does not show %q:\n%s", lang.accept, msg, field)
		}
		if problems := between(r.body, `id="problems"`, "</div>"); !strings.Contains(problems, lang.label) || !strings.Contains(problems, msg) {
			t.Errorf("%s: the list of problems lacks %q or %q:\n%s", lang.accept, lang.label, msg, problems)
		}
	}
	after, err := h.sup.Settings(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("a refused save changed the settings:\nbefore %+v\nafter  %+v", before, after)
	}
}

// The form's own mistakes are named along with the settings' problems.
func TestSaveNamesFormMistakes(t *testing.T) {
	h := newHarness(t)
	h.login()
	path := h.connect()
	form := formFor(h.csrf(path), h.env.Settings())
	form.Set("default_capacity", "many")
	form.Set("day_1", "9-25")
	form.Set("hours_on", "on")
	form.Set("reply_manager_assigned", "{{.Client}} will answer")
	r := h.post(path+"/settings", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", r.status)
	}
	problems := between(r.body, `id="problems"`, "</div>")
	for _, w := range []string{"default_capacity", `&#34;many&#34; is not a whole number`, "hours.monday", "replies.manager_assigned"} {
		if !strings.Contains(problems, w) {
			t.Errorf("the refusal does not name %q:\n%s", w, problems)
		}
	}
}

// No page ever shows the API key or the MG bot token.
func TestSecretsNeverShown(t *testing.T) {
	h := newHarness(t)
	h.login()
	path := h.connect()
	secrets := []string{bottest.FullKey, h.env.MG.BotToken().Reveal()}
	form := formFor(h.csrf(path), h.env.Settings())
	form.Set("reply_dialog_received", "")
	pages := map[string]string{
		"home":      h.get("/").body,
		"account":   h.get(path + "?connected=1").body,
		"decisions": h.get(path + "/decisions").body,
		"refused":   h.post(path+"/settings", form).body,
		"metrics":   h.get("/metrics").body,
		"connect error": h.post("/connect", url.Values{
			"csrf": {h.csrf("/")}, "domain": {h.env.CRM.URL()}, "api_key": {"wrong-" + bottest.FullKey},
		}).body,
	}
	for name, body := range pages {
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("the %s page shows a secret", name)
			}
		}
	}
	if !strings.Contains(pages["account"], "set (hidden)") {
		t.Error("the account page does not say the key is set")
	}
}

func TestHealthz(t *testing.T) {
	h := newHarness(t)
	if r := h.get("/healthz"); r.status != http.StatusOK || r.body != "ok\n" {
		t.Fatalf("healthz: %d %q", r.status, r.body)
	}
	h.setHealth(errStoreDown)
	if r := h.get("/healthz"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("healthz with the store down: %d", r.status)
	}
}

// /metrics counts per account what the distributor did, and the decisions
// page explains it.
func TestMetricsAndDecisions(t *testing.T) {
	h := newHarness(t)
	h.login()
	path := h.connect()
	id := accountID(path)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.sup.SaveSettings(ctx, id, h.env.Settings()); err != nil {
		t.Fatal(err)
	}
	shop, err := h.env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: h.env.Shop, CustomerExternalID: "c1", FirstName: "Ivan", Text: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	faq, err := h.env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: h.env.Support, CustomerExternalID: "c2", FirstName: "Oleg", Text: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	// Assigned, and both replies (received, assigned) delivered.
	if err := h.env.MG.Await(ctx, func() bool {
		r, _ := h.env.MG.Responsible(faq.Dialog)
		return !r.IsZero() && len(h.env.MG.Delivered(shop.Chat)) == 2
	}); err != nil {
		t.Fatal(err)
	}
	acc := `account="` + string(id) + `"`
	wants := []string{
		`botdistributor_assigned_total{` + acc + `,from_queue="false",to="manager"} 1`,
		`botdistributor_assigned_total{` + acc + `,from_queue="false",to="bot"} 1`,
		`botdistributor_replies_total{` + acc + `,situation="manager_assigned"} 1`,
		`botdistributor_assign_wait_seconds_count{` + acc + `} 2`,
		`botdistributor_reassigned_total{` + acc + `} 0`,
		`botdistributor_errors_total{` + acc + `,op="gateway.assign"} 0`,
		`botdistributor_queued_total{` + acc + `,reason="all_managers_busy"} 0`,
	}
	// The hooks run right after MG and the customer see the outcome.
	bottest.Eventually(t, 10*time.Second, "the metrics to count both dialogs", func() bool {
		r := h.get("/metrics")
		for _, w := range wants {
			if r.status != http.StatusOK || !strings.Contains(r.body, w) {
				return false
			}
		}
		return true
	})
	d := h.get(path + "/decisions")
	if d.status != http.StatusOK {
		t.Fatalf("decisions: %d", d.status)
	}
	for _, want := range []string{
		fmt.Sprintf("Dialog %d", shop.Dialog), "assigned", "strategy chose manager",
		fmt.Sprintf("removed manager %d: status", h.env.Boris),
		fmt.Sprintf("Dialog %d", faq.Dialog), "bot",
	} {
		if !strings.Contains(d.body, want) {
			t.Errorf("decisions lack %q", want)
		}
	}
}
