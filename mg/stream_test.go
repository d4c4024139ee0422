package mg_test

import (
	"github.com/botdistributor/botdistributor/internal/leakcheck"

	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
)

// recorder collects what a stream hands out.
type recorder struct {
	mu     sync.Mutex
	events []mg.Event
	w      *watch
}

func newRecorder() *recorder { return &recorder{w: newWatch()} }

func (r *recorder) handle(_ context.Context, ev mg.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.w.Poke()
	return nil
}

func (r *recorder) snapshot() []mg.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mg.Event(nil), r.events...)
}

func (r *recorder) count(typ string) int {
	n := 0
	for _, ev := range r.snapshot() {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// runStream starts s.Run and returns a stop function that cancels it and
// returns Run's error.
func runStream(t *testing.T, s *mg.Stream) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after its context was cancelled")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

var quickBackoff = mg.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}

func TestStreamDeliversTypedEvents(t *testing.T) {
	leakcheck.Check(t)
	m := newMG(t)
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann", LastName: "Lee"})
	rec := newRecorder()
	s, err := c.Stream(mg.DistributorEvents(), rec.handle, mg.WithBackoff(quickBackoff))
	if err != nil {
		t.Fatal(err)
	}
	stop := runStream(t, s)
	await(t, m, "the websocket", func() bool { return m.Subscribers() == 1 })

	w := customer(t, m, ch, "ev1", "hello")
	if err := m.AssignAsPerson(w.Dialog, bd.ManagerOf(ann)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ManagerWrites(ann, w.Chat, "hi, I am Ann"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetOnline(ann, true); err != nil {
		t.Fatal(err)
	}
	if err := m.SetActive(ann, false); err != nil {
		t.Fatal(err)
	}
	if err := m.CloseDialog(w.Dialog); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "seven events", m, rec.w, func() bool { return len(rec.snapshot()) == 7 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	m.Close()

	evs := rec.snapshot()
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	want := []string{"dialog_opened", "message_new", "dialog_assign", "message_new", "user_online_updated", "user_updated", "dialog_closed"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("event types = %v, want %v", types, want)
	}
	opened := evs[0].Data.(*mg.DialogData).Dialog
	if opened.ID != w.Dialog || opened.ChatID != w.Chat || opened.Chat.Channel.ID != ch || opened.Chat.Customer.ID != int64(w.Customer) {
		t.Fatalf("dialog_opened = %+v", opened)
	}
	msg := evs[1].Data.(*mg.MessageData).Message
	if msg.From.Type != mg.TypeCustomer || msg.DialogID() != w.Dialog || msg.Content != "hello" || msg.Chat.Customer.Phone != "+7900ev1" {
		t.Fatalf("customer message_new = %+v", msg)
	}
	assign := evs[2].Data.(*mg.DialogData)
	if assign.Dialog.Responsible.Who() != bd.ManagerOf(ann) || assign.Chat.ID != w.Chat {
		t.Fatalf("dialog_assign = %+v", assign)
	}
	if reply := evs[3].Data.(*mg.MessageData).Message; reply.From.Type != mg.TypeUser || reply.From.ID != int64(ann) {
		t.Fatalf("manager message_new = %+v", reply)
	}
	if on := evs[4].Data.(*mg.UserOnlineData); !on.Online || on.User.ID != int64(ann) {
		t.Fatalf("user_online_updated = %+v", on)
	}
	if up := evs[5].Data.(*mg.UserUpdatedData); up.IsActive || up.ID != int64(ann) || up.LastName != "Lee" {
		t.Fatalf("user_updated = %+v", up)
	}
	if cl := evs[6].Data.(*mg.DialogData).Dialog; cl.ID != w.Dialog || cl.ClosedAt.IsZero() {
		t.Fatalf("dialog_closed = %+v", cl)
	}
	if st := s.Stats(); st.Connects != 1 || st.Events != 7 || st.Unknown != 0 || st.Malformed != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

// A dropped websocket is reconnected; OnConnect runs after each connect and
// re-reads what happened while the connection was down, so no dialog is
// missed.
func TestStreamReconnectsAndResyncs(t *testing.T) {
	leakcheck.Check(t)
	m := newMG(t)
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")

	var (
		mu        sync.Mutex
		seen      = map[bd.DialogID]string{} // dialog -> how it was first seen
		connects  atomic.Int32
		gap       = make(chan struct{})
		resume    = make(chan struct{})
		sleptOnce sync.Once
		w         = newWatch()
	)
	note := func(id bd.DialogID, how string) {
		mu.Lock()
		if _, ok := seen[id]; !ok {
			seen[id] = how
		}
		mu.Unlock()
		w.Poke()
	}
	seenCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	s, err := c.Stream([]string{mg.EventDialogOpened}, func(_ context.Context, ev mg.Event) error {
		note(ev.Data.(*mg.DialogData).Dialog.ID, "event")
		return nil
	}, mg.WithOnConnect(func(ctx context.Context) error {
		connects.Add(1)
		defer w.Poke()
		for d, err := range c.AllDialogs(ctx, mg.DialogsFilter{Active: mg.Yes, Assigned: mg.No}) {
			if err != nil {
				return err
			}
			note(d.ID, fmt.Sprint("resync ", connects.Load()))
		}
		return nil
	}), mg.WithBackoff(mg.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Sleep: func(ctx context.Context, d time.Duration) error {
		// The first reconnect waits until the test has written
		// while the stream was down.
		sleptOnce.Do(func() {
			close(gap)
			select {
			case <-resume:
			case <-ctx.Done():
			}
		})
		return ctx.Err()
	}}))
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)
	waitUntil(t, "the first connection", m, w, func() bool { return m.Subscribers() == 1 && connects.Load() == 1 })

	var before, during, after []bd.DialogID
	for i := range 5 {
		before = append(before, customer(t, m, ch, fmt.Sprint("b", i), "hi").Dialog)
	}
	waitUntil(t, "events before the drop", m, w, func() bool { return seenCount() == 5 })

	if n := m.DropWebsockets(); n != 1 {
		t.Fatalf("dropped %d websockets, want 1", n)
	}
	<-gap // the stream noticed and is waiting to reconnect
	for i := range 5 {
		during = append(during, customer(t, m, ch, fmt.Sprint("d", i), "hi").Dialog)
	}
	close(resume)
	waitUntil(t, "the second connection", m, w, func() bool { return m.Subscribers() == 1 && connects.Load() == 2 })
	for i := range 5 {
		after = append(after, customer(t, m, ch, fmt.Sprint("a", i), "hi").Dialog)
	}
	waitUntil(t, "all 15 dialogs", m, w, func() bool { return seenCount() == 15 })

	mu.Lock()
	defer mu.Unlock()
	for _, d := range during {
		if seen[d] != "resync 2" {
			t.Errorf("dialog %d opened while disconnected was seen by %q, want the second resync", d, seen[d])
		}
	}
	for _, d := range append(before, after...) {
		if seen[d] == "" {
			t.Errorf("dialog %d missed", d)
		}
	}
	if st := s.Stats(); st.Connects != 2 || st.Disconnects < 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestStreamSkipsUnknownAndMalformedFrames(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")
	rec := newRecorder()
	var unknown, malformed atomic.Int32
	s, err := c.Stream([]string{mg.EventDialogOpened}, rec.handle, mg.WithOnUnknown(func(_ context.Context, ev mg.Event) { unknown.Add(1) }), mg.WithOnMalformed(func(_ context.Context, frame []byte, err error) { malformed.Add(1) }), mg.WithBackoff(quickBackoff))
	if err != nil {
		t.Fatal(err)
	}
	runStream(t, s)
	await(t, m, "the websocket", func() bool { return m.Subscribers() == 1 })
	m.InjectFrame([]byte(`{"type":"dialog_tagged","meta":{"timestamp":1},"data":{}}`))
	m.InjectFrame([]byte(`{not json`))
	m.InjectFrame([]byte(`{"type":"dialog_opened","data":{"dialog":{"id":"x"}}}`))
	w := customer(t, m, ch, "u1", "hi")
	waitUntil(t, "the real event", m, rec.w, func() bool { return rec.count(mg.EventDialogOpened) == 1 })
	if got := rec.snapshot()[0].Data.(*mg.DialogData).Dialog.ID; got != w.Dialog {
		t.Fatalf("dialog = %d, want %d", got, w.Dialog)
	}
	if unknown.Load() != 1 || malformed.Load() != 2 {
		t.Fatalf("unknown %d malformed %d, want 1 and 2", unknown.Load(), malformed.Load())
	}
	if st := s.Stats(); st.Connects != 1 || st.Unknown != 1 || st.Malformed != 2 || st.Events != 1 {
		t.Fatalf("stats = %+v (the connection must survive bad frames)", st)
	}
}

func TestStreamHandlerErrorsAreNotFatal(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")
	var calls atomic.Int32
	w := newWatch()
	s, _ := c.Stream([]string{mg.EventDialogOpened}, func(context.Context, mg.Event) error {
		defer w.Poke()
		if calls.Add(1) <= 2 {
			return errors.New("store is down")
		}
		return nil
	}, mg.WithBackoff(quickBackoff))
	runStream(t, s)
	await(t, m, "the websocket", func() bool { return m.Subscribers() == 1 })
	for i := range 3 {
		customer(t, m, ch, fmt.Sprint("h", i), "hi")
	}
	// Events are handled one at a time: when the third arrives, the two
	// failures before it are counted.
	waitUntil(t, "three handler calls", m, w, func() bool { return calls.Load() == 3 })
	if st := s.Stats(); st.HandlerErrors != 2 || st.Connects != 1 {
		t.Fatalf("stats = %+v, want 2 handler errors on one connection", st)
	}
}

func TestStreamRetriesFailedHandshakesAndResyncs(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	mustFaults(t, m, sandbox.MGFaults{FailNext: 2, Match: func(method, path string) bool { return path == "/ws" }})
	var connects atomic.Int32
	fail := true
	w := newWatch()
	s, _ := c.Stream([]string{mg.EventDialogOpened}, func(context.Context, mg.Event) error { return nil }, mg.WithOnConnect(func(context.Context) error {
		connects.Add(1)
		defer w.Poke()
		if fail {
			fail = false
			return errors.New("resync failed")
		}
		return nil
	}), mg.WithBackoff(quickBackoff))
	runStream(t, s)
	waitUntil(t, "a successful resync", m, w, func() bool { return connects.Load() == 2 && m.Subscribers() == 1 })
	st := s.Stats()
	if st.DialErrors != 2 || st.ConnectErrors != 1 || st.Connects != 2 {
		t.Fatalf("stats = %+v, want 2 dial errors, 1 failed OnConnect, 2 connects", st)
	}
}

// TestStreamSurvivesClientErrorsOfTheResync: a 4xx answer to a REST call
// made by OnConnect (the resync) is retried like any other failure; only
// the handshake's answer can end the stream.
func TestStreamSurvivesClientErrorsOfTheResync(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	var connects atomic.Int32
	w := newWatch()
	s, _ := c.Stream([]string{mg.EventDialogOpened}, func(context.Context, mg.Event) error { return nil }, mg.WithOnConnect(func(ctx context.Context) error {
		defer w.Poke()
		if connects.Add(1) == 1 {
			err := c.CloseDialog(ctx, 987654) // an unknown dialog: a 4xx from MG
			if err == nil {
				return errors.New("closing an unknown dialog succeeded")
			}
			return err
		}
		return nil
	}), mg.WithBackoff(quickBackoff))
	runStream(t, s)
	waitUntil(t, "a second, successful resync", m, w, func() bool { return connects.Load() == 2 && m.Subscribers() == 1 })
	if st := s.Stats(); st.ConnectErrors != 1 {
		t.Fatalf("stats = %+v, want 1 failed OnConnect", st)
	}
}

func TestStreamStopsOnRefusedHandshake(t *testing.T) {
	m := newMG(t)
	c := newClientToken(t, m, "not-the-token")
	err := c.Events(testCtx(t), []string{mg.EventDialogOpened}, func(context.Context, mg.Event) error { return nil })
	var apiErr *mg.APIError
	if !errors.Is(err, mg.ErrUnauthorized) || !errors.As(err, &apiErr) || apiErr.Path != "/ws" {
		t.Fatalf("Run = %v, want a 401 APIError for /ws", err)
	}
}

func TestStreamOptionsValidation(t *testing.T) {
	c, _ := mg.New("https://mg.example", "t")
	h := func(context.Context, mg.Event) error { return nil }
	ok := []string{"dialog_opened"}
	for _, tt := range []struct {
		name    string
		types   []string
		handler func(context.Context, mg.Event) error
		opt     mg.StreamOption
		want    string
	}{
		{"no types", nil, h, nil, "mg: Stream: no event types"},
		{"no handler", ok, nil, nil, "mg: Stream: nil handler"},
		{"comma in type", []string{"dialog_opened,message_new"}, h, nil, `mg: Stream: event type "dialog_opened,message_new" must be lower-case letters, digits and underscores`},
		{"spaced type", []string{"Dialog Opened"}, h, nil, `mg: Stream: event type "Dialog Opened" must be lower-case letters, digits and underscores`},
		{"negative backoff", ok, h, mg.WithBackoff(mg.Backoff{Initial: -1}), "mg: Stream: WithBackoff: negative duration (Initial -1ns, Max 0s)"},
		{"negative backlog", ok, h, mg.WithMaxBacklog(-1), "mg: Stream: WithMaxBacklog: negative count -1"},
		{"negative frame size", ok, h, mg.WithMaxFrameBytes(-1), "mg: Stream: WithMaxFrameBytes: negative size -1"},
		{"negative read timeout", ok, h, mg.WithReadTimeout(-1), "mg: Stream: WithReadTimeout: negative duration -1ns"},
		{"read timeout within ping", ok, h, nil, "mg: Stream: WithReadTimeout 1s must exceed WithPingInterval 1s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts []mg.StreamOption
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			if tt.name == "read timeout within ping" {
				opts = append(opts, mg.WithPingInterval(time.Second), mg.WithReadTimeout(time.Second))
			}
			if _, err := c.Stream(tt.types, tt.handler, opts...); err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
	if _, err := c.Stream(ok, h, nil); err == nil || err.Error() != "mg: Stream: nil option" {
		t.Errorf("nil option: got %v", err)
	}
	s, _ := c.Stream([]string{"dialog_opened"}, h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run on a cancelled context = %v", err)
	}
}

// A peer that accepts the websocket but never answers pings (a half-open
// connection looks the same) is dropped and redialled.
func TestStreamPingDetectsDeadPeer(t *testing.T) {
	leakcheck.Check(t)
	var accepted atomic.Int32
	release := make(chan struct{})
	var handlers sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		accepted.Add(1)
		<-release // never reads, so pings go unanswered
	}))
	defer func() {
		close(release)
		handlers.Wait()
		srv.Close()
	}()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c, err := mg.New(srv.URL, "t", mg.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	disconnected := make(chan struct{}, 16)
	s, _ := c.Stream([]string{mg.EventDialogOpened}, func(context.Context, mg.Event) error { return nil }, mg.WithPingInterval(5*time.Millisecond), mg.WithReadTimeout(20*time.Millisecond), mg.WithBackoff(mg.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Sleep: func(ctx context.Context, _ time.Duration) error {
		select {
		case disconnected <- struct{}{}:
		default:
		}
		return ctx.Err()
	}}))
	stop := runStream(t, s)
	for range 2 {
		select {
		case <-disconnected:
		case <-time.After(20 * time.Second):
			t.Fatalf("no reconnect after unanswered pings: %+v", s.Stats())
		}
	}
	stop()
	if accepted.Load() < 2 {
		t.Fatalf("server accepted %d connections, want at least 2", accepted.Load())
	}
}

// A peer that answers pings keeps an idle connection alive well past the
// read deadline. The test runs on a fake clock (testing/synctest), over
// in-memory connections: the seconds of pings take no time, and a machine
// however busy answers no ping late.
func TestStreamIdleConnectionSurvivesWhilePongsArrive(t *testing.T) {
	leakcheck.Check(t)
	synctest.Test(t, func(t *testing.T) {
		pings := make(chan struct{}, 300)
		var handlers sync.WaitGroup
		ln := newPipeListener()
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handlers.Add(1)
			defer handlers.Done()
			conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OnPingReceived: func(context.Context, []byte) bool {
				select {
				case pings <- struct{}{}:
				default:
				}
				return true
			}})
			if err != nil {
				return
			}
			defer conn.CloseNow()
			<-conn.CloseRead(r.Context()).Done() // reads, so pings are answered
		})}
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = srv.Serve(ln)
		}()
		defer func() {
			_ = srv.Close()
			ln.closeConns()
			<-served
			handlers.Wait()
		}()
		tr := &http.Transport{DialContext: ln.dial}
		defer tr.CloseIdleConnections()
		c, _ := mg.New("http://mg.test", "t", mg.WithHTTPClient(&http.Client{Transport: tr}))
		const readTimeout = 5 * time.Second
		s, _ := c.Stream([]string{mg.EventDialogOpened}, func(context.Context, mg.Event) error { return nil }, mg.WithPingInterval(50*time.Millisecond), mg.WithReadTimeout(readTimeout), mg.WithBackoff(quickBackoff))
		stop := runStream(t, s)
		// Pings go on for longer than the read deadline.
		n := 0
		for start := time.Now(); time.Since(start) < readTimeout+time.Second; n++ {
			select {
			case <-pings:
			case <-time.After(20 * time.Second):
				t.Fatal("pings stopped")
			}
		}
		stop()
		if st := s.Stats(); st.Connects != 1 {
			t.Fatalf("stats = %+v after %d pings, want one connection kept alive by pongs", st, n)
		}
	})
}

// pipeListener hands the server the far ends of in-memory connections
// (net.Pipe) that its dial opens, for tests on synctest's fake clock,
// where no real socket may be used.
type pipeListener struct {
	conns  chan net.Conn
	done   chan struct{}
	once   sync.Once
	mu     sync.Mutex
	served []net.Conn
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// dial is an http.Transport's DialContext: the client's end of a new pipe.
func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		l.mu.Lock()
		l.served = append(l.served, server)
		l.mu.Unlock()
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// closeConns closes the server's end of every connection, also those the
// server hijacked (websockets), which http.Server.Close leaves open.
func (l *pipeListener) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.served {
		c.Close()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func TestStreamRunLeavesNoGoroutines(t *testing.T) {
	leakcheck.Check(t)
	m, err := sandbox.NewMG(sandbox.WithSeed(3))
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")
	rec := newRecorder()
	s, _ := c.Stream(mg.DistributorEvents(), rec.handle, mg.WithBackoff(quickBackoff), mg.WithPingInterval(time.Millisecond))
	stop := runStream(t, s)
	for round := range 3 {
		await(t, m, "a connection", func() bool { return m.Subscribers() == 1 })
		customer(t, m, ch, fmt.Sprint("g", round), "hi")
		m.DropWebsockets()
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}
