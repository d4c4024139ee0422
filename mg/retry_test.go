package mg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestJitteredStaysWithinBounds(t *testing.T) {
	base, ceiling := 100*time.Millisecond, time.Second
	for n := 1; n <= 10; n++ {
		d := base << (n - 1)
		if d > ceiling {
			d = ceiling
		}
		for range 200 {
			got := jittered(base, ceiling, n)
			if got < d/2 || got > d {
				t.Fatalf("retry %d: %v outside [%v, %v]", n, got, d/2, d)
			}
		}
	}
	if got := jittered(0, 0, 3); got != 0 {
		t.Fatalf("zero base: %v", got)
	}
}

func TestRetryable(t *testing.T) {
	for status, want := range map[int]bool{
		429: true, 500: true, 502: true, 503: true, 504: true,
		501: false, 505: false, 400: false, 401: false, 404: false, 409: false,
	} {
		if got := retryable(status, nil); got != want {
			t.Errorf("status %d: %v, want %v", status, got, want)
		}
	}
	if !retryable(0, errors.New("connection reset")) {
		t.Error("a network error must be retryable")
	}
	if retryable(0, context.Canceled) || retryable(0, context.DeadlineExceeded) {
		t.Error("context errors must not be retried")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	h := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	tests := []struct {
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{http.Header{}, 0, false},
		{h("3"), 3 * time.Second, true},
		{h("0"), 0, true},
		{h("-1"), 0, false},
		{h("soon"), 0, false},
		{h(now.Add(5 * time.Second).Format(http.TimeFormat)), 5 * time.Second, true},
		{h(now.Add(-time.Minute).Format(http.TimeFormat)), 0, true},
		{h("999999999"), 24 * time.Hour, true},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.h, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%v: got %v %v, want %v %v", tt.h, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRetryPolicyValidation(t *testing.T) {
	bad := []RetryPolicy{
		{MaxAttempts: -1},
		{BaseDelay: -time.Second},
		{MaxDelay: -time.Second},
		{MaxRetryAfter: -time.Second},
		{BaseDelay: time.Second, MaxDelay: time.Millisecond},
	}
	for _, p := range bad {
		if _, err := New("https://mg.example", "t", WithRetry(p)); err == nil || !strings.HasPrefix(err.Error(), "mg: WithRetry: ") {
			t.Errorf("%+v: got %v, want an error naming WithRetry", p, err)
		}
	}
	if _, err := New("https://mg.example", "t", nil); err == nil || err.Error() != "mg: nil option" {
		t.Errorf("nil option: got %v, want mg: nil option", err)
	}
	c, err := New("https://mg.example", "t", WithRetry(RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if c.retry.MaxAttempts != 1 || c.retry.BaseDelay <= 0 || c.retry.Sleep == nil {
		t.Fatalf("defaults not applied: %+v", c.retry)
	}
}

func TestRefusedAndMayHaveApplied(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	read := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	tests := []struct {
		name           string
		status         int
		err            error
		refused, maybe bool
	}{
		{"429", 429, nil, true, false},
		{"503", 503, nil, true, false},
		{"500", 500, nil, false, true},
		{"502", 502, nil, false, true},
		{"504", 504, nil, false, true},
		{"501", 501, nil, false, false},
		{"505", 505, nil, false, false},
		{"400", 400, nil, false, false},
		{"404", 404, nil, false, false},
		{"dial error", 0, fmt.Errorf("post: %w", dial), false, false},
		{"DNS error", 0, &net.DNSError{Err: "no such host", Name: "mg.example"}, false, false},
		{"reset after sending", 0, read, false, true},
		{"EOF", 0, io.ErrUnexpectedEOF, false, true},
		{"timeout", 0, context.DeadlineExceeded, false, true},
	}
	for _, tt := range tests {
		if got := refused(tt.status, tt.err); got != tt.refused {
			t.Errorf("%s: refused = %v, want %v", tt.name, got, tt.refused)
		}
		if got := mayHaveApplied(tt.status, tt.err); got != tt.maybe {
			t.Errorf("%s: mayHaveApplied = %v, want %v", tt.name, got, tt.maybe)
		}
	}
}

func TestRefusedPolicyValidationAndDefaults(t *testing.T) {
	for _, p := range []RetryPolicy{{RefusedAttempts: -1}, {RefusedMaxWait: -time.Second}} {
		if _, err := New("https://mg.example", "t", WithRetry(p)); err == nil {
			t.Errorf("%+v: want an error", p)
		}
	}
	c, err := New("https://mg.example", "t")
	if err != nil {
		t.Fatal(err)
	}
	if c.retry.RefusedAttempts != 3 || c.retry.RefusedMaxWait != 10*time.Second {
		t.Fatalf("defaults: %+v", c.retry)
	}
}
