package sandbox

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// mgSubscriberBuffer is how many events may wait for one slow websocket;
// beyond it the connection is cut (the client must reconnect and resync),
// never an event silently skipped.
const mgSubscriberBuffer = 4096

type mgSubscriber struct {
	bot   int64
	types map[string]bool
	out   chan []byte
	gone  chan struct{}
	once  sync.Once
}

// send queues a frame; a full buffer drops the subscriber. Called with
// m.mu held.
func (s *mgSubscriber) send(frame []byte) {
	select {
	case <-s.gone:
	case s.out <- frame:
	default:
		s.drop()
	}
}

func (s *mgSubscriber) drop() { s.once.Do(func() { close(s.gone) }) }

// hWebsocket serves GET /api/bot/v1/ws?events=a,b: after the handshake,
// every event of a subscribed type goes out as one JSON text frame. The
// subscription is registered before the handshake answer, so no event
// emitted after the client's dial returns can be missed. Client frames
// are ignored (MG defines none); pings are answered. An empty events list
// answers 400 (MG's answer is unverified; its own client refuses to send
// one).
func (m *MG) hWebsocket(w http.ResponseWriter, r *http.Request, b *mgBot) {
	var types []string
	for t := range strings.SplitSeq(r.URL.Query().Get("events"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		mgWriteError(w, mgErrorf(http.StatusBadRequest, "events is required"))
		return
	}
	sub := &mgSubscriber{bot: b.id, types: make(map[string]bool), out: make(chan []byte, mgSubscriberBuffer), gone: make(chan struct{})}
	for _, t := range types {
		sub.types[t] = true
	}
	m.mu.Lock()
	m.subs[sub] = struct{}{}
	m.touch()
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.subs, sub)
		m.touch()
		m.mu.Unlock()
	}()

	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered the client
	}
	if sw, ok := w.(*mgStatusWriter); ok && sw.status == 0 {
		sw.status = http.StatusSwitchingProtocols
	}
	defer conn.CloseNow()
	alive := conn.CloseRead(m.ctx)
	for {
		select {
		case <-alive.Done():
			return
		case <-sub.gone:
			return
		case frame := <-sub.out:
			wctx, cancel := context.WithTimeout(alive, 10*time.Second)
			err := conn.Write(wctx, websocket.MessageText, frame)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

// Subscribers returns how many websocket connections are open now.
func (m *MG) Subscribers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.subs)
}
