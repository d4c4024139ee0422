package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// The sandbox's MG records. Ids of each kind start at their own base, so
// a test that passes a chat id where a dialog id belongs gets a 404 instead
// of touching the wrong object.
var mgIDBase = map[string]int64{
	"bot": 1, "transport": 1, "channel": 10, "user": 100, "customer": 1000,
	"chat": 5000, "dialog": 10000, "message": 100000,
}

type mgUser struct {
	id                                   int64
	externalID, username, first, last    string
	active, online, connected, technical bool
	created, updated                     time.Time
}

func (u *mgUser) name() string { return strings.TrimSpace(u.first + " " + u.last) }

type mgBot struct {
	id               int64
	name, clientID   string
	token            bd.Secret
	roles            []string
	active           bool
	created, updated time.Time
}

type mgTransportRec struct {
	id      int64
	token   string
	webhook string
}

type mgChannel struct {
	id                          int64
	tr                          *mgTransportRec
	externalID, typ, name       string
	settings                    json.RawMessage
	active                      bool
	created, updated, activated time.Time
	deactivated                 time.Time
}

type mgCustomer struct {
	id, channel                                int64
	externalID, nickname, first, last          string
	phone, email, avatar, profileURL, language string
	country                                    string
	created, updated                           time.Time
}

func (c *mgCustomer) name() string {
	if n := strings.TrimSpace(c.first + " " + c.last); n != "" {
		return n
	}
	return c.nickname
}

type mgChat struct {
	id, channel, customer          int64
	externalChatID                 string
	created, updated, lastActivity time.Time
	dialogs                        []int64 // oldest first
	lastMessage                    int64
}

func (c *mgChat) lastDialog() int64 {
	if len(c.dialogs) == 0 {
		return 0
	}
	return c.dialogs[len(c.dialogs)-1]
}

type mgResp struct {
	id  int64
	typ string // "user" or "bot"
	at  time.Time
}

type mgDialog struct {
	id, chat                 int64
	begin, ending            int64
	resp                     *mgResp
	active                   bool
	created, updated, closed time.Time
}

type mgParty struct {
	typ string // "customer", "user", "bot", "channel"
	id  int64
}

type mgMessage struct {
	id, chat, dialog int64
	from             mgParty
	typ, scope       string
	content, status  string
	errCode          string
	at               time.Time
	externalID       string // the transport's id of the message
}

type mgExtKey struct {
	channel int64
	ext     string
}

type mgState struct {
	next          map[string]int64
	users         map[int64]*mgUser
	bots          map[int64]*mgBot
	botByToken    map[string]*mgBot
	transports    map[string]*mgTransportRec
	channels      map[int64]*mgChannel
	customers     map[int64]*mgCustomer
	customerByExt map[mgExtKey]int64
	chats         map[int64]*mgChat
	chatByExt     map[mgExtKey]int64
	dialogs       map[int64]*mgDialog
	messages      map[int64]*mgMessage
	chatMessages  map[int64][]int64
	msgByExt      map[mgExtKey]int64
}

func mgNewState() *mgState {
	return &mgState{
		next:          make(map[string]int64),
		users:         make(map[int64]*mgUser),
		bots:          make(map[int64]*mgBot),
		botByToken:    make(map[string]*mgBot),
		transports:    make(map[string]*mgTransportRec),
		channels:      make(map[int64]*mgChannel),
		customers:     make(map[int64]*mgCustomer),
		customerByExt: make(map[mgExtKey]int64),
		chats:         make(map[int64]*mgChat),
		chatByExt:     make(map[mgExtKey]int64),
		dialogs:       make(map[int64]*mgDialog),
		messages:      make(map[int64]*mgMessage),
		chatMessages:  make(map[int64][]int64),
		msgByExt:      make(map[mgExtKey]int64),
	}
}

func (s *mgState) newID(kind string) int64 {
	n, ok := s.next[kind]
	if !ok {
		n = mgIDBase[kind]
	}
	s.next[kind] = n + 1
	return n
}

// mgSorted returns the map's values ordered by id.
func mgSorted[T any](m map[int64]*T) []*T {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*T, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// mgError is an answer in MG's error format: {"errors": [msg]}.
type mgError struct {
	status int
	msg    string
}

func (e *mgError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func mgErrorf(status int, format string, args ...any) *mgError {
	return &mgError{status: status, msg: fmt.Sprintf(format, args...)}
}

func mgNotFound(kind string, id int64) *mgError {
	return mgErrorf(http.StatusNotFound, "%s #%d not found", kind, id)
}

// ---- operations; every one is called with m.mu held ----

func (m *MG) addBot(name string, token bd.Secret, roles []string) (bd.BotID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if token == "" {
		return 0, fmt.Errorf("sandbox: mg: a bot needs a token")
	}
	if _, dup := m.st.botByToken[token.Reveal()]; dup {
		return 0, fmt.Errorf("sandbox: mg: a bot with this token exists already")
	}
	for _, r := range roles {
		switch r {
		case "distributor", "responsible", "hidden":
		default:
			return 0, fmt.Errorf("sandbox: mg: unknown bot role %q (want distributor, responsible or hidden)", r)
		}
	}
	now := m.now()
	b := &mgBot{
		id: m.st.newID("bot"), name: name, token: token, roles: slices.Clone(roles),
		active: true, created: now, updated: now,
	}
	b.clientID = fmt.Sprintf("sandbox-bot-%d", b.id)
	m.st.bots[b.id] = b
	m.st.botByToken[token.Reveal()] = b
	m.touch()
	return bd.BotID(b.id), nil
}

// openDialogLocked opens a new dialog in the chat, beginning with message
// begin, and emits dialog_opened.
func (m *MG) openDialogLocked(c *mgChat, begin int64) *mgDialog {
	now := m.now()
	d := &mgDialog{id: m.st.newID("dialog"), chat: c.id, begin: begin, active: true, created: now, updated: now}
	m.st.dialogs[d.id] = d
	c.dialogs = append(c.dialogs, d.id)
	m.emit("dialog_opened", map[string]any{"dialog": m.wireEventDialog(d)})
	return d
}

// activeDialogLocked returns the chat's open dialog, or nil.
func (m *MG) activeDialogLocked(c *mgChat) *mgDialog {
	if d := m.st.dialogs[c.lastDialog()]; d != nil && d.active {
		return d
	}
	return nil
}

// addMessageLocked stores a message and emits message_new.
func (m *MG) addMessageLocked(msg *mgMessage) {
	if msg.id == 0 {
		msg.id = m.st.newID("message")
	}
	m.st.messages[msg.id] = msg
	m.st.chatMessages[msg.chat] = append(m.st.chatMessages[msg.chat], msg.id)
	if c := m.st.chats[msg.chat]; c != nil {
		c.lastMessage = msg.id
		c.lastActivity = msg.at
		c.updated = msg.at
	}
	m.emit("message_new", map[string]any{"message": m.wireMessage(msg, true)})
}

// customerWritesLocked records a customer's message arriving through a
// transport channel: customer and chat are found or made, a dialog is
// opened when the chat has none open, then the message is stored. The
// events go out in that order: chat_created, dialog_opened, message_new.
// (The order in which the real MG emits them is unverified.)
func (m *MG) customerWritesLocked(ch *mgChannel, in mgIncoming) (*mgMessage, *mgError) {
	now := m.now()
	if _, dup := m.st.msgByExt[mgExtKey{ch.id, in.messageExternalID}]; dup {
		return nil, mgErrorf(http.StatusBadRequest, "message with external_id %q already exists", in.messageExternalID)
	}
	ck := mgExtKey{ch.id, in.customerExternalID}
	cu := m.st.customers[m.st.customerByExt[ck]]
	if cu == nil {
		cu = &mgCustomer{id: m.st.newID("customer"), channel: ch.id, externalID: in.customerExternalID, created: now}
		m.st.customers[cu.id] = cu
		m.st.customerByExt[ck] = cu.id
	}
	cu.nickname = mgOr(in.nickname, cu.nickname)
	cu.first = mgOr(in.first, cu.first)
	cu.last = mgOr(in.last, cu.last)
	cu.phone = mgOr(in.phone, cu.phone)
	cu.email = mgOr(in.email, cu.email)
	cu.avatar = mgOr(in.avatar, cu.avatar)
	cu.profileURL = mgOr(in.profileURL, cu.profileURL)
	cu.country = mgOr(in.country, cu.country)
	cu.language = mgOr(in.language, cu.language)
	cu.updated = now

	chatKey := mgExtKey{ch.id, mgOr(in.externalChatID, in.customerExternalID)}
	c := m.st.chats[m.st.chatByExt[chatKey]]
	if c == nil {
		c = &mgChat{id: m.st.newID("chat"), channel: ch.id, customer: cu.id, externalChatID: chatKey.ext, created: now, updated: now, lastActivity: now}
		m.st.chats[c.id] = c
		m.st.chatByExt[chatKey] = c.id
		m.emit("chat_created", map[string]any{"chat": m.wireChat(c)})
	}
	msg := &mgMessage{
		chat: c.id, from: mgParty{"customer", cu.id}, typ: "text", scope: "public",
		content: in.text, status: "received", at: now, externalID: in.messageExternalID,
	}
	// The message id is the new dialog's begin_message_id, so it is taken
	// before the dialog opens.
	msg.id = m.st.newID("message")
	d := m.activeDialogLocked(c)
	if d == nil {
		d = m.openDialogLocked(c, msg.id)
	}
	msg.dialog = d.id
	d.updated = now
	m.addMessageLocked(msg)
	m.st.msgByExt[mgExtKey{ch.id, in.messageExternalID}] = msg.id
	m.touch()
	return msg, nil
}

// mgIncoming is a customer message as the Transport API receives it.
type mgIncoming struct {
	messageExternalID, text                   string
	customerExternalID, nickname, first, last string
	phone, email, avatar, profileURL, country string
	language, externalChatID                  string
}

func mgOr(v, fallback string) string {
	if v != "" {
		return v
	}
	return fallback
}

// sendLocked records a message a user or bot sends into a chat, emits
// message_new and, for a public message in a transport channel, queues
// the message_sent webhook.
func (m *MG) sendLocked(from mgParty, chatID int64, scope, typ, content string) (*mgMessage, *mgError) {
	c := m.st.chats[chatID]
	if c == nil {
		return nil, mgNotFound("chat", chatID)
	}
	msg := &mgMessage{chat: c.id, from: from, typ: typ, scope: scope, content: content, status: "received", at: m.now()}
	if d := m.activeDialogLocked(c); d != nil {
		msg.dialog = d.id
		d.updated = msg.at
	}
	ch := m.st.channels[c.channel]
	if scope == "public" && ch != nil && ch.tr != nil {
		msg.status = "sending"
	}
	m.addMessageLocked(msg)
	if msg.status == "sending" {
		m.queueWebhookLocked(msg, c, ch)
	}
	m.touch()
	return msg, nil
}

// assignLocked makes to responsible for the dialog, as PATCH
// /dialogs/{id}/assign does, and emits dialog_assign when the responsible
// changes. Assigning the current responsible again answers like a
// reassignment to the same target and emits nothing (unverified).
func (m *MG) assignLocked(dialogID int64, to mgResp) (map[string]any, *mgError) {
	d := m.st.dialogs[dialogID]
	if d == nil {
		return nil, mgNotFound("dialog", dialogID)
	}
	c := m.st.chats[d.chat]
	if c.lastDialog() != d.id {
		return nil, mgErrorf(http.StatusBadRequest, "dialog is not the latest in the chat")
	}
	if !d.active {
		return nil, mgErrorf(http.StatusBadRequest, "dialog is closed")
	}
	switch to.typ {
	case "user":
		u := m.st.users[to.id]
		if u == nil {
			return nil, mgNotFound("user", to.id)
		}
		if !u.active {
			return nil, mgErrorf(http.StatusBadRequest, "user #%d is not active", to.id)
		}
	case "bot":
		b := m.st.bots[to.id]
		if b == nil {
			return nil, mgNotFound("bot", to.id)
		}
		if !slices.Contains(b.roles, "responsible") {
			return nil, mgErrorf(http.StatusBadRequest, "bot #%d has no responsible role", to.id)
		}
	}
	prev := d.resp
	res := map[string]any{"is_reassign": prev != nil, "left_user_id": nil, "previous_responsible": nil}
	if prev != nil {
		res["previous_responsible"] = m.wireResp(prev)
	}
	if prev != nil && prev.typ == to.typ && prev.id == to.id {
		res["responsible"] = m.wireResp(prev)
		return res, nil
	}
	if prev != nil && prev.typ == "user" {
		res["left_user_id"] = prev.id
	}
	now := m.now()
	to.at = now
	d.resp = &to
	d.updated = now
	res["responsible"] = m.wireResp(d.resp)
	m.emit("dialog_assign", map[string]any{"dialog": m.wireEventDialog(d), "chat": m.wireChat(c)})
	m.touch()
	return res, nil
}

func (m *MG) unassignLocked(dialogID int64) (map[string]any, *mgError) {
	d := m.st.dialogs[dialogID]
	if d == nil {
		return nil, mgNotFound("dialog", dialogID)
	}
	if m.st.chats[d.chat].lastDialog() != d.id {
		return nil, mgErrorf(http.StatusBadRequest, "dialog is not the latest in the chat")
	}
	if d.resp == nil {
		return nil, mgErrorf(http.StatusBadRequest, "dialog is not assigned")
	}
	prev := d.resp
	d.resp = nil
	d.updated = m.now()
	m.touch()
	return map[string]any{"previous_responsible": m.wireResp(prev)}, nil
}

func (m *MG) closeLocked(dialogID int64) *mgError {
	d := m.st.dialogs[dialogID]
	if d == nil {
		return mgNotFound("dialog", dialogID)
	}
	if !d.active {
		return mgErrorf(http.StatusBadRequest, "dialog is already closed")
	}
	now := m.now()
	d.active = false
	d.closed = now
	d.updated = now
	if c := m.st.chats[d.chat]; c != nil {
		d.ending = c.lastMessage
	}
	m.emit("dialog_closed", map[string]any{"dialog": m.wireEventDialog(d)})
	m.touch()
	return nil
}
