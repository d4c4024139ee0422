package mg

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. An [*APIError] matches them with errors.Is by its status
// and message; other errors of this package wrap them where noted.
var (
	// ErrNotFound: MG answered 404 (e.g. "dialog #N not found").
	ErrNotFound = errors.New("mg: not found")
	// ErrUnauthorized: MG answered 401 or 403; the bot token is wrong,
	// revoked or lacks access. (The status codes MG uses for a bad token
	// are not documented.)
	ErrUnauthorized = errors.New("mg: unauthorized")
	// ErrRateLimited: MG answered 429.
	ErrRateLimited = errors.New("mg: rate limited")
	// ErrUnavailable: MG answered with a 5xx status.
	ErrUnavailable = errors.New("mg: server error")
	// ErrDialogNotLatest: MG refused to (un)assign a dialog that is not the
	// latest in its chat (400 "dialog is not the latest in the chat"). Only
	// the latest dialog of a chat can be assigned; re-read the chat.
	ErrDialogNotLatest = errors.New("mg: dialog is not the latest in the chat")
	// ErrDialogClosed: MG refused an operation on a closed dialog (400
	// "dialog is closed"; the wording is the sandbox's, MG's own is not
	// documented, so any 400 message mentioning a closed dialog matches).
	// The Bot API fixes no error texts: treat a match as a hint only, and
	// learn whether a dialog is closed from its state ([Client.DialogStatus]).
	ErrDialogClosed = errors.New("mg: dialog is closed")
	// ErrDialogNotAssigned: MG refused to unassign a dialog nobody is
	// responsible for (400 "dialog is not assigned").
	ErrDialogNotAssigned = errors.New("mg: dialog is not assigned")
	// ErrUnknownEvent: a websocket event has a type this package does not
	// know. [DecodeEvent] still returns its envelope and raw data.
	ErrUnknownEvent = errors.New("mg: unknown event type")
	// ErrMalformedEvent: a websocket frame is not a valid event.
	ErrMalformedEvent = errors.New("mg: malformed event")
	// ErrAmbiguous is wrapped by the error of a call that is not safe to
	// repeat (sending a message, unassigning, closing) when it failed in a
	// way that leaves open whether MG applied it: a 5xx answer other than
	// 501, 503 and 505, a timeout or a connection lost after the request
	// was sent, or a 2xx answer that could not be read. Such a call is not
	// retried by the Client. Before repeating it, look whether it took
	// effect; for a message, [Client.HasSent] does.
	ErrAmbiguous = errors.New("mg: outcome unknown, MG may have applied the call")
)

// RetryAfter returns the delay MG asked for before a call is tried again,
// when err carries MG's 429 or 503 answer with a positive Retry-After (in
// seconds or as an HTTP date, read when the answer came); see
// [APIError.RetryAfter]. It is how a job queue retries a reply after the
// server's delay when the Client gave up waiting itself. ok is false for
// any other error and for such an answer without the header; the caller
// then waits as it sees fit.
func RetryAfter(err error) (d time.Duration, ok bool) {
	var e *APIError
	if !errors.As(err, &e) {
		return 0, false
	}
	d = e.RetryAfter()
	return d, d > 0
}

// APIError is a non-2xx answer of the Bot API.
//
// Error strings never carry the bot token: any occurrence of it in MG's
// answer is masked before the APIError is built.
type APIError struct {
	// Method and Path name the request, e.g. "PATCH" and
	// "/dialogs/5/assign" (relative to /api/bot/v1, without the query).
	Method string
	Path   string
	// Status is the HTTP status code.
	Status int
	// Errors is MG's {"errors":[...]} list; empty when the body was empty
	// or not MG's error JSON.
	Errors []string
	// Body holds the start (at most 512 bytes) of a body that was not MG's
	// error JSON, for diagnosis; empty otherwise.
	Body string
	// RetryDelay is the answer's Retry-After header as a delay from when
	// the answer came; zero when there was none.
	RetryDelay time.Duration
}

// RetryAfter returns how long MG asked to wait before trying again: the
// Retry-After of a 429 or 503 answer, zero for other answers and when MG
// sent none. (Code that must not import this package finds it through
// errors.As with interface{ RetryAfter() time.Duration }.)
func (e *APIError) RetryAfter() time.Duration {
	if e.Status != http.StatusTooManyRequests && e.Status != http.StatusServiceUnavailable || e.RetryDelay < 0 {
		return 0
	}
	return e.RetryDelay
}

// Error implements error, e.g.
// "mg: PATCH /dialogs/5/assign: 400 Bad Request: dialog is not the latest in the chat".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mg: %s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	switch {
	case len(e.Errors) > 0:
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Errors, "; "))
	case e.Body != "":
		fmt.Fprintf(&b, ": body %q", e.Body)
	}
	return b.String()
}

// Is reports whether the error matches one of the package's sentinels:
// ErrNotFound (404), ErrUnauthorized (401, 403), ErrRateLimited (429),
// ErrUnavailable (5xx), ErrDialogNotLatest, ErrDialogNotAssigned and
// ErrDialogClosed (by MG's message).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Status >= 500 && e.Status <= 599
	case ErrDialogNotLatest:
		return e.has("dialog is not the latest in the chat")
	case ErrDialogNotAssigned:
		return e.has("dialog is not assigned")
	case ErrDialogClosed:
		return e.Status == http.StatusBadRequest && (e.has("dialog is closed") || e.has("dialog closed"))
	}
	return false
}

func (e *APIError) has(msg string) bool {
	for _, s := range e.Errors {
		if strings.Contains(strings.ToLower(s), msg) {
			return true
		}
	}
	return false
}

const maxErrorBody = 512

// newAPIError builds the APIError of an answer. It never fails and never
// panics, whatever the body holds; secret is masked wherever it occurs.
func newAPIError(method, path string, status int, body []byte, secret string) *APIError {
	e := &APIError{Method: method, Path: path, Status: status}
	e.Errors = parseErrorList(body)
	if e.Errors == nil && len(strings.TrimSpace(string(body))) > 0 {
		b := body
		if len(b) > maxErrorBody {
			b = b[:maxErrorBody]
			for len(b) > 0 && !utf8.Valid(b) {
				b = b[:len(b)-1]
			}
		}
		e.Body = string(b)
	}
	if secret != "" {
		for i, s := range e.Errors {
			e.Errors[i] = strings.ReplaceAll(s, secret, "[secret]")
		}
		e.Body = strings.ReplaceAll(e.Body, secret, "[secret]")
	}
	return e
}

// parseErrorList reads MG's {"errors": [...]} body. It accepts the
// documented array of strings and, leniently, a single string, an array of
// other values or an object of field messages. It returns nil when the body
// holds no such list.
func parseErrorList(body []byte) []string {
	var env struct {
		Errors json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &env) != nil || len(env.Errors) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(env.Errors, &list) == nil {
		return nonEmpty(list)
	}
	var one string
	if json.Unmarshal(env.Errors, &one) == nil {
		return nonEmpty([]string{one})
	}
	var anyList []any
	if json.Unmarshal(env.Errors, &anyList) == nil {
		out := make([]string, 0, len(anyList))
		for _, v := range anyList {
			out = append(out, fmt.Sprint(v))
		}
		return nonEmpty(out)
	}
	var fields map[string]any
	if json.Unmarshal(env.Errors, &fields) == nil {
		out := make([]string, 0, len(fields))
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			out = append(out, fmt.Sprintf("%s: %v", k, fields[k]))
		}
		return nonEmpty(out)
	}
	return nil
}

func nonEmpty(list []string) []string {
	out := list[:0]
	for _, s := range list {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
