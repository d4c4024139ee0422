package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"reflect"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
	"github.com/botdistributor/botdistributor/sandbox"
)

// The escalation editor through the page, in Russian: a refused save names
// each problem beside its field in Russian and changes nothing; a valid
// one stores the groups, the steps and the alert, whose secret the page
// never shows and keeps when its field is left empty; an edit button
// changes the form without saving.
func TestSettingsEscalationThroughThePage(t *testing.T) {
	h := newHarness(t)
	jar, _ := cookiejar.New(nil)
	h.client = &http.Client{Jar: jar, Transport: langTransport{"ru"},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	h.login()
	path := h.connect()
	id := accountID(path)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before, err := h.sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	page := h.get(path).body
	for _, want := range []string{"Группы менеджеров", "Новая группа", "Общее правило каналов", "Добавить шаг",
		"Маршрутизация по карточке клиента в retailCRM", "Оповещение о долгом ожидании", `type="password" name="alert_secret"`,
		"по кругу: дольше всех без нового диалога"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	s := h.env.Settings()
	form := formFor(h.csrf(path), s)
	form.Set("group_0_name", "Продажи")
	form.Set("group_0_was", "")
	form.Add("group_0_manager", h.env.Anna.String())
	form.Set("group_1_name", "")
	form.Set("default_rule_target", "managers")
	form.Set("default_rule_step_0_group", "Продажи")
	form.Set("default_rule_step_0_wait", "")
	form.Set("default_rule_step_0_unit", "s")
	form.Set("default_rule_step_1_group", "Поддержка")
	form.Set("default_rule_step_1_wait", "")
	form.Set("default_rule_step_1_unit", "min")
	form.Set("personal_wait", "две")
	form.Set("alert_webhook", "ftp://hooks.example.com/x")
	r := h.post(path+"/settings", form)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422", r.status)
	}
	problems := between(r.body, `id="problems"`, "</div>")
	for _, want := range []string{"Общее правило каналов, шаг 1", "укажите, сколько длится этот шаг",
		"Общее правило каналов, шаг 2", "группы «Поддержка» нет", "Ожидание персонального менеджера", "не число минут",
		"Адрес для оповещений", "не адрес http или https", "Секрет оповещений", "укажите секрет"} {
		if !strings.Contains(problems, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, problems)
		}
	}
	for _, beside := range []struct{ from, to, want string }{
		{`id="default_rule_step_0_row"`, "</li>", "укажите, сколько длится этот шаг"},
		{`id="default_rule_step_1_row"`, "</li>", "группы «Поддержка» нет"},
		{`name="personal_wait"`, "</label>", "не число минут"},
		{`name="alert_webhook"`, "</label>", "не адрес http или https"},
		{`name="alert_secret"`, "</label>", "укажите секрет"},
	} {
		if got := between(r.body, beside.from, beside.to); !strings.Contains(got, beside.want) {
			t.Errorf("beside %s the page does not say %q:\n%s", beside.from, beside.want, got)
		}
	}
	if !strings.Contains(between(r.body, `id="group_0_name"`, "</div>"), "checked") {
		t.Error("the refused form lost the group's managers")
	}
	after, err := h.sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("the refused save changed the settings:\n%+v", after)
	}

	form.Set("default_rule_step_0_wait", "60")
	form.Set("default_rule_step_1_group", "")
	form.Set("personal_wait", "")
	form.Set("alert_webhook", "https://hooks.example.com/x")
	form.Set("alert_secret", "k1-secret")
	if r := h.post(path+"/settings", form); r.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", r.status, between(r.body, `id="problems"`, "</div>"))
	}
	got, err := h.sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]bd.ManagerID{"Продажи": {h.env.Anna}}; !reflect.DeepEqual(got.Groups, want) {
		t.Errorf("groups %v, want %v", got.Groups, want)
	}
	if want := []bd.Step{{Group: "Продажи", Wait: time.Minute}, {}}; !reflect.DeepEqual(got.DefaultRule.Steps, want) {
		t.Errorf("steps %+v, want %+v", got.DefaultRule.Steps, want)
	}
	if got.AlertWebhook != "https://hooks.example.com/x" || got.AlertSecret != "k1-secret" {
		t.Errorf("alert %q with secret %q", got.AlertWebhook, got.AlertSecret)
	}

	page = h.get(path).body
	if strings.Contains(page, "k1-secret") {
		t.Fatal("the page shows the alert's secret")
	}
	step := between(page, `id="default_rule_step_0_row"`, "</li>")
	for _, want := range []string{`<option value="Продажи" selected>`, `value="1"`, `<option value="min" selected>`} {
		if !strings.Contains(step, want) {
			t.Errorf("the saved first step lacks %q:\n%s", want, step)
		}
	}
	if !strings.Contains(page, "задан (скрыт); оставьте пустым, чтобы не менять") {
		t.Error("the page does not say a secret is set")
	}

	// Saved again with the secret left empty: the secret stays.
	form.Set("csrf", h.csrf(path))
	form.Set("group_0_was", "Продажи")
	form.Set("alert_secret", "")
	if r := h.post(path+"/settings", form); r.status != http.StatusSeeOther {
		t.Fatalf("second save: %d\n%s", r.status, between(r.body, `id="problems"`, "</div>"))
	}
	if got, err = h.sup.Settings(ctx, id); err != nil || got.AlertSecret != "k1-secret" {
		t.Fatalf("after a save with the secret left empty, it is %q (%v)", got.AlertSecret, err)
	}

	// An edit button shows the changed form and saves nothing.
	form.Set("edit", "step_add:default_rule_")
	r = h.post(path+"/settings", form)
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="default_rule_step_2_row"`) || !strings.Contains(r.body, "Изменено, но ещё не сохранено") {
		t.Fatalf("adding a step: %d\n%s", r.status, between(r.body, `id="default_rule_steps"`, "</fieldset>"))
	}
	if again, _ := h.sup.Settings(ctx, id); !reflect.DeepEqual(again, got) {
		t.Fatal("an edit button saved the settings")
	}
	form.Set("edit", "step_remove:nowhere:0")
	if r := h.post(path+"/settings", form); r.status != http.StatusBadRequest {
		t.Fatalf("an unknown edit: %d", r.status)
	}
}

// A dialog assigned at the first step of a channel's escalation: the
// decisions page says which step, of how many, and for which group, in
// English and in Russian.
func TestDecisionsShowTheEscalationStep(t *testing.T) {
	h := newHarness(t)
	h.login()
	path := h.connect()
	id := accountID(path)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := h.env.Settings()
	s.Groups = map[string][]bd.ManagerID{"Sales": {h.env.Anna}}
	s.Channels[h.env.Shop] = bd.ChannelRule{Target: bd.ToManagers, Steps: []bd.Step{{Group: "Sales", Wait: 10 * time.Minute}, {}}}
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
	dialog := fmt.Sprintf(`data-dialog="%d"`, msg.Dialog)
	var trace string
	bottest.Eventually(t, 10*time.Second, "the decision on the page", func() bool {
		trace = between(h.get(path+"/decisions").body, dialog, "</article>")
		return strings.Contains(trace, "assigned to")
	})
	if !strings.Contains(trace, "Step 1 of 2 (Sales), next step in ") {
		t.Fatalf("the decision does not name the step:\n%s", trace)
	}
	if r := h.get("/lang?to=ru&back=/"); r.status != http.StatusSeeOther {
		t.Fatalf("switching to Russian: %d", r.status)
	}
	if trace = between(h.get(path+"/decisions").body, dialog, "</article>"); !strings.Contains(trace, "Шаг 1 из 2 (Sales), следующий шаг через ") {
		t.Fatalf("the Russian decision does not name the step:\n%s", trace)
	}
}
