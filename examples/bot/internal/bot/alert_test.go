package bot_test

import (
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bottest"
	"github.com/botdistributor/botdistributor/store"
)

// waitAlerts returns botdistributor_wait_alerts_total of each account.
func waitAlerts(t *testing.T, m *bot.Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "botdistributor_wait_alerts_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "account" {
					out[l.GetValue()] = s.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// The wait alerts hook counts per account, through CombineHooks too, and
// Touch shows an account's counter at zero before any alert.
func TestWaitAlertMetrics(t *testing.T) {
	m := bot.NewMetrics()
	m.Touch("quiet")
	var seen []bd.DialogID
	h := bot.CombineHooks(m.Hooks(), distributor.Hooks{WaitAlert: func(_ bd.AccountID, a distributor.WaitAlert) {
		seen = append(seen, a.Dialog)
	}})
	if h.WaitAlert == nil {
		t.Fatal("CombineHooks dropped WaitAlert")
	}
	a := distributor.WaitAlert{Dialog: 7, Waited: 6 * time.Minute, Threshold: 5 * time.Minute}
	h.WaitAlert("shop", a)
	h.WaitAlert("shop", a)
	h.WaitAlert("other", a)
	got := waitAlerts(t, m)
	want := map[string]float64{"quiet": 0, "shop": 2, "other": 1}
	for acc, n := range want {
		if v, ok := got[acc]; !ok || v != n {
			t.Errorf("wait_alerts_total{account=%q} = %v (present %v), want %v", acc, v, ok, n)
		}
	}
	if len(seen) != 3 {
		t.Errorf("the other hook saw %d alerts, want 3", len(seen))
	}
}

// The longest wait (the dashboard's and the gauge's) is the oldest
// dialog's, also when the queue's priorities put it past the dialogs the
// dashboard lists.
func TestWaitAlertLongestWaitBehindPriorities(t *testing.T) {
	ctx := ctxFor(t)
	storage := mustStorage(t)
	sup, err := bot.New(bottest.Options(storage.Store))
	if err != nil {
		t.Fatal(err)
	}
	bottest.Start(t, sup)
	env := bottest.NewEnv(t)
	id := env.Connect(t, sup) // not active: its queue waits untouched
	now := time.Now()
	for i := range 60 {
		w := store.Waiting{Reason: bd.NoManagerOnline, Priority: 1, Since: now.Add(-time.Minute)}
		if i == 59 { // the oldest, last in queue order
			w.Priority, w.Since = 0, now.Add(-3*time.Hour)
		}
		w.Dialog = bd.Dialog{Account: id, ID: bd.DialogID(100 + i), Chat: bd.ChatID(200 + i), Channel: env.Shop, OpenedAt: w.Since}
		if _, err := storage.Store.Enqueue(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	d, err := sup.Dashboard(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Queue != 60 || len(d.Waiting) >= 60 {
		t.Fatalf("queue %d, listed %d: want 60 with fewer listed", d.Queue, len(d.Waiting))
	}
	if d.LongestWait < 3*time.Hour {
		t.Fatalf("longest wait %s, want at least 3h (dialog 159's)", d.LongestWait)
	}
}
