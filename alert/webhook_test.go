package alert_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/botdistributor/botdistributor/alert"
)

var at = time.Date(2026, 3, 2, 10, 5, 12, 0, time.UTC)

func sample() alert.Alert {
	return alert.Alert{Account: "shop", Dialog: 42, Waited: 312500 * time.Millisecond, Threshold: 5 * time.Minute, At: at}
}

// receiver is a webhook endpoint that answers with the statuses in turn
// (the last one from then on) and records what it got.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	headers  []http.Header
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.bodies)
	r.bodies = append(r.bodies, body)
	r.headers = append(r.headers, req.Header.Clone())
	status := r.statuses[min(n, len(r.statuses)-1)]
	r.mu.Unlock()
	w.WriteHeader(status)
}

func (r *receiver) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

func newWebhook(t *testing.T, url string, opts ...alert.Option) *alert.Webhook {
	t.Helper()
	opts = append([]alert.Option{alert.WithBackoff(time.Millisecond, time.Millisecond)}, opts...)
	w, err := alert.NewWebhook(url, "s3cret", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWaitAlertWebhookBodyAndSignature(t *testing.T) {
	r := &receiver{statuses: []int{http.StatusNoContent}}
	srv := httptest.NewServer(r)
	defer srv.Close()
	if err := newWebhook(t, srv.URL+"/hook").Send(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	if r.calls() != 1 {
		t.Fatalf("%d posts, want 1", r.calls())
	}
	body, h := r.bodies[0], r.headers[0]
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	want := map[string]any{"account": "shop", "dialog": 42.0, "waited_seconds": 312.5, "threshold_seconds": 300.0, "at": "2026-03-02T10:05:12Z"}
	if len(got) != len(want) {
		t.Errorf("body %s, want the fields %v", body, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("body field %q = %v, want %v", k, got[k], v)
		}
	}
	sig := h.Get(alert.SignatureHeader)
	if !alert.Verify("s3cret", body, sig) {
		t.Errorf("signature %q does not verify", sig)
	}
	// The documented form, computed apart from the package.
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write(body)
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
}

func TestWaitAlertVerify(t *testing.T) {
	body := []byte(`{"account":"shop"}`)
	sig := alert.Sign("key", body)
	cases := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"signed", "key", body, sig, true},
		{"surrounding space", "key", body, " " + sig + " ", true},
		{"other secret", "other", body, sig, false},
		{"other body", "key", []byte(`{"account":"shoq"}`), sig, false},
		{"no prefix", "key", body, strings.TrimPrefix(sig, "sha256="), false},
		{"not hex", "key", body, "sha256=zz", false},
		{"empty header", "key", body, "", false},
		{"empty secret", "", body, alert.Sign("", body), false},
	}
	for _, c := range cases {
		if got := alert.Verify(c.secret, c.body, c.header); got != c.want {
			t.Errorf("%s: Verify = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWaitAlertWebhookRetriesServerErrors(t *testing.T) {
	r := &receiver{statuses: []int{http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusOK}}
	srv := httptest.NewServer(r)
	defer srv.Close()
	if err := newWebhook(t, srv.URL).Send(context.Background(), sample()); err != nil {
		t.Fatalf("Send after 500, 429, 200: %v", err)
	}
	if r.calls() != 3 {
		t.Fatalf("%d posts, want 3", r.calls())
	}
	for i := 1; i < 3; i++ {
		if string(r.bodies[i]) != string(r.bodies[0]) {
			t.Errorf("post %d sent %s, the first %s", i+1, r.bodies[i], r.bodies[0])
		}
	}
}

func TestWaitAlertWebhookGivesUpAfterAttempts(t *testing.T) {
	r := &receiver{statuses: []int{http.StatusBadGateway}}
	srv := httptest.NewServer(r)
	defer srv.Close()
	err := newWebhook(t, srv.URL+"/hook?token=hidden", alert.WithAttempts(3)).Send(context.Background(), sample())
	var se *alert.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadGateway || se.Attempts != 3 {
		t.Fatalf("err %v, want a StatusError 502 after 3 attempts", err)
	}
	if r.calls() != 3 {
		t.Errorf("%d posts, want 3", r.calls())
	}
	msg := err.Error()
	if !strings.Contains(msg, srv.URL+"/hook") || !strings.Contains(msg, "502") {
		t.Errorf("error %q names neither the URL nor the status", msg)
	}
	if strings.Contains(msg, "hidden") {
		t.Errorf("error %q shows the URL's query", msg)
	}
}

func TestWaitAlertWebhookNoRetryOnClientError(t *testing.T) {
	r := &receiver{statuses: []int{http.StatusBadRequest, http.StatusOK}}
	srv := httptest.NewServer(r)
	defer srv.Close()
	err := newWebhook(t, srv.URL).Send(context.Background(), sample())
	var se *alert.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Fatalf("err %v, want a StatusError 400", err)
	}
	if r.calls() != 1 {
		t.Errorf("%d posts, want 1: a 400 is not retried", r.calls())
	}
}

func TestWaitAlertWebhookNetworkErrorRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	err := newWebhook(t, url, alert.WithAttempts(2)).Send(context.Background(), sample())
	if err == nil || !strings.Contains(err.Error(), "attempt 2") || !strings.Contains(err.Error(), url) {
		t.Fatalf("err %v, want a network error on attempt 2 naming %s", err, url)
	}
}

func TestWaitAlertWebhookHonoursContext(t *testing.T) {
	r := &receiver{statuses: []int{http.StatusServiceUnavailable}}
	srv := httptest.NewServer(r)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := newWebhook(t, srv.URL, alert.WithBackoff(time.Hour, time.Hour))
	done := make(chan error, 1)
	go func() { done <- w.Send(ctx, sample()) }()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("Send with a canceled context: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second): // a guard: the backoff is an hour
		t.Fatal("Send waited out its backoff on a canceled context")
	}
}

func TestWaitAlertNewWebhookRefusesBadInput(t *testing.T) {
	for _, c := range []struct{ url, secret string }{
		{"ftp://example.com/hook", "s"},
		{"not a url", "s"},
		{"https:///hook", "s"},
		{"https://example.com/hook", ""},
	} {
		if _, err := alert.NewWebhook(c.url, c.secret); err == nil {
			t.Errorf("NewWebhook(%q, %q) accepted", c.url, c.secret)
		}
	}
	if _, err := alert.NewWebhook("https://example.com", "s", alert.WithAttempts(-1), alert.WithBackoff(-1, 0)); err == nil ||
		!strings.Contains(err.Error(), "WithAttempts") || !strings.Contains(err.Error(), "WithBackoff") {
		t.Errorf("bad options: %v, want both named", err)
	}
}
