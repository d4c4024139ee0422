package web_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
	"github.com/botdistributor/botdistributor/sandbox"
)

var missingKey = regexp.MustCompile(`\[[a-z]+\.[A-Za-z_.]+\]`)

// requestIn makes GET requests in a language by Accept-Language.
type langTransport struct{ lang string }

func (l langTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept-Language", l.lang)
	return http.DefaultTransport.RoundTrip(r)
}

// The whole page speaks Russian to a Russian browser, including a refused
// save; the switch turns it to English.
func TestPagesInRussian(t *testing.T) {
	h := newHarness(t)
	jar, _ := cookiejar.New(nil)
	h.client = &http.Client{Jar: jar, Transport: langTransport{"ru-RU,ru;q=0.9,en;q=0.5"},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if r := h.get("/login"); !strings.Contains(r.body, "Вход") || !strings.Contains(r.body, `lang="ru"`) {
		t.Fatalf("the login page is not in Russian:\n%s", r.body)
	}
	h.login()
	path := h.connect()
	page := h.get(path)
	for _, want := range []string{"Выключен: в этом аккаунте бот ничего не делает", "Распределять диалоги", "Автоответы", "Здравствуйте[, {customer_first_name}]!", "{manager}", "Предпросмотр", "Понедельник"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the Russian account page lacks %q", want)
		}
	}
	form := formFor(h.csrf(path), h.env.Settings())
	form.Set("reply_no_manager_online", "")
	form.Set("reply_dialog_received", "Привет, {клиент}!")
	r := h.post(path+"/settings", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", r.status)
	}
	problems := between(r.body, `id="problems"`, "</div>")
	for _, want := range []string{"Ничего не сохранено", "Ответ, когда нет менеджеров на связи", "не заполнено", "Ответ на новый диалог", "unknown placeholder {клиент}"} {
		if !strings.Contains(problems, want) {
			t.Errorf("the Russian refusal lacks %q:\n%s", want, problems)
		}
	}
	for _, p := range []string{"/", path, path + "/dashboard", path + "/decisions"} {
		if b := h.get(p).body; missingKey.MatchString(b) {
			t.Errorf("%s shows a text missing from the catalogue: %s", p, missingKey.FindString(b))
		}
	}
	// The switch remembers English in a cookie.
	sw := h.get("/lang?to=en&back=" + path)
	if sw.status != http.StatusSeeOther || sw.location != path {
		t.Fatalf("switch: %d to %q", sw.status, sw.location)
	}
	if b := h.get(path).body; !strings.Contains(b, "Switched off: the bot does nothing") || !strings.Contains(b, `lang="en"`) {
		t.Fatal("the switch did not turn the page to English")
	}
	if sw := h.get("/lang?to=en&back=//evil.example"); sw.location != "/" {
		t.Fatalf("the switch went back to %q", sw.location)
	}
}

// A connected account does nothing until its settings are saved switched
// on: no reply, no assignment; then the waiting dialog is distributed.
func TestNothingHappensBeforeActivation(t *testing.T) {
	h := newHarness(t)
	h.login()
	path := h.connect()
	id := accountID(path)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msg, err := h.env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: h.env.Shop, CustomerExternalID: "c1", FirstName: "Ivan", Text: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	bottest.Eventually(t, 10*time.Second, "the dialog to wait", func() bool {
		d, err := h.sup.Dashboard(ctx, id)
		return err == nil && d.Queue == 1
	})
	if r, _ := h.env.MG.Responsible(msg.Dialog); !r.IsZero() {
		t.Fatalf("assigned to %s before activation", r)
	}
	if got := h.env.MG.Delivered(msg.Chat); len(got) != 0 {
		t.Fatalf("replies before activation: %+v", got)
	}
	if b := h.get(path + "/dashboard").body; !strings.Contains(b, "the bot was switched off when it opened") {
		t.Error("the dashboard does not say why the dialog waits")
	}

	s := h.env.Settings()
	s.Active = true
	r := h.post(path+"/settings", formFor(h.csrf(path), s))
	if r.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", r.status, between(r.body, `id="problems"`, "</div>"))
	}
	if err := h.env.MG.Await(ctx, func() bool {
		r, _ := h.env.MG.Responsible(msg.Dialog)
		return !r.IsZero() && len(h.env.MG.Delivered(msg.Chat)) == 2
	}); err != nil {
		t.Fatalf("not distributed after activation: %v", err)
	}
	if b := h.get(path).body; !strings.Contains(b, "Dialogs are being distributed.") {
		t.Error("the page does not say the account is on")
	}
}

// /metrics is refused to anonymous callers, served with the admin's
// credentials, and carries the gauges; the dashboard shows the load.
func TestMetricsNeedLoginAndDashboard(t *testing.T) {
	h := newHarness(t)
	h.login()
	path := h.connect()
	id := accountID(path)
	anon := &http.Client{}
	resp, err := anon.Get(h.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous /metrics: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, h.srv.URL+"/metrics", nil)
	req.SetBasicAuth(adminUser, adminPassword)
	r := h.do(anon, req)
	if r.status != http.StatusOK || !strings.Contains(r.body, `botdistributor_queue_length{account="`+string(id)+`"} 0`) ||
		!strings.Contains(r.body, `botdistributor_stream_connected{account="`+string(id)+`"} 1`) {
		t.Fatalf("/metrics with the admin's credentials: %d\n%s", r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := h.env.Settings()
	s.Active = true
	if err := h.sup.SaveSettings(ctx, id, s); err != nil {
		t.Fatal(err)
	}
	msg, err := h.env.MG.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: h.env.Shop, CustomerExternalID: "c1", FirstName: "Ivan", Text: "Hi"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.env.MG.Await(ctx, func() bool { r, _ := h.env.MG.Responsible(msg.Dialog); return !r.IsZero() }); err != nil {
		t.Fatal(err)
	}
	live := h.get(path + "/dashboard/live")
	if !strings.Contains(live.body, `value="1"`) || !strings.Contains(live.body, "Nobody waits.") || !strings.Contains(live.body, "<svg") {
		t.Fatalf("the dashboard does not show the assigned dialog:\n%s", live.body)
	}
	_ = bd.AccountID("")
}
