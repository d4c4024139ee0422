package bot_test

import (
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
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
