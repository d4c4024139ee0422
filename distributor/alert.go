package distributor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/alert"
)

// alertSendTimeout bounds one webhook delivery, its retries included;
// alertCloseGrace is how long Close lets a delivery in flight go on.
const (
	alertSendTimeout = time.Minute
	alertCloseGrace  = 5 * time.Second
)

// WaitAlert says that the longest wait of the account's queue passed the
// account's bound, bd.Settings.WaitAlert (see [Hooks].WaitAlert).
type WaitAlert struct {
	// Dialog is the dialog that has waited longest.
	Dialog bd.DialogID
	// Waited is how long it had waited At.
	Waited time.Duration
	// Threshold is the bound it passed.
	Threshold time.Duration
	// At is when the sweep saw the breach, on the distributor's clock.
	At time.Time
}

// waitAlerts remembers whether the account's queue is in a breach already,
// so that a breach is alerted once.
type waitAlerts struct {
	mu       sync.Mutex
	breached bool
}

// checkWait raises a wait alert when the longest wait of the account's
// queue has passed bd.Settings.WaitAlert and was not past it at the
// previous check. Sweep calls it; an account that is not active, has no
// bound or waits for nobody ends any breach. The longest wait is the
// oldest dialog's (by Since, its opening), wherever the queue's priorities
// put it. The alert is logged, given to Hooks.WaitAlert and, with an
// AlertWebhook, posted in the background (never delaying the sweep).
func (d *Distributor) checkWait(ctx context.Context, a *account) {
	s := &a.snap.Load().settings
	bound := s.WaitAlert
	d.alerts.mu.Lock()
	defer d.alerts.mu.Unlock()
	if !s.Active || bound <= 0 {
		d.alerts.breached = false
		return
	}
	ws, err := d.store.Waiting(ctx, a.id, 1<<30)
	if err != nil {
		d.fail(a.id, "wait alert", err)
		return // the breach stays as it was
	}
	var oldest *bd.Dialog
	var since time.Time
	for i := range ws {
		w := &ws[i]
		if w.Since.IsZero() {
			continue
		}
		if oldest == nil || w.Since.Before(since) || (w.Since.Equal(since) && w.Dialog.ID < oldest.ID) {
			oldest, since = &w.Dialog, w.Since
		}
	}
	now := d.cfg.now()
	if oldest == nil || now.Sub(since) <= bound {
		d.alerts.breached = false
		return
	}
	if d.alerts.breached {
		return
	}
	d.alerts.breached = true
	wa := WaitAlert{Dialog: oldest.ID, Waited: now.Sub(since), Threshold: bound, At: now}
	d.cfg.logger.Warn("distributor: longest wait over the alert threshold",
		slog.String("account", string(a.id)), slog.Int64("dialog", int64(wa.Dialog)),
		slog.Duration("wait", wa.Waited), slog.Duration("threshold", bound))
	if d.cfg.hooks.WaitAlert != nil {
		d.cfg.hooks.WaitAlert(a.id, wa)
	}
	if s.AlertWebhook != "" {
		d.postAlert(a.id, s.AlertWebhook, s.AlertSecret, wa)
	}
}

// postAlert posts wa to the webhook in a goroutine of the distributor's,
// which Close waits for: a post in flight gets alertCloseGrace to finish
// (its retries included) before Close cancels it. Failures are reported
// as "alert webhook".
func (d *Distributor) postAlert(id bd.AccountID, url, secret string, wa WaitAlert) {
	hook, err := alert.NewWebhook(url, secret)
	if err != nil {
		d.fail(id, "alert webhook", err)
		return
	}
	d.goBackground(func(base context.Context) {
		// Close does not cut a post short at once: it has alertCloseGrace
		// to finish, then it is canceled.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(base), alertSendTimeout)
		defer cancel()
		stop := context.AfterFunc(base, func() { time.AfterFunc(alertCloseGrace, cancel) })
		defer stop()
		err := hook.Send(ctx, alert.Alert{Account: id, Dialog: wa.Dialog, Waited: wa.Waited, Threshold: wa.Threshold, At: wa.At})
		if err != nil {
			d.fail(id, "alert webhook", fmt.Errorf("dialog %d: %w", wa.Dialog, err))
		}
	})
}
