package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
	"github.com/botdistributor/botdistributor/sandbox"
)

// Environment of the browser test.
const (
	// envChromium names the browser; when set, the test must run.
	envChromium = "BOTDISTRIBUTOR_TEST_CHROMIUM"
	// envScreenshots is where the screenshots go; without it none are
	// taken (a temporary directory would only throw them away).
	envScreenshots = "BOTDISTRIBUTOR_SCREENSHOT_DIR"
)

// chromium returns the browser to drive, or skips the test when there is
// none and none was asked for.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envChromium); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("$%s=%s: %v", envChromium, p, err)
		}
		return p
	}
	const debian = "/usr/bin/chromium"
	if _, err := os.Stat(debian); err == nil {
		return debian
	}
	t.Skipf("no Chromium: run apt-get install -y chromium and set %s=%s to require this test", envChromium, debian)
	return ""
}

// browserRun is the bot in real mode, served, with a headless Chromium
// tab pointed at it.
type browserRun struct {
	t     *testing.T
	ctx   context.Context
	tab   context.Context
	base  string
	a     *app
	cfg   config
	env   *bottest.Env
	shots string
}

// browser is the one Chromium of the test binary: the first browser test
// starts it, each test opens a browser context of its own in it, and
// TestMain stops it after the tests.
var browser struct {
	once sync.Once
	// ctx is the chromedp context of the browser's first tab; stop ends
	// the browser and removes its temporary profile.
	ctx  context.Context
	stop context.CancelFunc
	err  error
}

// TestMain stops the browser the tests started, if any.
func TestMain(m *testing.M) {
	m.Run()
	if browser.stop != nil {
		browser.stop()
	}
}

// sharedBrowser returns the chromedp context of the package's Chromium,
// starting it on the first call, or skips the test when there is none.
// The browser's own errors go to the standard logger: they belong to no
// one test.
func sharedBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	browser.once.Do(func() {
		// No user data directory: chromedp makes a temporary one and
		// removes it when the browser stops.
		alloc, stopAlloc := chromedp.NewExecAllocator(context.Background(),
			chromedp.ExecPath(path),
			chromedp.Flag("headless", true),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.WindowSize(1280, 1800),
		)
		ctx, stopCtx := chromedp.NewContext(alloc)
		browser.ctx, browser.stop = ctx, func() { stopCtx(); stopAlloc() }
		// The first run starts the browser and ties it to ctx, which
		// lives until TestMain stops it.
		browser.err = chromedp.Do(ctx)
	})
	if browser.err != nil {
		t.Fatalf("starting %s: %v", path, browser.err)
	}
	return browser.ctx
}

// startBrowser serves the bot over the sandbox and opens a Chromium tab in
// a fresh browser context (no cookies, storage or cache of another test)
// with the given Accept-Language ("" for the browser's own).
// Nothing is shared but the browser, so the browser tests run in
// parallel.
func startBrowser(t *testing.T, acceptLanguage string) *browserRun {
	t.Helper()
	shared := sharedBrowser(t)
	shots := os.Getenv(envScreenshots)
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A generous bound, for the bot and the tab alike: the suite may
	// share two cores with the rest of the tests.
	deadline := time.Now().Add(3 * time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)

	env := bottest.NewEnv(t)
	a, ln, cfg := testApp(t, ctx)
	base := "http://" + ln.Addr().String()
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.serve(serveCtx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	// Closing the tab disposes of its browser context.
	tab, closeTab := chromedp.NewContext(shared, chromedp.WithNewBrowserContext())
	t.Cleanup(closeTab)
	tab, cancelTab := context.WithDeadline(tab, deadline)
	t.Cleanup(cancelTab)
	if acceptLanguage != "" {
		// The language of this tab only, both navigator.language and the
		// header; an empty user agent keeps the browser's own. (By the
		// command's name: cdproto is not a direct dependency.)
		err := chromedp.Do(tab, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			return tg.Call(ctx, "Emulation.setUserAgentOverride", map[string]string{"userAgent": "", "acceptLanguage": acceptLanguage}, nil)
		}))
		if err != nil {
			t.Fatalf("setting the tab's language: %v", err)
		}
	}
	return &browserRun{t: t, ctx: ctx, tab: tab, base: base, a: a, cfg: cfg, env: env, shots: shots}
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// shoot keeps a full-page screenshot under name, when screenshots are
// asked for.
func (b *browserRun) shoot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if b.shots == "" {
			return nil
		}
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		path := filepath.Join(b.shots, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			return err
		}
		b.t.Logf("screenshot: %s", path)
		return nil
	})
}

// text returns the text of the element sel. The dashboard replaces its
// live part every few seconds: a read that lands on the node being
// replaced is tried again on the new one.
func (b *browserRun) text(sel string) string {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := chromedp.Run(b.tab, chromedp.Text(css(sel)))
		if err == nil {
			return s
		}
		if !strings.Contains(err.Error(), "No node") || time.Now().After(deadline) {
			b.t.Fatalf("reading %s: %v", sel, err)
		}
		select {
		case <-b.ctx.Done():
			b.t.Fatalf("reading %s: %v", sel, b.ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// textWith returns the text of sel once it holds every one of want, or
// the last text read after 10 s: a read during the dashboard's refresh can
// see the live part half replaced.
func (b *browserRun) textWith(sel string, want ...string) string {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := b.text(sel)
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok || time.Now().After(deadline) {
			return s
		}
		select {
		case <-b.ctx.Done():
			return s
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// loginAndConnect logs in, connects the sandbox account and waits for its
// roster; it returns the account.
func (b *browserRun) loginAndConnect(shot string) bd.AccountID {
	b.t.Helper()
	err := chromedp.Do(b.tab,
		chromedp.Navigate(b.base+"/"),
		chromedp.WaitVisible(css("#login")),
		chromedp.SendKeys(css("#user"), b.cfg.adminUser),
		chromedp.SendKeys(css("#password"), b.cfg.adminPassword),
		chromedp.Click(css("#login-submit")),
		chromedp.WaitVisible(css("#connect")),
		chromedp.SendKeys(css("#domain"), b.env.CRM.URL()),
		chromedp.SendKeys(css("#api_key"), bottest.FullKey),
		chromedp.Click(css("#connect-submit")),
		chromedp.WaitVisible(css("#settings")),
		b.shoot(shot),
	)
	if err != nil {
		b.t.Fatalf("logging in and connecting: %v", err)
	}
	ids := b.a.sup.Accounts(b.ctx)
	if len(ids) != 1 {
		b.t.Fatalf("%d accounts connected", len(ids))
	}
	id := ids[0].ID
	if err := b.a.sup.Ready(b.ctx, id); err != nil {
		b.t.Fatal(err)
	}
	// The roster shows once MG's users are read (Ready waits for that);
	// reload the page connected before it.
	if err := chromedp.Do(b.tab, chromedp.Reload(), chromedp.WaitVisible(css(fmt.Sprintf("#manager_%d", b.env.Anna)))); err != nil {
		b.t.Fatalf("waiting for the roster: %v", err)
	}
	return id
}

// The settings page in a real browser: log in, connect the sandbox account,
// see the Settings block, clear an automatic reply and save (refused,
// naming the field), fill it in and save (saved).
func TestSettingsPageInChromium(t *testing.T) {
	t.Parallel()
	b := startBrowser(t, "en")
	ctx, tab, env, a := b.ctx, b.tab, b.env, b.a
	text, shoot := b.text, b.shoot
	id := b.loginAndConnect("1-connected.png")
	if flash := text("#flash"); !strings.Contains(flash, "connected") {
		t.Fatalf("after connecting, the page says %q", flash)
	}
	anna := fmt.Sprintf("#manager_%d", env.Anna)
	before, err := a.sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	const reply = "#reply_no_manager_online"
	err = chromedp.Do(tab,
		chromedp.Click(css(anna)),
		chromedp.Clear(css(reply)),
		chromedp.Click(css("#save")),
		chromedp.WaitVisible(css("#problems")),
		shoot("2-refused.png"),
	)
	if err != nil {
		t.Fatalf("saving with an empty reply: %v", err)
	}
	problems := text("#problems")
	for _, want := range []string{"Nothing was saved", "Reply when no manager is online", "is empty"} {
		if !strings.Contains(problems, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, problems)
		}
	}
	after, err := a.sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before.Managers, after.Managers) || after.Replies[bd.NoManagerOnline] != before.Replies[bd.NoManagerOnline] {
		t.Fatal("the refused save changed the settings")
	}

	const filled = "Nobody is online right now; we will write back soon."
	err = chromedp.Do(tab,
		chromedp.SendKeys(css(reply), filled),
		chromedp.Click(css("#save")),
		chromedp.WaitVisible(css("#flash")),
		shoot("3-saved.png"),
	)
	if err != nil {
		t.Fatalf("saving the filled form: %v", err)
	}
	if flash := text("#flash"); !strings.Contains(flash, "Settings saved") {
		t.Fatalf("after saving, the page says %q", flash)
	}
	page, err := chromedp.Run(tab, chromedp.OuterHTML(css("html")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.sup.Settings(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Replies[bd.NoManagerOnline] != filled || !slices.Contains(got.Managers, env.Anna) {
		t.Fatalf("saved settings: managers %v, reply %q", got.Managers, got.Replies[bd.NoManagerOnline])
	}
	if strings.Contains(page, bottest.FullKey) || strings.Contains(page, env.MG.BotToken().Reveal()) {
		t.Fatal("the page shows a secret")
	}
}

// The dashboard in a real browser: a dialog that opened while the account
// was off waits in the queue; once the account is switched on it is
// assigned, and the open page shows it without a reload.
func TestBrowserDashboard(t *testing.T) {
	t.Parallel()
	b := startBrowser(t, "")
	id := b.loginAndConnect("dashboard-1-connected.png")
	msg, err := b.env.MG.CustomerWrites(b.ctx, sandbox.MGCustomerMessage{Channel: b.env.Shop, CustomerExternalID: "c1", FirstName: "Ivan", Text: "Hello"})
	if err != nil {
		t.Fatal(err)
	}
	bottest.Eventually(t, 20*time.Second, "the dialog to wait", func() bool {
		d, err := b.a.sup.Dashboard(b.ctx, id)
		return err == nil && d.Queue == 1
	})
	anna := fmt.Sprintf(`#managers tr[data-manager="%d"]`, b.env.Anna)
	err = chromedp.Do(b.tab,
		chromedp.Click(css("#dashboard-link")),
		chromedp.WaitVisible(css("#queue-line")),
		chromedp.WaitVisible(css(anna+" meter")),
		b.shoot("dashboard-2-waiting.png"),
	)
	if err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	if q := b.textWith("#queue-line", "1 waiting"); !strings.Contains(q, "1 waiting") {
		t.Fatalf("the queue reads %q", q)
	}
	if w := b.textWith("#queue", fmt.Sprintf("Dialog %d", msg.Dialog), "switched off when it opened"); !strings.Contains(w, fmt.Sprintf("Dialog %d", msg.Dialog)) || !strings.Contains(w, "switched off when it opened") {
		t.Fatalf("the queue does not name the waiting dialog and why:\n%s", w)
	}
	if l := b.text(anna + " .load"); l != "0/3" { // the default maximum, before the settings are saved
		t.Fatalf("Anna's load reads %q before the assignment", l)
	}
	for _, chart := range []string{"#chart-assigned svg", "#chart-replies svg", "#chart-dead svg"} {
		if err := chromedp.Do(b.tab, chromedp.WaitVisible(css(chart))); err != nil {
			t.Fatalf("chart %s: %v", chart, err)
		}
	}

	s := b.env.Settings()
	s.Active = true
	if err := b.a.sup.SaveSettings(b.ctx, id, s); err != nil {
		t.Fatal(err)
	}
	// The page refreshes itself: Anna's bar fills and the queue empties.
	err = chromedp.Do(b.tab,
		chromedp.WaitVisible(css(anna+` meter[value="1"]`)),
		b.shoot("dashboard-3-assigned.png"),
	)
	if err != nil {
		t.Fatalf("the dashboard did not update: %v", err)
	}
	// The dialog leaves the queue once MG took the assignment, a moment
	// after the store counted it: a refresh may fall between the two.
	if q := b.textWith("#queue-line", "Nobody waits"); !strings.Contains(q, "Nobody waits") {
		t.Fatalf("after the assignment the queue reads %q", q)
	}
	if c := b.text("#chart-assigned figcaption"); !strings.Contains(c, "1 in all") {
		t.Fatalf("the assignments chart reads %q", c)
	}
}

// The page in Russian, switched by its link: the login, the account that
// is not on yet, a placeholder chip with its preview, and a refused save.
func TestBrowserRussian(t *testing.T) {
	t.Parallel()
	b := startBrowser(t, "")
	err := chromedp.Do(b.tab,
		chromedp.Navigate(b.base+"/login"),
		chromedp.WaitVisible(css("#lang-switch")),
		chromedp.Click(css("#lang-switch")),
		chromedp.WaitVisible(css("#login")),
		b.shoot("ru-1-login.png"),
	)
	if err != nil {
		t.Fatalf("switching to Russian: %v", err)
	}
	if h := b.text("h1"); h != "Вход" {
		t.Fatalf("the login page's title is %q", h)
	}
	id := b.loginAndConnect("ru-2-connected.png")
	if s := b.text("#active-state"); !strings.Contains(s, "Выключен") {
		t.Fatalf("the account page says %q", s)
	}
	const reply = "#reply_no_manager_online"
	chip := `.reply:has(` + reply + `) button.chip[data-insert="{manager}"]`
	err = chromedp.Do(b.tab,
		chromedp.Clear(css(reply)),
		chromedp.Click(css(chip)),
		chromedp.Clear(css("#reply_outside_working_hours")),
	)
	if err != nil {
		t.Fatalf("using a placeholder chip: %v", err)
	}
	if v, err := chromedp.Run(b.tab, chromedp.Value(css(reply))); err != nil || v != "{manager}" {
		t.Fatalf("the chip inserted %q (%v)", v, err)
	}
	if p := b.text("#preview_reply_no_manager_online"); p != "Анна Смирнова" {
		t.Fatalf("the preview shows %q", p)
	}
	before, err := b.a.sup.Settings(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(b.tab,
		chromedp.Click(css("#save")),
		chromedp.WaitVisible(css("#problems")),
		b.shoot("ru-3-refused.png"),
	)
	if err != nil {
		t.Fatalf("saving: %v", err)
	}
	problems := b.text("#problems")
	for _, want := range []string{"Ничего не сохранено", "Ответ в нерабочее время", "не заполнено", "Ответ, когда нет менеджеров на связи"} {
		if !strings.Contains(problems, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, problems)
		}
	}
	after, err := b.a.sup.Settings(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if after.Replies[bd.OutsideWorkingHours] != before.Replies[bd.OutsideWorkingHours] || after.Active {
		t.Fatal("the refused save changed the settings")
	}
}

// Escalation steps in a real browser: create a group of Anna, build a
// default rule of two steps (the group for 60 s, then everyone) with the
// page's buttons, save, and find the rule stored and shown after a reload.
func TestBrowserEscalationSteps(t *testing.T) {
	t.Parallel()
	b := startBrowser(t, "en")
	id := b.loginAndConnect("escalation-1-connected.png")
	anna := fmt.Sprintf("#manager_%d", b.env.Anna)
	annaInGroup := fmt.Sprintf("#group_0_manager_%d", b.env.Anna)
	err := chromedp.Do(b.tab,
		chromedp.Click(css(anna)),
		chromedp.SendKeys(css("#group_0_name"), "Sales"),
		chromedp.Click(css(annaInGroup)),
		chromedp.Click(css("#default_rule_add_step")),
		chromedp.WaitVisible(css("#default_rule_step_0_row")),
		chromedp.Click(css("#default_rule_add_step")),
		chromedp.WaitVisible(css("#default_rule_step_1_row")),
		b.shoot("escalation-2-two-steps.png"),
	)
	if err != nil {
		t.Fatalf("adding two steps: %v", err)
	}
	// Adding steps saved nothing and kept what was typed.
	if e := b.text("#edited"); !strings.Contains(e, "not saved yet") {
		t.Fatalf("after adding steps the page says %q", e)
	}
	if v, err := chromedp.Run(b.tab, chromedp.Value(css("#group_0_name"))); err != nil || v != "Sales" {
		t.Fatalf("the group's name reads %q after adding steps (%v)", v, err)
	}
	if s, err := b.a.sup.Settings(b.ctx, id); err != nil || s.Groups != nil || len(s.DefaultRule.Steps) != 0 {
		t.Fatalf("adding steps changed the stored settings: %+v (%v)", s, err)
	}

	err = chromedp.Do(b.tab,
		chromedp.SetValue(css("#default_rule_step_0_group"), "Sales"),
		chromedp.SendKeys(css("#default_rule_step_0_wait"), "60"),
		chromedp.SetValue(css("#default_rule_step_0_unit"), "s"),
		chromedp.Click(css("#save")),
		chromedp.WaitVisible(css("#flash")),
	)
	if err != nil {
		t.Fatalf("saving the steps: %v", err)
	}
	if flash := b.text("#flash"); !strings.Contains(flash, "Settings saved") {
		problems, _ := chromedp.Run(b.tab, chromedp.Text(css("body")))
		t.Fatalf("after saving, the page says %q\n%s", flash, problems)
	}
	got, err := b.a.sup.Settings(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]bd.ManagerID{"Sales": {b.env.Anna}}; !reflect.DeepEqual(got.Groups, want) {
		t.Errorf("stored groups %v, want %v", got.Groups, want)
	}
	if want := []bd.Step{{Group: "Sales", Wait: time.Minute}, {}}; !reflect.DeepEqual(got.DefaultRule.Steps, want) {
		t.Errorf("stored steps %+v, want %+v", got.DefaultRule.Steps, want)
	}

	err = chromedp.Do(b.tab,
		chromedp.Reload(),
		chromedp.WaitVisible(css("#default_rule_step_1_row")),
		b.shoot("escalation-3-saved.png"),
	)
	if err != nil {
		t.Fatalf("reloading: %v", err)
	}
	for sel, want := range map[string]string{
		"#group_0_name":              "Sales",
		"#default_rule_step_0_group": "Sales",
		"#default_rule_step_0_wait":  "1",
		"#default_rule_step_0_unit":  "min",
		"#default_rule_step_1_group": "",
	} {
		if v, err := chromedp.Run(b.tab, chromedp.Value(css(sel))); err != nil || v != want {
			t.Errorf("after the reload %s reads %q (%v), want %q", sel, v, err, want)
		}
	}
	if ok, err := chromedp.Run(b.tab, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).checked`, annaInGroup))); err != nil || !ok {
		t.Errorf("after the reload Anna is not ticked in the group (%v)", err)
	}
}
