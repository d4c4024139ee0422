package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/botdistributor/botdistributor/alert"
)

// A receiver checks the signature of the exact body bytes before it trusts
// them; the sender is what the distributor uses for an account with
// AlertWebhook set.
func Example() {
	const secret = "the account's AlertSecret"
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || !alert.Verify(secret, body, r.Header.Get(alert.SignatureHeader)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p alert.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Printf("%s: dialog %d waited %.0fs (bound %.0fs) at %s\n", p.Account, p.Dialog, p.WaitedSeconds, p.ThresholdSeconds, p.At)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	hook, err := alert.NewWebhook(receiver.URL, secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = hook.Send(context.Background(), alert.Alert{
		Account:   "shop",
		Dialog:    42,
		Waited:    6 * time.Minute,
		Threshold: 5 * time.Minute,
		At:        time.Date(2026, 3, 2, 10, 6, 0, 0, time.UTC),
	})
	fmt.Println("sent:", err == nil)

	forged, _ := alert.NewWebhook(receiver.URL, "a guess")
	err = forged.Send(context.Background(), alert.Alert{Account: "shop", Dialog: 1})
	var se *alert.StatusError
	if errors.As(err, &se) {
		fmt.Println("forged:", se.Status)
	}
	// Output:
	// shop: dialog 42 waited 360s (bound 300s) at 2026-03-02T10:06:00Z
	// sent: true
	// forged: 401
}
