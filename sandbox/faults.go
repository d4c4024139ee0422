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
// happened". The exception is ErrAfterApply (and ErrAfterApplyNext): such a
// request is served first — a message is stored and delivered, a dialog
// assigned — and only its answer is replaced by a failure, as when MG's
// answer is lost on the way back.
type MGFaults struct {
	// ServerErrorRatio is the share (0..1) of matching requests answered
	// with a 5xx status (500, 502 or 503, at random) and
	// {"errors":["internal server error"]}.
	ServerErrorRatio float64
	// RateLimitRatio is the share (0..1) of matching requests answered
	// with 429 and {"errors":["too many requests"]}. (429 as MG's
	// throttling answer is inferred from its Transport API client.)
	RateLimitRatio float64
	// ErrAfterApply is the share (0..1) of matching requests that are
	// served and then answered with ErrAfterApplyStatus (or dropped, see
	// DropAfterApply) instead of their real answer. It does not apply to
	// the websocket handshake. ServerErrorRatio, RateLimitRatio and
	// ErrAfterApply together must not exceed 1.
	ErrAfterApply float64
	// ErrAfterApplyNext makes the next ErrAfterApplyNext matching requests
	// (after FailNext's) be served and then fail like ErrAfterApply.
	ErrAfterApplyNext int
	// ErrAfterApplyStatus is the status of those answers; 0 means 502.
	ErrAfterApplyStatus int
	// DropAfterApply makes those requests get no answer at all: the
	// connection is closed after the request was served, and the client
	// sees a transport error, as after a timeout.
	DropAfterApply bool
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up) with injected 429 and 503 answers.
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
	// Applied is true when the request was served although a fault
	// replaced its answer (ErrAfterApply); Status is then the injected
	// status, or 0 when the connection was dropped.
	Applied bool
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
	if f.ErrAfterApply < 0 || f.ErrAfterApply > 1 {
		problems = append(problems, fmt.Sprintf("ErrAfterApply %v is outside 0..1", f.ErrAfterApply))
	}
	if f.ServerErrorRatio+f.RateLimitRatio+f.ErrAfterApply > 1 {
		problems = append(problems, "ServerErrorRatio, RateLimitRatio and ErrAfterApply sum above 1")
	}
	if f.RetryAfter < 0 || f.Latency < 0 || f.FailNext < 0 || f.ErrAfterApplyNext < 0 {
		problems = append(problems, "RetryAfter, Latency, FailNext and ErrAfterApplyNext must not be negative")
	}
	if f.FailStatus != 0 && (f.FailStatus < 400 || f.FailStatus > 599) {
		problems = append(problems, fmt.Sprintf("FailStatus %d is not an error status", f.FailStatus))
	}
	if f.ErrAfterApplyStatus != 0 && (f.ErrAfterApplyStatus < 400 || f.ErrAfterApplyStatus > 599) {
		problems = append(problems, fmt.Sprintf("ErrAfterApplyStatus %d is not an error status", f.ErrAfterApplyStatus))
	}
	if len(problems) > 0 {
		return errors.New("sandbox: mg: faults: " + strings.Join(problems, "; "))
	}
	if f.FailStatus == 0 {
		f.FailStatus = http.StatusServiceUnavailable
	}
	if f.ErrAfterApplyStatus == 0 {
		f.ErrAfterApplyStatus = http.StatusBadGateway
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

// mgFault is what fault decided for one request.
type mgFault struct {
	// status fails the request before it is served; 0 serves it.
	status     int
	retryAfter time.Duration
	latency    time.Duration
	// afterApply serves the request, then answers afterStatus instead (or
	// drops the connection when drop is set).
	afterApply  bool
	afterStatus int
	drop        bool
	// entry is the sequence number of the request's log entry.
	entry int
}

// fault decides whether to fail a request and how. It records the request
// either way.
func (m *MG) fault(r *http.Request, rel string) (out mgFault) {
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
	out.entry = m.reqBase + len(m.reqLog) - 1
	f := m.faults
	if f.Match != nil && !f.Match(r.Method, rel) {
		return out
	}
	out.latency = f.Latency
	canAfter := rel != "/ws"
	switch {
	case f.FailNext > 0:
		m.faults.FailNext--
		out.status = f.FailStatus
	case f.ErrAfterApplyNext > 0 && canAfter:
		m.faults.ErrAfterApplyNext--
		out.afterApply = true
	default:
		x := m.rnd.Float64()
		switch {
		case x < f.ServerErrorRatio:
			out.status = []int{500, 502, 503}[m.rnd.IntN(3)]
		case x < f.ServerErrorRatio+f.RateLimitRatio:
			out.status = http.StatusTooManyRequests
		case x < f.ServerErrorRatio+f.RateLimitRatio+f.ErrAfterApply && canAfter:
			out.afterApply = true
		}
	}
	if out.afterApply {
		out.afterStatus, out.drop = f.ErrAfterApplyStatus, f.DropAfterApply
	}
	if out.status == http.StatusTooManyRequests || out.status == http.StatusServiceUnavailable {
		out.retryAfter = f.RetryAfter
	}
	return out
}

func (m *MG) logStatus(entry, status int, injected, applied bool) {
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
		m.reqLog[i].Applied = applied
	}
}

// mgDiscardWriter takes the real answer of a request whose answer a fault
// replaces.
type mgDiscardWriter struct {
	header http.Header
	status int
}

func (w *mgDiscardWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *mgDiscardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *mgDiscardWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}

// mgWriteInjected answers with an injected failure.
func mgWriteInjected(w http.ResponseWriter, status int, retryAfter time.Duration) {
	msg := "internal server error"
	if status == http.StatusTooManyRequests {
		msg = "too many requests"
	} else if status < 500 {
		msg = http.StatusText(status)
	}
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	mgWriteError(w, &mgError{status: status, msg: msg})
}
