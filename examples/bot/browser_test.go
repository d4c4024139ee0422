package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
)

// Environment of the browser test.
const (
	// envChromium names the browser; when set, the test must run.
	envChromium = "BOTDISTRIBUTOR_TEST_CHROMIUM"
	// envScreenshots is where the screenshots go; default a temporary
	// directory of the test.
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

// The settings page in a real browser: log in, connect the sandbox account,
// see the Settings block, clear an automatic reply and save (refused,
// naming the field), fill it in and save (saved).
func TestSettingsPageInChromium(t *testing.T) {
	browser := chromium(t)
	shots := os.Getenv(envScreenshots)
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	env := bottest.NewEnv(t)
	a, ln, cfg := testApp(t, ctx)
	base := "http://" + ln.Addr().String()
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.serve(serveCtx, ln) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1800),
	)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	defer cancelTab()

	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	shoot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			path := filepath.Join(shots, name)
			if err := os.WriteFile(path, png, 0o644); err != nil {
				return err
			}
			t.Logf("screenshot: %s", path)
			return nil
		})
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}

	err := chromedp.Do(tab,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(css("#login")),
		chromedp.SendKeys(css("#user"), cfg.adminUser),
		chromedp.SendKeys(css("#password"), cfg.adminPassword),
		chromedp.Click(css("#login-submit")),
		chromedp.WaitVisible(css("#connect")),
		chromedp.SendKeys(css("#domain"), env.CRM.URL()),
		chromedp.SendKeys(css("#api_key"), bottest.FullKey),
		chromedp.Click(css("#connect-submit")),
		chromedp.WaitVisible(css("#settings")),
		shoot("1-connected.png"),
	)
	if err != nil {
		t.Fatalf("logging in and connecting: %v", err)
	}
	if flash := text("#flash"); !strings.Contains(flash, "connected") {
		t.Fatalf("after connecting, the page says %q", flash)
	}
	ids := a.sup.Accounts(ctx)
	if len(ids) != 1 {
		t.Fatalf("%d accounts connected", len(ids))
	}
	id := ids[0].ID
	if err := a.sup.Ready(ctx, id); err != nil {
		t.Fatal(err)
	}
	// The roster shows once MG's users are read (Ready waits for that);
	// reload the page connected before it.
	anna := fmt.Sprintf("#manager_%d", env.Anna)
	if err := chromedp.Do(tab, chromedp.Reload(), chromedp.WaitVisible(css(anna))); err != nil {
		t.Fatalf("waiting for the roster: %v", err)
	}
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
	for _, want := range []string{"Nothing was saved", "Reply when no manager is online", "replies.no_manager_online", "is empty"} {
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
