package mg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Backoff is the reconnect policy of a [Stream]: the delay before
// reconnect n (counting failures since the last stable connection) is drawn
// uniformly from [d/2, d] with d = min(Initial * 2^(n-1), Max). A
// connection that stayed up for at least Max counts as stable and resets
// the count.
type Backoff struct {
	// Initial is the delay before the first reconnect. Default 500ms.
	Initial time.Duration
	// Max caps the delay. Default 30s.
	Max time.Duration
	// Sleep waits d or until ctx ends, returning ctx.Err() then. Nil means
	// a timer; tests inject their own.
	Sleep func(ctx context.Context, d time.Duration) error
}

// streamConfig is a [Stream]'s configuration: the arguments of
// [Client.Stream] and its options.
type streamConfig struct {
	Types             []string
	MassCommunication bool
	Handler           func(ctx context.Context, ev Event) error
	OnConnect         func(ctx context.Context) error
	OnUnknown         func(ctx context.Context, ev Event)
	OnMalformed       func(ctx context.Context, frame []byte, err error)
	Backoff           Backoff
	PingInterval      time.Duration
	ReadTimeout       time.Duration
	MaxBacklog        int
	MaxFrameBytes     int64
}

// StreamStats counts what a Stream did since it was made.
type StreamStats struct {
	// Connects counts successful websocket handshakes.
	Connects uint64
	// DialErrors counts failed handshakes.
	DialErrors uint64
	// Disconnects counts connections that ended.
	Disconnects uint64
	// Events counts events handed to Handler.
	Events uint64
	// HandlerErrors counts events whose Handler returned an error.
	HandlerErrors uint64
	// ConnectErrors counts failed OnConnect calls.
	ConnectErrors uint64
	// Unknown counts events of unknown types.
	Unknown uint64
	// Malformed counts frames that were not valid events.
	Malformed uint64
}

// Stream is a subscription to MG's websocket event stream. Make one with
// [Client.Stream] and call Run. Stats may be called at any time from any
// goroutine; Run must not be called again while it runs.
type Stream struct {
	c       *Client
	opts    streamConfig
	url     string
	running atomic.Bool

	connects, dialErrors, disconnects, events, handlerErrors,
	connectErrors, unknown, malformed atomic.Uint64
}

// Stream returns a stream of the events of the given types, each handed
// to handler, tuned by opts (see [StreamOption]; none means the defaults).
// types must hold at least one name of lower-case letters, digits and
// underscores; [DistributorEvents] returns what a distributor needs, and
// types this package does not know are allowed (MG may add some) and
// reported as unknown. handler receives each decoded event, one at a time,
// in arrival order; it gets Run's context, not the connection's, so an
// event being handled is not abandoned when the connection drops. Its
// error is logged and counted (StreamStats.HandlerErrors) and the stream
// goes on: the resync after the next reconnect repairs what was missed.
//
// Stream checks its arguments and returns an error naming the problem (the
// option, for an option's); it does not connect.
func (c *Client) Stream(types []string, handler func(ctx context.Context, ev Event) error, streamOpts ...StreamOption) (*Stream, error) {
	var problems []string
	if len(types) == 0 {
		problems = append(problems, "no event types")
	}
	for _, t := range types {
		if !validEventName(t) {
			problems = append(problems, fmt.Sprintf("event type %q must be lower-case letters, digits and underscores", t))
		}
	}
	if handler == nil {
		problems = append(problems, "nil handler")
	}
	opts := streamConfig{Types: types, Handler: handler}
	for _, o := range streamOpts {
		if o == nil {
			problems = append(problems, "nil option")
			continue
		}
		if err := o.applyStream(&opts); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if opts.PingInterval > 0 && opts.ReadTimeout > 0 && opts.ReadTimeout <= opts.PingInterval {
		problems = append(problems, fmt.Sprintf("WithReadTimeout %s must exceed WithPingInterval %s", opts.ReadTimeout, opts.PingInterval))
	}
	if len(problems) > 0 {
		return nil, errors.New("mg: Stream: " + strings.Join(problems, "; "))
	}
	if opts.Backoff.Initial == 0 {
		opts.Backoff.Initial = 500 * time.Millisecond
	}
	if opts.Backoff.Max == 0 {
		opts.Backoff.Max = max(30*time.Second, opts.Backoff.Initial)
	}
	opts.Backoff.Max = max(opts.Backoff.Max, opts.Backoff.Initial)
	if opts.Backoff.Sleep == nil {
		opts.Backoff.Sleep = sleep
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = 3 * opts.PingInterval
	}
	if opts.MaxBacklog == 0 {
		opts.MaxBacklog = 10000
	}
	if opts.MaxFrameBytes == 0 {
		opts.MaxFrameBytes = 4 << 20
	}
	opts.Types = append([]string(nil), opts.Types...)
	return &Stream{c: c, opts: opts, url: c.wsURL(opts.Types, opts.MassCommunication)}, nil
}

// Events runs a stream until ctx ends; it is [Client.Stream] followed by
// Run.
func (c *Client) Events(ctx context.Context, types []string, handler func(ctx context.Context, ev Event) error, opts ...StreamOption) error {
	s, err := c.Stream(types, handler, opts...)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

func validEventName(t string) bool {
	if t == "" {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// wsURL maps the endpoint to ws/wss and appends /ws?events=a,b (commas
// unescaped, as MG's own client sends them).
func (c *Client) wsURL(types []string, mass bool) string {
	u := c.base
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	u += "/ws?events=" + strings.Join(types, ",")
	if mass {
		u += "&options=include_mass_communication"
	}
	return u
}

// Stats returns the stream's counters.
func (s *Stream) Stats() StreamStats {
	return StreamStats{
		Connects:      s.connects.Load(),
		DialErrors:    s.dialErrors.Load(),
		Disconnects:   s.disconnects.Load(),
		Events:        s.events.Load(),
		HandlerErrors: s.handlerErrors.Load(),
		ConnectErrors: s.connectErrors.Load(),
		Unknown:       s.unknown.Load(),
		Malformed:     s.malformed.Load(),
	}
}

// Run connects, calls OnConnect, hands events to Handler, and reconnects
// with backoff whenever the connection fails or drops, until ctx ends. It
// then returns ctx.Err() after every goroutine it started has exited
// (Handler and OnConnect calls included, so they should honour ctx).
//
// Run returns early, with an [*APIError], only when MG refuses the
// handshake with a 4xx status other than 408 and 429 (a wrong token or
// endpoint, or event names MG rejects): retrying the same request cannot
// succeed. Run must not be called concurrently on one Stream.
func (s *Stream) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("mg: stream is already running")
	}
	defer s.running.Store(false)
	failures := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		up, err := s.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Only MG's answer to the handshake can end the stream: errors of
		// OnConnect (e.g. a 400 from the resync's REST calls) are retried.
		var hs handshakeError
		var apiErr *APIError
		if errors.As(err, &hs) && errors.As(hs.err, &apiErr) && permanent(apiErr.Status) {
			s.c.log.LogAttrs(ctx, slog.LevelError, "mg stream refused", slog.String("error", apiErr.Error()))
			return apiErr
		}
		if up >= s.opts.Backoff.Max {
			failures = 0
		}
		failures++
		delay := jittered(s.opts.Backoff.Initial, s.opts.Backoff.Max, failures)
		s.c.log.LogAttrs(ctx, slog.LevelWarn, "mg stream disconnected",
			slog.String("error", errString(err)), slog.Duration("up", up), slog.Duration("retry_in", delay))
		if err := s.opts.Backoff.Sleep(ctx, delay); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// handshakeError marks an error of the websocket handshake itself.
type handshakeError struct{ err error }

func (e handshakeError) Error() string { return e.err.Error() }
func (e handshakeError) Unwrap() error { return e.err }

func permanent(status int) bool {
	return status >= 400 && status <= 499 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// dial opens one websocket connection; seen is called whenever a ping or
// pong arrives on it.
func (s *Stream) dial(ctx context.Context, seen func()) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("X-Bot-Token", s.c.token.Reveal())
	conn, resp, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{
		HTTPClient:     s.c.hc,
		HTTPHeader:     h,
		OnPingReceived: func(context.Context, []byte) bool { seen(); return true },
		OnPongReceived: func(context.Context, []byte) { seen() },
	})
	if err != nil {
		s.dialErrors.Add(1)
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != 0 {
			var body []byte
			if resp.Body != nil {
				body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			}
			return nil, newAPIError(http.MethodGet, "/ws", resp.StatusCode, body, s.c.token.Reveal())
		}
		return nil, fmt.Errorf("mg: stream: %w", err)
	}
	conn.SetReadLimit(s.opts.MaxFrameBytes)
	return conn, nil
}

var (
	errBacklog     = errors.New("mg: stream: too many events waiting for the handler")
	errReadTimeout = errors.New("mg: stream: read deadline passed: nothing received")
)

// session runs one connection to its end and reports how long it was up.
func (s *Stream) session(ctx context.Context) (time.Duration, error) {
	var lastSeen atomic.Int64
	seen := func() { lastSeen.Store(time.Now().UnixNano()) }
	seen()
	conn, err := s.dial(ctx, seen)
	if err != nil {
		return 0, handshakeError{err}
	}
	seen()
	s.connects.Add(1)
	start := time.Now()
	s.c.log.LogAttrs(ctx, slog.LevelInfo, "mg stream connected")

	connCtx, cancel := context.WithCancelCause(ctx)
	q := &frameQueue{max: s.opts.MaxBacklog, ready: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		conn.CloseNow()
		wg.Wait()
		s.disconnects.Add(1)
	}()

	wg.Go(func() {
		defer q.close()
		for {
			_, frame, err := conn.Read(connCtx)
			if err != nil {
				cancel(fmt.Errorf("mg: stream: read: %w", err))
				return
			}
			seen()
			if !q.push(frame) {
				cancel(errBacklog)
				return
			}
		}
	})
	if s.opts.PingInterval > 0 {
		// The watchdog pings to provoke traffic and drops the connection
		// when nothing arrived within the read deadline. A ping whose pong
		// is late is not an error by itself: any frame proves the peer
		// alive. A ping that cannot be written is.
		wg.Go(func() {
			t := time.NewTicker(s.opts.PingInterval)
			defer t.Stop()
			for {
				select {
				case <-connCtx.Done():
					return
				case <-t.C:
				}
				if time.Since(time.Unix(0, lastSeen.Load())) > s.opts.ReadTimeout {
					cancel(errReadTimeout)
					return
				}
				pctx, pcancel := context.WithTimeout(connCtx, s.opts.PingInterval)
				err := conn.Ping(pctx)
				pcancel()
				if err != nil && connCtx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
					cancel(fmt.Errorf("mg: stream: ping: %w", err))
					return
				}
			}
		})
	}

	if s.opts.OnConnect != nil {
		if err := s.opts.OnConnect(ctx); err != nil {
			s.connectErrors.Add(1)
			return time.Since(start), fmt.Errorf("mg: stream: on connect: %w", err)
		}
	}
	for {
		frame, ok := q.pop(ctx)
		if !ok {
			return time.Since(start), context.Cause(connCtx)
		}
		s.dispatch(ctx, frame)
	}
}

func (s *Stream) dispatch(ctx context.Context, frame []byte) {
	ev, err := DecodeEvent(frame)
	switch {
	case errors.Is(err, ErrUnknownEvent):
		s.unknown.Add(1)
		if s.opts.OnUnknown != nil {
			s.opts.OnUnknown(ctx, ev)
		} else {
			s.c.log.LogAttrs(ctx, slog.LevelDebug, "mg stream: unknown event", slog.String("type", ev.Type))
		}
	case err != nil:
		s.malformed.Add(1)
		if s.opts.OnMalformed != nil {
			s.opts.OnMalformed(ctx, frame, err)
		} else {
			s.c.log.LogAttrs(ctx, slog.LevelWarn, "mg stream: malformed event",
				slog.Int("bytes", len(frame)), slog.String("error", err.Error()))
		}
	default:
		s.events.Add(1)
		if err := s.opts.Handler(ctx, ev); err != nil {
			s.handlerErrors.Add(1)
			s.c.log.LogAttrs(ctx, slog.LevelWarn, "mg stream: handler failed",
				slog.String("type", ev.Type), slog.String("error", err.Error()))
		}
	}
}

// frameQueue is the unbounded-up-to-max FIFO between the reader and the
// dispatcher; push never blocks, so control frames keep being read while
// the handler works.
type frameQueue struct {
	mu     sync.Mutex
	items  [][]byte
	closed bool
	max    int
	ready  chan struct{}
}

func (q *frameQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *frameQueue) push(b []byte) bool {
	q.mu.Lock()
	if len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, b)
	q.mu.Unlock()
	q.signal()
	return true
}

func (q *frameQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// pop returns the next frame; false once the queue is closed and drained,
// or when ctx ends.
func (q *frameQueue) pop(ctx context.Context) ([]byte, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			b := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return b, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, false
		}
	}
}
