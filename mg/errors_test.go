package mg

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNewAPIErrorBodies(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantErrors []string
		wantBody   string
	}{
		{"documented list", `{"errors":["dialog #5 not found"]}`, []string{"dialog #5 not found"}, ""},
		{"several", `{"errors":["a","b"]}`, []string{"a", "b"}, ""},
		{"empty body", ``, nil, ""},
		{"whitespace body", " \n", nil, ""},
		{"empty list", `{"errors":[]}`, nil, `{"errors":[]}`},
		{"null list", `{"errors":null}`, nil, `{"errors":null}`},
		{"blank strings", `{"errors":["", "  "]}`, nil, `{"errors":["", "  "]}`},
		{"single string", `{"errors":"bad token"}`, []string{"bad token"}, ""},
		{"non-string items", `{"errors":[1,true]}`, []string{"1", "true"}, ""},
		{"field map", `{"errors":{"scope":"is required","chat_id":"is required"}}`, []string{"chat_id: is required", "scope: is required"}, ""},
		{"no errors key", `{"message":"oops"}`, nil, `{"message":"oops"}`},
		{"not json", `<html>502 Bad Gateway</html>`, nil, `<html>502 Bad Gateway</html>`},
		{"truncated json", `{"errors":["a"`, nil, `{"errors":["a"`},
		{"array body", `["x"]`, nil, `["x"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAPIError("GET", "/dialogs", 400, []byte(tt.body), "")
			if strings.Join(e.Errors, "|") != strings.Join(tt.wantErrors, "|") {
				t.Errorf("Errors = %q, want %q", e.Errors, tt.wantErrors)
			}
			if e.Body != tt.wantBody {
				t.Errorf("Body = %q, want %q", e.Body, tt.wantBody)
			}
			if !strings.HasPrefix(e.Error(), "mg: GET /dialogs: 400 Bad Request") {
				t.Errorf("Error() = %q", e.Error())
			}
		})
	}
}

func TestNewAPIErrorTruncatesLongBodiesOnRuneBoundary(t *testing.T) {
	body := strings.Repeat("я", 400) // 800 bytes
	e := newAPIError("GET", "/x", 502, []byte(body), "")
	if len(e.Body) > maxErrorBody {
		t.Fatalf("Body has %d bytes, want at most %d", len(e.Body), maxErrorBody)
	}
	if !strings.HasPrefix(body, e.Body) || strings.ContainsRune(e.Body, '\uFFFD') {
		t.Fatalf("Body was not cut on a rune boundary: %q", e.Body[len(e.Body)-4:])
	}
}

func TestNewAPIErrorMasksSecret(t *testing.T) {
	const token = "s3cr3t-token"
	e := newAPIError("GET", "/bots", 401, []byte(`{"errors":["token s3cr3t-token is revoked"]}`), token)
	if strings.Contains(e.Error(), token) {
		t.Fatalf("token leaked: %q", e.Error())
	}
	e = newAPIError("GET", "/bots", 502, []byte(`proxy saw s3cr3t-token`), token)
	if strings.Contains(e.Error(), token) {
		t.Fatalf("token leaked from body: %q", e.Error())
	}
}

func TestAPIErrorIs(t *testing.T) {
	tests := []struct {
		status int
		errs   []string
		match  []error
	}{
		{404, []string{"dialog #9 not found"}, []error{ErrNotFound}},
		{401, nil, []error{ErrUnauthorized}},
		{403, nil, []error{ErrUnauthorized}},
		{429, nil, []error{ErrRateLimited}},
		{500, nil, []error{ErrUnavailable}},
		{503, nil, []error{ErrUnavailable}},
		{400, []string{"Dialog is not the latest in the chat"}, []error{ErrDialogNotLatest}},
		{400, []string{"dialog is not assigned"}, []error{ErrDialogNotAssigned}},
		{400, []string{"Dialog is closed"}, []error{ErrDialogClosed}},
		{400, []string{"something else"}, nil},
	}
	all := []error{ErrNotFound, ErrUnauthorized, ErrRateLimited, ErrUnavailable, ErrDialogNotLatest, ErrDialogNotAssigned, ErrDialogClosed}
	for _, tt := range tests {
		var err error = &APIError{Method: "GET", Path: "/x", Status: tt.status, Errors: tt.errs}
		for _, s := range all {
			want := false
			for _, m := range tt.match {
				want = want || m == s
			}
			if got := errors.Is(err, s); got != want {
				t.Errorf("status %d %q: errors.Is(%v) = %v, want %v", tt.status, tt.errs, s, got, want)
			}
		}
	}
}

func TestRetryAfterOfErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		d    time.Duration
		ok   bool
	}{
		{"429 with delay", &APIError{Status: 429, RetryDelay: 2 * time.Second}, 2 * time.Second, true},
		{"wrapped 503 with delay", fmt.Errorf("reply: %w", &APIError{Status: 503, RetryDelay: time.Second}), time.Second, true},
		{"429 without delay", &APIError{Status: 429}, 0, false},
		{"500 with delay", &APIError{Status: 500, RetryDelay: time.Second}, 0, false},
		{"not an API error", errors.New("boom"), 0, false},
		{"nil", nil, 0, false},
	}
	for _, tt := range tests {
		d, ok := RetryAfter(tt.err)
		if d != tt.d || ok != tt.ok {
			t.Errorf("%s: RetryAfter = %v, %v; want %v, %v", tt.name, d, ok, tt.d, tt.ok)
		}
	}
}

func TestAPIErrorRetryAfterMethod(t *testing.T) {
	var ra interface{ RetryAfter() time.Duration }
	err := fmt.Errorf("reply: %w", &APIError{Status: 429, RetryDelay: 3 * time.Second})
	if !errors.As(err, &ra) || ra.RetryAfter() != 3*time.Second {
		t.Fatalf("errors.As found %v", ra)
	}
	if d := (&APIError{Status: 502, RetryDelay: time.Second}).RetryAfter(); d != 0 {
		t.Fatalf("a 502 asks for %v", d)
	}
}
