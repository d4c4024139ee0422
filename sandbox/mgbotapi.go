package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	mgBotPrefix       = "/api/bot/v1"
	mgTransportPrefix = "/api/transport/v1"
	mgMessengerPath   = "/messenger/webhook"
	mgMaxBody         = 1 << 20
)

func (m *MG) routes() http.Handler {
	mux := http.NewServeMux()
	bot := func(pattern string, h func(http.ResponseWriter, *http.Request, *mgBot)) {
		mux.Handle(pattern, m.botAPI(h))
	}
	bot("GET "+mgBotPrefix+"/bots", m.hBots)
	bot("GET "+mgBotPrefix+"/channels", m.hChannels)
	bot("GET "+mgBotPrefix+"/users", m.hUsers)
	bot("GET "+mgBotPrefix+"/customers", m.hCustomers)
	bot("GET "+mgBotPrefix+"/chats", m.hChats)
	bot("GET "+mgBotPrefix+"/dialogs", m.hDialogs)
	bot("GET "+mgBotPrefix+"/messages", m.hMessages)
	bot("PATCH "+mgBotPrefix+"/dialogs/{id}/assign", m.hAssign)
	bot("PATCH "+mgBotPrefix+"/dialogs/{id}/unassign", m.hUnassign)
	bot("DELETE "+mgBotPrefix+"/dialogs/{id}/close", m.hClose)
	bot("POST "+mgBotPrefix+"/messages", m.hSend)
	bot("GET "+mgBotPrefix+"/ws", m.hWebsocket)

	tr := func(pattern string, h func(http.ResponseWriter, *http.Request, *mgTransportRec)) {
		mux.Handle(pattern, m.transportAPI(h))
	}
	tr("GET "+mgTransportPrefix+"/channels", m.hTrChannels)
	tr("POST "+mgTransportPrefix+"/channels", m.hTrActivate)
	tr("PUT "+mgTransportPrefix+"/channels/{id}", m.hTrUpdate)
	tr("DELETE "+mgTransportPrefix+"/channels/{id}", m.hTrDeactivate)
	tr("POST "+mgTransportPrefix+"/messages", m.hTrMessages)

	mux.HandleFunc("POST "+mgMessengerPath, m.hMessenger)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mgWriteError(w, mgErrorf(http.StatusNotFound, "not found"))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.enter() {
			mgWriteError(w, mgErrorf(http.StatusServiceUnavailable, "shutting down"))
			return
		}
		defer m.leave()
		mux.ServeHTTP(w, r)
	})
}

// mgStatusWriter remembers the status written; Unwrap lets the websocket
// library reach the Hijacker underneath.
type mgStatusWriter struct {
	http.ResponseWriter
	status int
}

func (w *mgStatusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *mgStatusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *mgStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// botAPI wraps a Bot API handler: the request is logged, faults are
// injected, and the handler is served through serveBot.
func (m *MG) botAPI(h func(http.ResponseWriter, *http.Request, *mgBot)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rel := strings.TrimPrefix(r.URL.Path, mgBotPrefix)
		f := m.fault(r, rel)
		if f.latency > 0 {
			t := time.NewTimer(f.latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				m.logStatus(f.entry, 0, false, false)
				return
			}
		}
		// An injected answer is logged before it is written, so that a
		// client that got it finds it in the log.
		if f.status != 0 {
			m.logStatus(f.entry, f.status, true, false)
			mgWriteInjected(w, f.status, f.retryAfter)
			return
		}
		if f.afterApply {
			// Serve the request for its effect, then lose its answer.
			m.serveBot(&mgDiscardWriter{}, r, h)
			if f.drop {
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					m.logStatus(f.entry, 0, true, true)
					conn.Close()
					return
				}
			}
			m.logStatus(f.entry, f.afterStatus, true, true)
			mgWriteInjected(w, f.afterStatus, 0)
			return
		}
		sw := &mgStatusWriter{ResponseWriter: w}
		defer func() { m.logStatus(f.entry, sw.status, false, false) }()
		m.serveBot(sw, r, h)
	})
}

// serveBot checks the X-Bot-Token header (401 otherwise; the real status
// for a bad token is undocumented) and calls h.
func (m *MG) serveBot(sw http.ResponseWriter, r *http.Request, h func(http.ResponseWriter, *http.Request, *mgBot)) {
	token := r.Header.Get("X-Bot-Token")
	if token == "" {
		mgWriteError(sw, mgErrorf(http.StatusUnauthorized, "X-Bot-Token header is required"))
		return
	}
	m.mu.Lock()
	b := m.st.botByToken[token]
	m.mu.Unlock()
	if b == nil || !b.active {
		mgWriteError(sw, mgErrorf(http.StatusUnauthorized, "invalid token"))
		return
	}
	h(sw, r, b)
}

func mgWriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"errors":["internal server error"]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func mgWriteError(w http.ResponseWriter, e *mgError) {
	mgWriteJSON(w, e.status, map[string][]string{"errors": {e.msg}})
}

// mgReadJSON decodes a request body, leniently about unknown fields.
func mgReadJSON(r *http.Request, v any) *mgError {
	b, err := io.ReadAll(io.LimitReader(r.Body, mgMaxBody))
	if err != nil {
		return mgErrorf(http.StatusBadRequest, "cannot read the request body")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return mgErrorf(http.StatusBadRequest, "invalid request body: %v", err)
	}
	return nil
}

// mgParams reads query parameters, remembering the first bad one.
type mgParams struct {
	q   url.Values
	err *mgError
}

func (p *mgParams) int(key string) int64 {
	v := p.q.Get(key)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil && p.err == nil {
		p.err = mgErrorf(http.StatusBadRequest, "%s: %q is not an integer", key, v)
	}
	return n
}

func (p *mgParams) ints(key string) []int64 {
	var out []int64
	for _, v := range p.q[key] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if p.err == nil {
				p.err = mgErrorf(http.StatusBadRequest, "%s: %q is not an integer", key, v)
			}
			continue
		}
		out = append(out, n)
	}
	return out
}

// flag reads a boolean filter: 1, 0, true or false. ok is false when the
// filter is absent.
func (p *mgParams) flag(key string) (value, ok bool) {
	switch v := p.q.Get(key); v {
	case "":
		return false, false
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	default:
		if p.err == nil {
			p.err = mgErrorf(http.StatusBadRequest, "%s: %q is not a boolean (want 1, 0, true or false)", key, v)
		}
		return false, false
	}
}

func (p *mgParams) time(key string) time.Time {
	v := p.q.Get(key)
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil && p.err == nil {
		p.err = mgErrorf(http.StatusBadRequest, "%s: %q is not an RFC 3339 time", key, v)
	}
	return t
}

// mgPage is the paging of a list request. since_id and until_id are
// exclusive bounds in the sandbox (whether MG's are is unverified); limit
// defaults to 100 and must be 1..1000.
type mgPage struct {
	sinceID, untilID int64
	since, until     time.Time
	limit            int
}

func (p *mgParams) page() mgPage {
	pg := mgPage{sinceID: p.int("since_id"), untilID: p.int("until_id"), since: p.time("since"), until: p.time("until"), limit: 100}
	if p.q.Get("limit") != "" {
		pg.limit = int(p.int("limit"))
		if (pg.limit < 1 || pg.limit > 1000) && p.err == nil {
			p.err = mgErrorf(http.StatusBadRequest, "limit must be between 1 and 1000")
		}
	}
	return pg
}

// mgPaged applies a page to items sorted by id: bounds, then the limit.
// When until is given the list comes newest first, as MG documents.
func mgPaged[T any](items []T, pg mgPage, id func(T) int64, updated func(T) time.Time) []T {
	out := make([]T, 0, min(len(items), pg.limit))
	for _, it := range items {
		i := id(it)
		if pg.sinceID != 0 && i <= pg.sinceID || pg.untilID != 0 && i >= pg.untilID {
			continue
		}
		u := updated(it)
		if !pg.since.IsZero() && u.Before(pg.since) || !pg.until.IsZero() && u.After(pg.until) {
			continue
		}
		out = append(out, it)
	}
	if !pg.until.IsZero() {
		slices.Reverse(out)
	}
	if len(out) > pg.limit {
		out = out[:pg.limit]
	}
	return out
}

// mgList answers a list request: it parses the common parameters, lets
// collect filter under the lock, and writes the bare array.
func mgList[T any](m *MG, w http.ResponseWriter, r *http.Request, collect func(p *mgParams) []T, id func(T) int64, updated func(T) time.Time, wire func(T) any) {
	p := &mgParams{q: r.URL.Query()}
	pg := p.page()
	m.mu.Lock()
	items := collect(p)
	if p.err != nil {
		m.mu.Unlock()
		mgWriteError(w, p.err)
		return
	}
	items = mgPaged(items, pg, id, updated)
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = wire(it)
	}
	m.mu.Unlock()
	mgWriteJSON(w, http.StatusOK, out)
}

func mgMatch[T comparable](want T, set bool, got T) bool { return !set || want == got }

func (m *MG) hBots(w http.ResponseWriter, r *http.Request, caller *mgBot) {
	mgList(m, w, r, func(p *mgParams) []*mgBot {
		id := p.int("id")
		active, activeSet := p.flag("active")
		self, selfSet := p.flag("self")
		roles := p.q["role"]
		var out []*mgBot
		for _, b := range mgSorted(m.st.bots) {
			if id != 0 && b.id != id || !mgMatch(active, activeSet, b.active) || !mgMatch(self, selfSet, b == caller) {
				continue
			}
			if len(roles) > 0 && !slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(b.roles, r) }) {
				continue
			}
			out = append(out, b)
		}
		return out
	}, func(b *mgBot) int64 { return b.id }, func(b *mgBot) time.Time { return b.updated },
		func(b *mgBot) any { return m.wireBot(b, b == caller) })
}

func (m *MG) hChannels(w http.ResponseWriter, r *http.Request, _ *mgBot) {
	mgList(m, w, r, func(p *mgParams) []*mgChannel {
		id := p.int("id")
		types := p.q["types"]
		active, activeSet := p.flag("active")
		var out []*mgChannel
		for _, ch := range mgSorted(m.st.channels) {
			if id != 0 && ch.id != id || len(types) > 0 && !slices.Contains(types, ch.typ) || !mgMatch(active, activeSet, ch.active) {
				continue
			}
			out = append(out, ch)
		}
		return out
	}, func(c *mgChannel) int64 { return c.id }, func(c *mgChannel) time.Time { return c.updated },
		func(c *mgChannel) any { return m.wireChannel(c) })
}

func (m *MG) hUsers(w http.ResponseWriter, r *http.Request, _ *mgBot) {
	mgList(m, w, r, func(p *mgParams) []*mgUser {
		id := p.int("id")
		ext := p.q.Get("external_id")
		online, onlineSet := p.flag("online")
		active, activeSet := p.flag("active")
		var out []*mgUser
		for _, u := range mgSorted(m.st.users) {
			if id != 0 && u.id != id || ext != "" && u.externalID != ext || !mgMatch(online, onlineSet, u.online) || !mgMatch(active, activeSet, u.active) {
				continue
			}
			out = append(out, u)
		}
		return out
	}, func(u *mgUser) int64 { return u.id }, func(u *mgUser) time.Time { return u.updated },
		func(u *mgUser) any { return m.wireUser(u) })
}

func (m *MG) hCustomers(w http.ResponseWriter, r *http.Request, _ *mgBot) {
	mgList(m, w, r, func(p *mgParams) []*mgCustomer {
		id, channel := p.int("id"), p.int("channel_id")
		chType, ext := p.q.Get("channel_type"), p.q.Get("external_id")
		var out []*mgCustomer
		for _, c := range mgSorted(m.st.customers) {
			if id != 0 && c.id != id || channel != 0 && c.channel != channel || ext != "" && c.externalID != ext {
				continue
			}
			if ch := m.st.channels[c.channel]; chType != "" && (ch == nil || ch.typ != chType) {
				continue
			}
			out = append(out, c)
		}
		return out
	}, func(c *mgCustomer) int64 { return c.id }, func(c *mgCustomer) time.Time { return c.updated },
		func(c *mgCustomer) any { return m.wireCustomer(c) })
}

func (m *MG) hChats(w http.ResponseWriter, r *http.Request, _ *mgBot) {
	mgList(m, w, r, func(p *mgParams) []*mgChat {
		id, channel, customer := p.int("id"), p.int("channel_id"), p.int("customer_id")
		chType, custExt := p.q.Get("channel_type"), p.q.Get("customer_external_id")
		var out []*mgChat
		for _, c := range mgSorted(m.st.chats) {
			if id != 0 && c.id != id || channel != 0 && c.channel != channel || customer != 0 && c.customer != customer {
				continue
			}
			if ch := m.st.channels[c.channel]; chType != "" && (ch == nil || ch.typ != chType) {
				continue
			}
			if cu := m.st.customers[c.customer]; custExt != "" && (cu == nil || cu.externalID != custExt) {
				continue
			}
			out = append(out, c)
		}
		return out
	}, func(c *mgChat) int64 { return c.id }, func(c *mgChat) time.Time { return c.updated },
		func(c *mgChat) any { return m.wireChat(c) })
}

func (m *MG) hDialogs(w http.ResponseWriter, r *http.Request, _ *mgBot) {
	mgList(m, w, r, func(p *mgParams) []*mgDialog {
		id, chat, user, bot := p.int("id"), p.int("chat_id"), p.int("user_id"), p.int("bot_id")
		assigned, assignedSet := p.flag("assign")
		active, activeSet := p.flag("active")
		var out []*mgDialog
		for _, d := range mgSorted(m.st.dialogs) {
			if id != 0 && d.id != id || chat != 0 && d.chat != chat {
				continue
			}
			if user != 0 && (d.resp == nil || d.resp.typ != "user" || d.resp.id != user) {
				continue
			}
			if bot != 0 && (d.resp == nil || d.resp.typ != "bot" || d.resp.id != bot) {
				continue
			}
			if !mgMatch(assigned, assignedSet, d.resp != nil) || !mgMatch(active, activeSet, d.active) {
				continue
			}
			out = append(out, d)
		}
		return out
	}, func(d *mgDialog) int64 { return d.id }, func(d *mgDialog) time.Time { return d.updated },
		func(d *mgDialog) any { return m.wireDialog(d) })
}

func (m *MG) hMessages(w http.ResponseWriter, r *http.Request, _ *mgBot) {
	mgList(m, w, r, func(p *mgParams) []*mgMessage {
		ids := p.ints("id")
		chat, dialog, channel := p.int("chat_id"), p.int("dialog_id"), p.int("channel_id")
		user, customer, bot := p.int("user_id"), p.int("customer_id"), p.int("bot_id")
		chType, scope, typ := p.q.Get("channel_type"), p.q.Get("scope"), p.q.Get("type")
		var out []*mgMessage
		for _, msg := range mgSorted(m.st.messages) {
			if len(ids) > 0 && !slices.Contains(ids, msg.id) || chat != 0 && msg.chat != chat || dialog != 0 && msg.dialog != dialog {
				continue
			}
			if user != 0 && msg.from != (mgParty{"user", user}) || customer != 0 && msg.from != (mgParty{"customer", customer}) || bot != 0 && msg.from != (mgParty{"bot", bot}) {
				continue
			}
			if scope != "" && msg.scope != scope || typ != "" && msg.typ != typ {
				continue
			}
			c := m.st.chats[msg.chat]
			if channel != 0 && c.channel != channel {
				continue
			}
			if ch := m.st.channels[c.channel]; chType != "" && (ch == nil || ch.typ != chType) {
				continue
			}
			out = append(out, msg)
		}
		return out
	}, func(msg *mgMessage) int64 { return msg.id }, func(msg *mgMessage) time.Time { return msg.at },
		func(msg *mgMessage) any { return m.wireMessage(msg, false) })
}

// mgPathID reads the {id} of a path; a malformed one is a 404 like an
// unknown one.
func mgPathID(r *http.Request, kind string) (int64, *mgError) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, mgErrorf(http.StatusNotFound, "%s #%s not found", kind, v)
	}
	return id, nil
}

func (m *MG) hAssign(w http.ResponseWriter, r *http.Request, _ *mgBot) {
	id, e := mgPathID(r, "dialog")
	if e != nil {
		mgWriteError(w, e)
		return
	}
	var body struct {
		UserID int64 `json:"user_id"`
		BotID  int64 `json:"bot_id"`
	}
	if e := mgReadJSON(r, &body); e != nil {
		mgWriteError(w, e)
		return
	}
	var to mgResp
	switch {
	case body.UserID != 0 && body.BotID != 0:
		mgWriteError(w, mgErrorf(http.StatusBadRequest, "only one of user_id and bot_id may be set"))
		return
	case body.UserID > 0:
		to = mgResp{id: body.UserID, typ: "user"}
	case body.BotID > 0:
		to = mgResp{id: body.BotID, typ: "bot"}
	default:
		mgWriteError(w, mgErrorf(http.StatusBadRequest, "user_id or bot_id is required"))
		return
	}
	m.mu.Lock()
	res, e := m.assignLocked(id, to)
	m.mu.Unlock()
	if e != nil {
		mgWriteError(w, e)
		return
	}
	mgWriteJSON(w, http.StatusOK, res)
}

func (m *MG) hUnassign(w http.ResponseWriter, r *http.Request, _ *mgBot) {
	id, e := mgPathID(r, "dialog")
	if e != nil {
		mgWriteError(w, e)
		return
	}
	m.mu.Lock()
	res, e := m.unassignLocked(id)
	m.mu.Unlock()
	if e != nil {
		mgWriteError(w, e)
		return
	}
	mgWriteJSON(w, http.StatusOK, res)
}

func (m *MG) hClose(w http.ResponseWriter, r *http.Request, _ *mgBot) {
	id, e := mgPathID(r, "dialog")
	if e != nil {
		mgWriteError(w, e)
		return
	}
	m.mu.Lock()
	e = m.closeLocked(id)
	m.mu.Unlock()
	if e != nil {
		mgWriteError(w, e)
		return
	}
	mgWriteJSON(w, http.StatusOK, map[string]any{})
}

func (m *MG) hSend(w http.ResponseWriter, r *http.Request, b *mgBot) {
	var body struct {
		ChatID         int64  `json:"chat_id"`
		Scope          string `json:"scope"`
		Type           string `json:"type"`
		Content        string `json:"content"`
		QuoteMessageID int64  `json:"quote_message_id"`
	}
	if e := mgReadJSON(r, &body); e != nil {
		mgWriteError(w, e)
		return
	}
	if body.Type == "" {
		body.Type = "text"
	}
	var e *mgError
	switch {
	case body.ChatID <= 0:
		e = mgErrorf(http.StatusBadRequest, "chat_id is required")
	case body.Scope == "":
		e = mgErrorf(http.StatusBadRequest, "scope is required")
	case body.Scope != "public" && body.Scope != "private":
		e = mgErrorf(http.StatusBadRequest, "scope must be public or private")
	case body.Type != "text":
		e = mgErrorf(http.StatusBadRequest, "the sandbox sends text messages only")
	case strings.TrimSpace(body.Content) == "":
		e = mgErrorf(http.StatusBadRequest, "content is required")
	}
	if e != nil {
		mgWriteError(w, e)
		return
	}
	m.mu.Lock()
	msg, e := m.sendLocked(mgParty{"bot", b.id}, body.ChatID, body.Scope, body.Type, body.Content)
	m.mu.Unlock()
	if e != nil {
		mgWriteError(w, e)
		return
	}
	mgWriteJSON(w, http.StatusOK, map[string]any{"message_id": msg.id, "time": mgMsgTime(msg.at)})
}
