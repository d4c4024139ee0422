package sandbox

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	transport "github.com/retailcrm/mg-transport-api-client-go/v1"

	bd "github.com/botdistributor/botdistributor"
)

// mgConfig is the configuration of [NewMG], set by [MGOption]s.
type mgConfig struct {
	BotToken   bd.Secret
	BotName    string
	BotRoles   []string
	WebhookURL string
	Seed       uint64
	Logger     *slog.Logger
	Now        func() time.Time
}

// MG is an in-process fake of retailCRM MessageGateway on 127.0.0.1: the
// Bot API subset a distributor uses (same paths, shapes and error texts as
// documented, under /api/bot/v1), its websocket event stream, and the
// Transport API subset that mg-transport-api-client-go calls (under
// /api/transport/v1).
//
// Tests drive it with controls (AddManager, SetOnline, CustomerWrites,
// AssignAsPerson, CloseDialog, ...), inspect it (Responsible, Dialogs,
// Messages, Delivered, ...), wait for a condition with Await, and inject
// faults with SetFaults, DropWebsockets and InjectFrame.
//
// All methods are safe for concurrent use. Close stops everything.
type MG struct {
	url  string
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
	now  func() time.Time
	hc   *http.Client // webhooks and the built-in transport client
	tr   *http.Transport
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup // the server and the webhook worker
	once sync.Once

	gateMu   sync.Mutex // counts requests in flight, websockets included
	inflight int
	closing  bool
	idle     chan struct{} // closed when closing and nothing is in flight

	botID        bd.BotID
	botToken     bd.Secret
	transportTok bd.Secret
	transport    *transport.MgClient

	faultMu sync.Mutex
	faults  MGFaults
	rnd     *rand.Rand
	reqLog  []MGRequest
	reqBase int // requests trimmed from the front of reqLog

	mu      sync.Mutex
	st      *mgState
	changed chan struct{} // closed and replaced on every state change
	subs    map[*mgSubscriber]struct{}
	outbox  []mgDelivery // message_sent webhooks waiting for the worker
	wake    chan struct{}
	inbox   []MGDelivery // what the built-in messenger received
}

// NewMG starts a fake MG on 127.0.0.1 with a free port, configured by
// options (see [MGOption]). Without options it is a working MG with one bot (the
// distributor's), a default transport whose message_sent webhooks go to
// the built-in messenger, and no channels, users or faults. An option's bad
// argument is refused with an error naming the option.
func NewMG(options ...MGOption) (*MG, error) {
	cfg := mgConfig{
		BotName:  "Distributor",
		BotRoles: []string{"distributor"},
		Logger:   slog.New(slog.DiscardHandler),
		Now:      time.Now,
	}
	if err := applyAll("mg", options, func(o MGOption) error { return o.applyMG(&cfg) }); err != nil {
		return nil, err
	}
	opts := cfg
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox: mg: listen: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	tr := &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}
	m := &MG{
		url:     "http://" + ln.Addr().String(),
		ln:      ln,
		log:     opts.Logger,
		now:     opts.Now,
		tr:      tr,
		hc:      &http.Client{Transport: tr, Timeout: 30 * time.Second},
		ctx:     ctx,
		stop:    stop,
		rnd:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x6d67)),
		st:      mgNewState(),
		changed: make(chan struct{}),
		subs:    make(map[*mgSubscriber]struct{}),
		wake:    make(chan struct{}, 1),
		idle:    make(chan struct{}),
	}
	token := opts.BotToken
	if token == "" {
		token = m.newToken("bot")
	}
	id, err := m.addBot(opts.BotName, token, opts.BotRoles)
	if err != nil {
		ln.Close()
		stop()
		return nil, err
	}
	m.botID, m.botToken = id, token
	hook := opts.WebhookURL
	if hook == "" {
		hook = m.url + mgMessengerPath
	}
	m.transportTok = m.RegisterTransport(hook)
	m.transport = transport.NewWithClient(m.url, m.transportTok.Reveal(), m.hc)

	m.srv = &http.Server{
		Handler:           m.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	m.wg.Go(func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("sandbox mg: serve", "error", err)
		}
	})
	m.wg.Go(m.deliverWebhooks)
	return m, nil
}

// URL returns the MG endpoint, the host root a client appends /api/bot/v1
// (or /api/transport/v1) to, e.g. "http://127.0.0.1:41234".
func (m *MG) URL() string { return m.url }

// BotToken returns the first bot's token.
func (m *MG) BotToken() bd.Secret { return m.botToken }

// BotID returns the first bot's id.
func (m *MG) BotID() bd.BotID { return m.botID }

// TransportToken returns the default transport's token, for a test that
// drives the Transport API with its own client.
func (m *MG) TransportToken() bd.Secret { return m.transportTok }

// Close stops the server, ends every websocket and webhook in flight and
// waits until every goroutine the MG started has exited. It is safe to call
// more than once.
func (m *MG) Close() error {
	var err error
	m.once.Do(func() {
		m.stop()
		m.mu.Lock()
		for s := range m.subs {
			s.drop()
		}
		m.mu.Unlock()
		err = m.srv.Close()
		m.gateMu.Lock()
		m.closing = true
		if m.inflight == 0 {
			close(m.idle)
		}
		m.gateMu.Unlock()
		<-m.idle
		m.wg.Wait()
		m.tr.CloseIdleConnections()
	})
	return err
}

// enter admits a request unless the MG is closing; leave must follow.
func (m *MG) enter() bool {
	m.gateMu.Lock()
	defer m.gateMu.Unlock()
	if m.closing {
		return false
	}
	m.inflight++
	return true
}

func (m *MG) leave() {
	m.gateMu.Lock()
	defer m.gateMu.Unlock()
	m.inflight--
	if m.closing && m.inflight == 0 {
		close(m.idle)
	}
}

// newToken derives a token from the seeded source.
func (m *MG) newToken(kind string) bd.Secret {
	m.faultMu.Lock()
	defer m.faultMu.Unlock()
	b := make([]byte, 20)
	for i := range b {
		b[i] = byte(m.rnd.Uint32())
	}
	return bd.Secret("sbx-" + kind + "-" + hex.EncodeToString(b))
}

// touch wakes everyone waiting in Await. Call with m.mu held.
func (m *MG) touch() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// Changed returns a channel that is closed at the next change of the MG's
// state: its records, the messenger's inbox, the websocket subscribers or
// the request log. A test waiting on several sources selects on it; see
// Await for the common case.
func (m *MG) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Await returns nil as soon as cond reports true, re-checking it after
// every change reported by Changed, or ctx.Err() when ctx ends first.
func (m *MG) Await(ctx context.Context, cond func() bool) error {
	for {
		m.mu.Lock()
		ch := m.changed
		m.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
