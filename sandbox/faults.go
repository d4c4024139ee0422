package sandbox

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MGFaults are failures the fake MG injects into its Bot API (REST and the
// websocket handshake). The Transport API and the built-in messenger are
// never affected: they carry the test's own traffic. The zero value
// injects nothing.
//
// An injected failure is answered before the request is served, so it
// changes no state: a test can count on "the request failed and nothing
// happened".
type MGFaults struct {
	// ServerErrorRatio is the share (0..1) of matching requests answered
	// with a 5xx status (500, 502 or 503, at random) and
	// {"errors":["internal server error"]}.
	ServerErrorRatio float64
	// RateLimitRatio is the share (0..1) of matching requests answered
	// with 429 and {"errors":["too many requests"]}. (429 as MG's
	// throttling answer is inferred from its Transport API client.)
	RateLimitRatio float64
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up) with injected 429 answers.
	RetryAfter time.Duration
	// Latency delays every matching request before it is served.
	Latency time.Duration
	// FailNext makes the next FailNext matching requests fail with
	// FailStatus, before the ratios apply.
	FailNext int
	// FailStatus is the status of FailNext failures; 0 means 503.
	FailStatus int
	// Match selects the requests faults apply to, by method and path
	// relative to /api/bot/v1 (e.g. "PATCH", "/dialogs/10000/assign"); nil
	// selects every Bot API request, the websocket handshake included.
	Match func(method, path string) bool
}

// MGRequest is one Bot API request the fake MG received.
type MGRequest struct {
	Method string
	// Path is relative to /api/bot/v1, without the query.
	Path string
	// Query is the raw query string.
	Query string
	// Status is the answer's status (101 for an accepted websocket).
	Status int
	// Injected is true when a fault produced the answer.
	Injected bool
}

// SetFaults replaces the injected faults; MGFaults{} turns them off. It
// returns an error naming the problem for ratios outside 0..1, ratios
// summing above 1, or negative durations or counts.
func (m *MG) SetFaults(f MGFaults) error {
	var problems []string
	if f.ServerErrorRatio < 0 || f.ServerErrorRatio > 1 {
		problems = append(problems, fmt.Sprintf("ServerErrorRatio %v is outside 0..1", f.ServerErrorRatio))
	}
	if f.RateLimitRatio < 0 || f.RateLimitRatio > 1 {
		problems = append(problems, fmt.Sprintf("RateLimitRatio %v is outside 0..1", f.RateLimitRatio))
	}
	if f.ServerErrorRatio+f.RateLimitRatio > 1 {
		problems = append(problems, "ServerErrorRatio and RateLimitRatio sum above 1")
	}
	if f.RetryAfter < 0 || f.Latency < 0 || f.FailNext < 0 {
		problems = append(problems, "RetryAfter, Latency and FailNext must not be negative")
	}
	if f.FailStatus != 0 && (f.FailStatus < 400 || f.FailStatus > 599) {
		problems = append(problems, fmt.Sprintf("FailStatus %d is not an error status", f.FailStatus))
	}
	if len(problems) > 0 {
		return errors.New("sandbox: mg: faults: " + strings.Join(problems, "; "))
	}
	if f.FailStatus == 0 {
		f.FailStatus = http.StatusServiceUnavailable
	}
	m.faultMu.Lock()
	defer m.faultMu.Unlock()
	m.faults = f
	return nil
}

// DropWebsockets cuts every websocket connection now, without a close
// handshake, like a network failure; events not yet written are lost, as
// with the real MG. It returns how many connections it cut.
func (m *MG) DropWebsockets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for s := range m.subs {
		s.drop()
		n++
	}
	return n
}

// InjectFrame sends frame as it is, e.g. a malformed event or one of an
// unknown type, to every websocket connection whatever its subscription.
// It returns how many connections it was queued for.
func (m *MG) InjectFrame(frame []byte) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for s := range m.subs {
		s.send(append([]byte(nil), frame...))
		n++
	}
	return n
}

// Requests returns the Bot API requests received so far, oldest first.
func (m *MG) Requests() []MGRequest {
	m.faultMu.Lock()
	defer m.faultMu.Unlock()
	return append([]MGRequest(nil), m.reqLog...)
}

// CountRequests counts the Bot API requests received with the method and
// path (relative to /api/bot/v1).
func (m *MG) CountRequests(method, path string) int {
	m.faultMu.Lock()
	defer m.faultMu.Unlock()
	n := 0
	for _, r := range m.reqLog {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

const mgMaxRequestLog = 100000

// fault decides whether to fail a request and with which status. It
// records the request either way and returns the sequence number of its
// log entry.
func (m *MG) fault(r *http.Request, rel string) (status int, retryAfter time.Duration, latency time.Duration, entry int) {
	defer func() {
		m.mu.Lock()
		m.touch()
		m.mu.Unlock()
	}()
	m.faultMu.Lock()
	defer m.faultMu.Unlock()
	if len(m.reqLog) >= mgMaxRequestLog {
		cut := len(m.reqLog) / 2
		m.reqLog = append([]MGRequest(nil), m.reqLog[cut:]...)
		m.reqBase += cut
	}
	m.reqLog = append(m.reqLog, MGRequest{Method: r.Method, Path: rel, Query: r.URL.RawQuery})
	entry = m.reqBase + len(m.reqLog) - 1
	f := m.faults
	if f.Match != nil && !f.Match(r.Method, rel) {
		return 0, 0, 0, entry
	}
	latency = f.Latency
	switch {
	case f.FailNext > 0:
		m.faults.FailNext--
		status = f.FailStatus
	default:
		x := m.rnd.Float64()
		switch {
		case x < f.ServerErrorRatio:
			status = []int{500, 502, 503}[m.rnd.IntN(3)]
		case x < f.ServerErrorRatio+f.RateLimitRatio:
			status = http.StatusTooManyRequests
		}
	}
	if status == http.StatusTooManyRequests {
		retryAfter = f.RetryAfter
	}
	return status, retryAfter, latency, entry
}

func (m *MG) logStatus(entry, status int, injected bool) {
	defer func() {
		m.mu.Lock()
		m.touch()
		m.mu.Unlock()
	}()
	m.faultMu.Lock()
	defer m.faultMu.Unlock()
	if i := entry - m.reqBase; i >= 0 && i < len(m.reqLog) {
		m.reqLog[i].Status = status
		m.reqLog[i].Injected = injected
	}
}

// mgWriteInjected answers with an injected failure.
func mgWriteInjected(w http.ResponseWriter, status int, retryAfter time.Duration) {
	msg := "internal server error"
	if status == http.StatusTooManyRequests {
		msg = "too many requests"
		if retryAfter > 0 {
			secs := int64((retryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
	} else if status < 500 {
		msg = http.StatusText(status)
	}
	mgWriteError(w, &mgError{status: status, msg: msg})
}
