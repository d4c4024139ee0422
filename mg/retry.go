package mg

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says how a Client retries its calls.
//
// Idempotent calls (every GET and PATCH /dialogs/{id}/assign) are retried
// when they failed with 429, a 5xx status or a network error, up to
// MaxAttempts attempts.
//
// Calls that are not safe to repeat (POST /messages above all, and
// PATCH /dialogs/{id}/unassign and DELETE /dialogs/{id}/close) are retried
// only when MG refused them outright, so that nothing was applied: 429
// (throttled) and 503 (unavailable). They get at most RefusedAttempts
// attempts and RefusedMaxWait of waiting in total; a Retry-After that does
// not fit into what is left of RefusedMaxWait ends the retries at once and
// the call returns MG's answer, whose delay [RetryAfter] reports. Any other
// failure of such a call that may have happened after MG applied it (another
// 5xx, a timeout, a broken connection, an unreadable 2xx answer) is not
// retried: the error wraps [ErrAmbiguous].
//
// The delay before retry n (1-based) is drawn uniformly from
// [d/2, d] with d = min(BaseDelay * 2^(n-1), MaxDelay). A Retry-After
// header longer than that delay replaces it; one longer than MaxRetryAfter
// ends the retries and the call returns its error at once.
type RetryPolicy struct {
	// MaxAttempts is the most attempts of one call, the first included.
	// Default 4; 1 disables retries.
	MaxAttempts int
	// BaseDelay is the delay before the first retry. Default 250ms.
	BaseDelay time.Duration
	// MaxDelay caps the backoff. Default 5s.
	MaxDelay time.Duration
	// MaxRetryAfter is the longest Retry-After honoured. Default 30s.
	MaxRetryAfter time.Duration
	// RefusedAttempts is the most attempts of a call that is not safe to
	// repeat, the first included, when MG answers 429 or 503. Default 3;
	// 1 disables these retries.
	RefusedAttempts int
	// RefusedMaxWait bounds the total time such a call waits between its
	// attempts. Default 10s.
	RefusedMaxWait time.Duration
	// Sleep waits d or until ctx ends, returning ctx.Err() then. Nil means
	// a timer; tests inject their own.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (p RetryPolicy) validate() error {
	var problems []string
	if p.MaxAttempts < 0 {
		problems = append(problems, fmt.Sprintf("MaxAttempts must not be negative, got %d", p.MaxAttempts))
	}
	if p.BaseDelay < 0 {
		problems = append(problems, fmt.Sprintf("BaseDelay must not be negative, got %s", p.BaseDelay))
	}
	if p.MaxDelay < 0 {
		problems = append(problems, fmt.Sprintf("MaxDelay must not be negative, got %s", p.MaxDelay))
	}
	if p.MaxRetryAfter < 0 {
		problems = append(problems, fmt.Sprintf("MaxRetryAfter must not be negative, got %s", p.MaxRetryAfter))
	}
	if p.RefusedAttempts < 0 {
		problems = append(problems, fmt.Sprintf("RefusedAttempts must not be negative, got %d", p.RefusedAttempts))
	}
	if p.RefusedMaxWait < 0 {
		problems = append(problems, fmt.Sprintf("RefusedMaxWait must not be negative, got %s", p.RefusedMaxWait))
	}
	if p.BaseDelay > 0 && p.MaxDelay > 0 && p.MaxDelay < p.BaseDelay {
		problems = append(problems, fmt.Sprintf("MaxDelay %s is below BaseDelay %s", p.MaxDelay, p.BaseDelay))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 4
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = 250 * time.Millisecond
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = max(5*time.Second, p.BaseDelay)
	}
	if p.MaxRetryAfter == 0 {
		p.MaxRetryAfter = 30 * time.Second
	}
	if p.RefusedAttempts == 0 {
		p.RefusedAttempts = 3
	}
	if p.RefusedMaxWait == 0 {
		p.RefusedMaxWait = 10 * time.Second
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	return p
}

// backoff returns the jittered delay before retry n (1-based).
func (p RetryPolicy) backoff(n int) time.Duration {
	return jittered(p.BaseDelay, p.MaxDelay, n)
}

// jittered returns a duration drawn from [d/2, d], d = min(base*2^(n-1), ceiling).
func jittered(base, ceiling time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// refused reports whether MG refused a call without applying it, so that a
// call that is not safe to repeat may still be retried: 429 and 503.
func refused(status int, err error) bool {
	return err == nil && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable)
}

// mayHaveApplied reports whether a failed attempt of a call that is not
// safe to repeat may have been applied by MG: any 5xx but 501, 503 and 505,
// and any transport error except one that happened before the request left
// (a failed dial or name lookup).
func mayHaveApplied(status int, err error) bool {
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return false
		}
		var dns *net.DNSError
		return !errors.As(err, &dns)
	}
	switch status {
	case http.StatusNotImplemented, http.StatusServiceUnavailable, http.StatusHTTPVersionNotSupported:
		return false
	}
	return status >= 500 && status <= 599
}

// retryable reports whether a failed attempt may be retried.
func retryable(status int, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	switch {
	case status == http.StatusTooManyRequests:
		return true
	case status == http.StatusNotImplemented, status == http.StatusHTTPVersionNotSupported:
		return false
	case status >= 500 && status <= 599:
		return true
	}
	return false
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
