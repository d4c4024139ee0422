package crm

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"

	retailcrm "github.com/retailcrm/api-client-go/v2"
)

// Sentinel errors. Every [*Error] wraps exactly one of them; test with
// errors.Is. A call cut short by its context returns an error wrapping
// ctx.Err() instead, and invalid [Module] fields are reported as plain
// errors naming the field.
var (
	// ErrBadDomain: the account address is malformed (no host, a path, a
	// query, a scheme other than http or https). Found before any request.
	ErrBadDomain = errors.New("crm: malformed retailCRM address")
	// ErrInvalidKey: retailCRM rejected the API key as wrong or missing, or
	// the key given is empty.
	ErrInvalidKey = errors.New("crm: wrong API key")
	// ErrMissingScopes: the API key lacks permissions; the error is a
	// [*ScopeError] naming the sections to enable.
	ErrMissingScopes = errors.New("crm: the API key lacks required permissions")
	// ErrSiteAccess: the API key is limited to some stores; access to all
	// stores is required.
	ErrSiteAccess = errors.New("crm: the API key must have access to all stores")
	// ErrNotRetailCRM: the address does not answer as a retailCRM account
	// (an HTML page, "Account does not exist", a missing API).
	ErrNotRetailCRM = errors.New("crm: the address is not a retailCRM account")
	// ErrUnreachable: no answer from the host (DNS, refused or dropped
	// connection, timeout).
	ErrUnreachable = errors.New("crm: the retailCRM host cannot be reached")
	// ErrThrottled: retailCRM kept answering 503 or 429 (rate limit) after
	// every retry.
	ErrThrottled = errors.New("crm: retailCRM rate limit exceeded")
	// ErrUnavailable: retailCRM answered with a server error (5xx).
	ErrUnavailable = errors.New("crm: retailCRM is unavailable")
	// ErrAccessDenied: retailCRM refused this method for the key ("Access
	// denied."), typically a permission removed after connecting.
	ErrAccessDenied = errors.New("crm: access denied for this API key")
	// ErrNotFound: the object asked for does not exist (HTTP 404).
	ErrNotFound = errors.New("crm: not found")
	// ErrRejected: retailCRM rejected the request (validation and other 4xx).
	ErrRejected = errors.New("crm: request rejected")
	// ErrBadResponse: retailCRM answered with something this package cannot
	// use (unexpected JSON, missing fields).
	ErrBadResponse = errors.New("crm: unexpected answer from retailCRM")
)

// Temporary reports whether err is worth retrying later without anyone
// changing anything: throttling, a server error or an unreachable host.
func Temporary(err error) bool {
	return errors.Is(err, ErrThrottled) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnreachable)
}

// Error is a failed call to retailCRM.
//
// It never contains the API key: server messages are scrubbed of it.
type Error struct {
	// Op names the call, e.g. "customers list".
	Op string
	// Kind is the sentinel this error wraps.
	Kind error
	// Status is the HTTP status, or 0 when no answer was received.
	Status int
	// Detail is the server's message or the transport failure, if any.
	Detail string
	// Fields holds the server's per-field errors, if any.
	Fields map[string]string

	cause error
}

// Error implements error, e.g.
// "crm: customers list: wrong API key (HTTP 403): Wrong "apiKey" value.".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("crm: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(strings.TrimPrefix(e.Kind.Error(), "crm: "))
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if len(e.Fields) > 0 {
		keys := slices.Sorted(maps.Keys(e.Fields))
		b.WriteString(" [")
		for i, k := range keys {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(e.Fields[k])
		}
		b.WriteString("]")
	}
	return b.String()
}

// Unwrap returns the sentinel and, when there is one, the underlying cause
// (a transport error, context.Canceled, ...).
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Kind, e.cause}
	}
	return []error{e.Kind}
}

// Section is a group of API key permissions as retailCRM's key settings
// page shows them, with the scopes of it that a key lacks.
type Section struct {
	// Name is the section's name in the key settings: "Integration",
	// "Customers", "Users" or "Data books".
	Name string
	// Scopes are the missing scope names, e.g. "customer_write".
	Scopes []string
}

// ScopeError says which permissions an API key lacks. It matches
// [ErrMissingScopes] with errors.Is.
type ScopeError struct {
	// Missing lists the sections with missing scopes, in the order of
	// [Requirements].
	Missing []Section
}

// Error implements error: "crm: the API key lacks required permissions:
// Customers (customer_write), Users (user_read); allow them in the key's
// settings in retailCRM".
func (e *ScopeError) Error() string {
	var b strings.Builder
	b.WriteString(ErrMissingScopes.Error())
	b.WriteString(": ")
	for i, s := range e.Missing {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s.Name)
		b.WriteString(" (")
		b.WriteString(strings.Join(s.Scopes, ", "))
		b.WriteString(")")
	}
	b.WriteString("; allow them in the key's settings in retailCRM")
	return b.String()
}

// Is reports whether target is [ErrMissingScopes].
func (e *ScopeError) Is(target error) bool { return target == ErrMissingScopes }

// Sections returns the names of the sections with missing scopes.
func (e *ScopeError) Sections() []string {
	out := make([]string, len(e.Missing))
	for i, s := range e.Missing {
		out[i] = s.Name
	}
	return out
}

// classify turns what the underlying client returned into an *Error. key is
// scrubbed from every message.
func classify(op string, status int, err error, key string) *Error {
	e := &Error{Op: op, Status: status, cause: err}
	scrub := func(s string) string {
		if key != "" {
			s = strings.ReplaceAll(s, key, "[secret]")
		}
		return s
	}
	var detail string
	if apiErr, ok := retailcrm.AsAPIError(err); ok {
		// The server's words are kept, scrubbed, in Detail and Fields only.
		e.cause = nil
		detail = apiErr.Error()
		if list := apiErr.Errors(); len(list) > 0 {
			e.Fields = make(map[string]string, len(list))
			for k, v := range list {
				e.Fields[scrub(k)] = scrub(v)
			}
		}
	}
	var (
		urlErr    *url.Error
		netErr    net.Error
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
		e.Kind = ErrThrottled
		detail = ""
	case status >= http.StatusInternalServerError:
		e.Kind = ErrUnavailable
		detail = ""
	case errors.Is(err, retailcrm.ErrAccountDoesNotExist):
		e.Kind = ErrNotRetailCRM
		if detail == retailcrm.ErrAccountDoesNotExist.Error() {
			detail = "it answered with an HTML page"
		}
	case errors.Is(err, retailcrm.ErrInvalidCredentials), errors.Is(err, retailcrm.ErrMissingCredentials),
		strings.Contains(detail, "apiKey"):
		e.Kind = ErrInvalidKey
	case errors.Is(err, retailcrm.ErrAccessDenied):
		e.Kind = ErrAccessDenied
	case status == http.StatusNotFound:
		e.Kind = ErrNotFound
	case status >= http.StatusBadRequest:
		e.Kind = ErrRejected
	case errors.As(err, &urlErr), errors.As(err, &netErr):
		e.Kind = ErrUnreachable
		detail = transportDetail(err)
	case errors.As(err, &syntaxErr):
		e.Kind = ErrNotRetailCRM
		detail = "it answered with something that is not retailCRM's JSON"
	case errors.As(err, &typeErr):
		e.Kind = ErrBadResponse
		detail = err.Error()
	default:
		e.Kind = ErrBadResponse
		if err != nil {
			detail = err.Error()
		}
	}
	e.Detail = scrub(detail)
	return e
}

var errConnRefused error = syscall.ECONNREFUSED

// transportDetail describes a transport failure without the request URL
// (which may carry customers' emails or phones in its query).
func transportDetail(err error) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return "unknown host " + dnsErr.Name
	case errors.Is(err, errConnRefused):
		return "connection refused"
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	return err.Error()
}
