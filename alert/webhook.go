// Package alert tells the outside world that an account's customers wait
// too long: a [Webhook] posts an [Alert] as signed JSON to a URL of the
// account's choosing, and [Verify] lets the receiver check the signature.
//
// The distributor raises a wait alert when the longest wait of an account's
// queue first passes the account's bd.Settings.WaitAlert, once per breach
// (see package distributor). With bd.Settings.AlertWebhook set it posts the
// alert here; the body is [Payload] in JSON:
//
//	{"account":"shop","dialog":42,"waited_seconds":312.5,"threshold_seconds":300,"at":"2026-03-02T10:05:12Z"}
//
// and the header X-Botdistributor-Signature carries "sha256=" and the hex
// HMAC-SHA256 of the exact body bytes, keyed with bd.Settings.AlertSecret.
// A receiver reads the whole body, checks it with [Verify] before decoding,
// and answers any 2xx status. A network error, 429 or 5xx is retried with a
// doubling backoff (a Retry-After in seconds is honoured up to the backoff's
// ceiling) for a few attempts; any other status is final. Redirects are not
// followed.
package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/internal/backoff"
	"github.com/botdistributor/botdistributor/internal/option"
)

// SignatureHeader is the header that carries the body's signature.
const SignatureHeader = "X-Botdistributor-Signature"

// Defaults of a Webhook's retries: up to DefaultAttempts tries, waiting
// DefaultBackoff before the first retry, doubling up to DefaultMaxBackoff,
// each try bounded by DefaultAttemptTimeout. With them one Send takes at
// most about 4×10s + 1s + 2s + 4s = 47s.
const (
	DefaultAttempts       = 4
	DefaultBackoff        = time.Second
	DefaultMaxBackoff     = 10 * time.Second
	DefaultAttemptTimeout = 10 * time.Second
)

// Alert says that the longest wait of an account's queue passed its bound.
type Alert struct {
	Account bd.AccountID
	// Dialog is the dialog that has waited longest.
	Dialog bd.DialogID
	// Waited is how long it had waited At.
	Waited time.Duration
	// Threshold is the account's bound (bd.Settings.WaitAlert).
	Threshold time.Duration
	// At is when the breach was seen.
	At time.Time
}

// Payload is the JSON body of a webhook; a receiver may decode into it.
type Payload struct {
	Account string      `json:"account"`
	Dialog  bd.DialogID `json:"dialog"`
	// WaitedSeconds and ThresholdSeconds are durations in seconds, with
	// fractions.
	WaitedSeconds    float64 `json:"waited_seconds"`
	ThresholdSeconds float64 `json:"threshold_seconds"`
	// At is RFC 3339 in UTC.
	At string `json:"at"`
}

// Body returns the JSON body a Webhook posts for a.
func Body(a Alert) ([]byte, error) {
	return json.Marshal(Payload{
		Account:          string(a.Account),
		Dialog:           a.Dialog,
		WaitedSeconds:    a.Waited.Seconds(),
		ThresholdSeconds: a.Threshold.Seconds(),
		At:               a.At.UTC().Format(time.RFC3339),
	})
}

// Sign returns the signature header's value for body: "sha256=" and the
// hex HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header (the value of [SignatureHeader]) is the
// signature of body under secret. It compares in constant time; an empty
// secret or a header of another form never verifies.
func Verify(secret string, body []byte, header string) bool {
	hexSum, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || secret == "" {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// StatusError is a webhook's final answer that was not 2xx.
type StatusError struct {
	// URL is the webhook's address without its query and user info (which
	// may hold credentials).
	URL      string
	Status   int
	Attempts int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("alert: webhook %s answered %d %s (attempt %d)", e.URL, e.Status, http.StatusText(e.Status), e.Attempts)
}

// Webhook posts alerts to one URL. It is safe for concurrent use.
type Webhook struct {
	url      string
	shown    string // url without query and user info, for errors
	secret   string
	client   *http.Client
	attempts int
	first    time.Duration
	ceiling  time.Duration
	timeout  time.Duration
}

// Option configures a Webhook; pass options to [NewWebhook].
type Option interface {
	apply(*Webhook) error
}

type optionFunc func(*Webhook) error

func (f optionFunc) apply(w *Webhook) error { return f(w) }

// WithClient sets the HTTP client. The default is a client of its own
// that follows no redirects and takes proxies from the environment.
func WithClient(c *http.Client) Option {
	return optionFunc(func(w *Webhook) error {
		if c == nil {
			return errors.New("WithClient: nil client")
		}
		w.client = c
		return nil
	})
}

// WithAttempts sets how many times a Send tries at most; 0 means
// [DefaultAttempts].
func WithAttempts(n int) Option {
	return optionFunc(func(w *Webhook) error {
		switch {
		case n < 0:
			return fmt.Errorf("WithAttempts: negative count %d", n)
		case n == 0:
			n = DefaultAttempts
		}
		w.attempts = n
		return nil
	})
}

// WithBackoff sets the wait before the first retry (it doubles on each
// further retry) and its ceiling. Zero means [DefaultBackoff] and
// [DefaultMaxBackoff]; a ceiling below first is raised to first; a
// negative duration is refused.
func WithBackoff(first, ceiling time.Duration) Option {
	return optionFunc(func(w *Webhook) error {
		lo, hi, err := backoff.Bounds(first, ceiling, DefaultBackoff, DefaultMaxBackoff)
		if err != nil {
			return fmt.Errorf("WithBackoff: %w", err)
		}
		w.first, w.ceiling = lo, hi
		return nil
	})
}

// WithAttemptTimeout bounds each try; 0 means [DefaultAttemptTimeout].
func WithAttemptTimeout(d time.Duration) Option {
	return optionFunc(func(w *Webhook) error {
		switch {
		case d < 0:
			return fmt.Errorf("WithAttemptTimeout: negative timeout %v", d)
		case d == 0:
			d = DefaultAttemptTimeout
		}
		w.timeout = d
		return nil
	})
}

// NewWebhook returns a Webhook posting to rawURL (http or https) and
// signing with secret (not empty).
func NewWebhook(rawURL, secret string, opts ...Option) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("alert: the webhook must be an http or https URL")
	}
	if secret == "" {
		return nil, errors.New("alert: empty webhook secret")
	}
	shown := *u
	shown.User, shown.RawQuery, shown.ForceQuery, shown.Fragment = nil, "", false, ""
	w := &Webhook{
		url:      rawURL,
		shown:    shown.String(),
		secret:   secret,
		attempts: DefaultAttempts,
		first:    DefaultBackoff,
		ceiling:  DefaultMaxBackoff,
		timeout:  DefaultAttemptTimeout,
	}
	if err := option.Apply(opts, func(o Option) error { return o.apply(w) }); err != nil {
		return nil, fmt.Errorf("alert: %w", err)
	}
	if w.client == nil {
		w.client = &http.Client{
			Transport:     http.DefaultTransport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return w, nil
}

// Send posts a, signed, and returns nil once the webhook answered 2xx. A
// network error, 429 or 5xx is tried again after a backoff; any other
// status ends at once with a *StatusError. Send gives up when ctx ends or
// after the last attempt, returning the last error; it never blocks longer
// than its attempts, their timeouts and the waits between them.
func (w *Webhook) Send(ctx context.Context, a Alert) error {
	body, err := Body(a)
	if err != nil {
		return fmt.Errorf("alert: encode: %w", err)
	}
	sig := Sign(w.secret, body)
	wait := w.first
	for attempt := 1; ; attempt++ {
		retry, after, err := w.post(ctx, body, sig, attempt)
		if err == nil {
			return nil
		}
		if !retry || attempt >= w.attempts {
			return err
		}
		d := min(max(wait, after), w.ceiling)
		wait = min(2*wait, w.ceiling)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// post makes one attempt. It reports whether a failure may be retried and
// how long the server asked to wait first.
func (w *Webhook) post(ctx context.Context, body []byte, sig string, attempt int) (retry bool, after time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return false, 0, fmt.Errorf("alert: webhook %s: %w", w.shown, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "botdistributor")
	req.Header.Set(SignatureHeader, sig)
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the full URL
		}
		return true, 0, fmt.Errorf("alert: webhook %s (attempt %d): %w", w.shown, attempt, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, 0, nil
	}
	serr := &StatusError{URL: w.shown, Status: resp.StatusCode, Attempts: attempt}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
			after = time.Duration(s) * time.Second
		}
		return true, after, serr
	default:
		return false, 0, serr
	}
}
