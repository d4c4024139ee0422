package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// The Transport API subset mg-transport-api-client-go v1.3.19 calls for a
// channel integration: list, activate, update and deactivate channels, and
// send messages (customer originator). Its client demands status 200 for
// message sends and 200/201 for activation; the sandbox answers 200.

// RegisterTransport adds a transport (a channel integration) whose
// message_sent webhooks go to webhookURL, and returns its token for the
// X-Transport-Token header. It is what registering an integration module
// with integrations.mgTransport yields on a real account.
func (m *MG) RegisterTransport(webhookURL string) bd.Secret {
	token := m.newToken("transport")
	m.mu.Lock()
	defer m.mu.Unlock()
	tr := &mgTransportRec{id: m.st.newID("transport"), token: token.Reveal(), webhook: webhookURL}
	m.st.transports[tr.token] = tr
	return token
}

func (m *MG) transportAPI(h func(http.ResponseWriter, *http.Request, *mgTransportRec)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.Header.Get("X-Transport-Token")
		m.mu.Lock()
		tr := m.st.transports[token]
		m.mu.Unlock()
		if token == "" || tr == nil {
			mgWriteError(w, mgErrorf(http.StatusUnauthorized, "invalid token"))
			return
		}
		h(w, r, tr)
	})
}

func (m *MG) wireTransportChannel(ch *mgChannel) mgObj {
	settings := ch.settings
	if len(settings) == 0 {
		settings = json.RawMessage(`{}`)
	}
	return mgObj{
		"id": ch.id, "external_id": ch.externalID, "type": ch.typ, "name": ch.name, "settings": settings,
		"created_at": mgTS(ch.created), "updated_at": mgTS(ch.updated), "activated_at": mgTS(ch.activated),
		"deactivated_at": mgTS(ch.deactivated), "is_active": ch.active,
	}
}

func (m *MG) hTrChannels(w http.ResponseWriter, r *http.Request, tr *mgTransportRec) {
	p := &mgParams{q: r.URL.Query()}
	id := p.int("id")
	active, activeSet := p.flag("active")
	types := p.q["types"]
	if p.err != nil {
		mgWriteError(w, p.err)
		return
	}
	m.mu.Lock()
	out := []any{}
	for _, ch := range mgSorted(m.st.channels) {
		if ch.tr != tr || id != 0 && ch.id != id || !mgMatch(active, activeSet, ch.active) || len(types) > 0 && !slices.Contains(types, ch.typ) {
			continue
		}
		out = append(out, m.wireTransportChannel(ch))
	}
	m.mu.Unlock()
	mgWriteJSON(w, http.StatusOK, out)
}

type mgChannelBody struct {
	ID         int64           `json:"id"`
	ExternalID string          `json:"external_id"`
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Settings   json.RawMessage `json:"settings"`
}

func (m *MG) hTrActivate(w http.ResponseWriter, r *http.Request, tr *mgTransportRec) {
	var body mgChannelBody
	if e := mgReadJSON(r, &body); e != nil {
		mgWriteError(w, e)
		return
	}
	if strings.TrimSpace(body.Type) == "" {
		mgWriteError(w, mgErrorf(http.StatusBadRequest, "type is required"))
		return
	}
	m.mu.Lock()
	now := m.now()
	ch := &mgChannel{
		id: m.st.newID("channel"), tr: tr, externalID: body.ExternalID, typ: body.Type, name: body.Name,
		settings: body.Settings, active: true, created: now, updated: now, activated: now,
	}
	if ch.externalID == "" {
		ch.externalID = fmt.Sprintf("sandbox-channel-%d", ch.id)
	}
	m.st.channels[ch.id] = ch
	m.emit("channel_updated", mgObj{"channel": m.wireChannel(ch)})
	m.touch()
	res := mgObj{"id": ch.id, "external_id": ch.externalID, "activated_at": mgTS(ch.activated)}
	m.mu.Unlock()
	mgWriteJSON(w, http.StatusOK, res)
}

// ownChannel returns the transport's channel of the path, or a 404.
func (m *MG) ownChannel(r *http.Request, tr *mgTransportRec) (*mgChannel, *mgError) {
	id, e := mgPathID(r, "channel")
	if e != nil {
		return nil, e
	}
	ch := m.st.channels[id]
	if ch == nil || ch.tr != tr {
		return nil, mgNotFound("channel", id)
	}
	return ch, nil
}

func (m *MG) hTrUpdate(w http.ResponseWriter, r *http.Request, tr *mgTransportRec) {
	var body mgChannelBody
	if e := mgReadJSON(r, &body); e != nil {
		mgWriteError(w, e)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, e := m.ownChannel(r, tr)
	if e != nil {
		mgWriteError(w, e)
		return
	}
	if body.Name != "" {
		ch.name = body.Name
	}
	if len(body.Settings) > 0 {
		ch.settings = body.Settings
	}
	ch.updated = m.now()
	m.emit("channel_updated", mgObj{"channel": m.wireChannel(ch)})
	m.touch()
	mgWriteJSON(w, http.StatusOK, mgObj{"id": ch.id, "external_id": ch.externalID, "updated_at": mgTS(ch.updated)})
}

func (m *MG) hTrDeactivate(w http.ResponseWriter, r *http.Request, tr *mgTransportRec) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, e := m.ownChannel(r, tr)
	if e != nil {
		mgWriteError(w, e)
		return
	}
	now := m.now()
	ch.active, ch.deactivated, ch.updated = false, now, now
	m.emit("channel_updated", mgObj{"channel": m.wireChannel(ch)})
	m.touch()
	mgWriteJSON(w, http.StatusOK, mgObj{"id": ch.id, "deactivated_at": mgTS(ch.deactivated)})
}

// hTrMessages takes a message from the messenger side. Only the customer
// originator (the default) is modelled: it finds or makes the customer and
// the chat, opens a dialog when none is open, and emits the events.
func (m *MG) hTrMessages(w http.ResponseWriter, r *http.Request, tr *mgTransportRec) {
	var body struct {
		Message struct {
			ExternalID string `json:"external_id"`
			Type       string `json:"type"`
			Text       string `json:"text"`
		} `json:"message"`
		Originator string `json:"originator"`
		Customer   struct {
			ExternalID string `json:"external_id"`
			Nickname   string `json:"nickname"`
			FirstName  string `json:"first_name"`
			LastName   string `json:"last_name"`
			Avatar     string `json:"avatar"`
			ProfileURL string `json:"profile_url"`
			Country    string `json:"country"`
			Language   string `json:"language"`
			Phone      string `json:"phone"`
			Email      string `json:"email"`
		} `json:"customer"`
		Channel        int64  `json:"channel"`
		ExternalChatID string `json:"external_chat_id"`
	}
	if e := mgReadJSON(r, &body); e != nil {
		mgWriteError(w, e)
		return
	}
	var e *mgError
	switch {
	case body.Originator != "" && body.Originator != "customer":
		e = mgErrorf(http.StatusBadRequest, "the sandbox takes messages from customers only (originator %q)", body.Originator)
	case body.Message.ExternalID == "":
		e = mgErrorf(http.StatusBadRequest, "message.external_id is required")
	case body.Message.Type != "" && body.Message.Type != "text":
		e = mgErrorf(http.StatusBadRequest, "the sandbox takes text messages only")
	case strings.TrimSpace(body.Message.Text) == "":
		e = mgErrorf(http.StatusBadRequest, "message.text is required")
	case body.Customer.ExternalID == "":
		e = mgErrorf(http.StatusBadRequest, "customer.external_id is required")
	}
	if e != nil {
		mgWriteError(w, e)
		return
	}
	m.mu.Lock()
	ch := m.st.channels[body.Channel]
	if ch == nil || ch.tr != tr {
		m.mu.Unlock()
		mgWriteError(w, mgNotFound("channel", body.Channel))
		return
	}
	if !ch.active {
		m.mu.Unlock()
		mgWriteError(w, mgErrorf(http.StatusBadRequest, "channel #%d is not active", ch.id))
		return
	}
	c := body.Customer
	msg, e := m.customerWritesLocked(ch, mgIncoming{
		messageExternalID: body.Message.ExternalID, text: body.Message.Text,
		customerExternalID: c.ExternalID, nickname: c.Nickname, first: c.FirstName, last: c.LastName,
		phone: c.Phone, email: c.Email, avatar: c.Avatar, profileURL: c.ProfileURL,
		country: c.Country, language: c.Language, externalChatID: body.ExternalChatID,
	})
	var res mgObj
	if msg != nil {
		res = mgObj{"message_id": msg.id, "time": msg.at.UTC().Format(time.RFC3339Nano), "warnings": []string{}}
	}
	m.mu.Unlock()
	if e != nil {
		mgWriteError(w, e)
		return
	}
	mgWriteJSON(w, http.StatusOK, res)
}

// mgDelivery is a message_sent webhook waiting to go out.
type mgDelivery struct {
	msgID int64
	url   string
	body  []byte
}

// queueWebhookLocked queues the message_sent webhook of a message a user or
// bot wrote into a transport channel.
func (m *MG) queueWebhookLocked(msg *mgMessage, c *mgChat, ch *mgChannel) {
	data := mgObj{
		"external_chat_id": c.externalChatID, "channel_id": ch.id,
		"content": msg.content, "type": msg.typ,
	}
	if cu := m.st.customers[c.customer]; cu != nil {
		data["external_user_id"] = cu.externalID
	}
	switch msg.from.typ {
	case "user":
		if u := m.st.users[msg.from.id]; u != nil {
			data["user"] = mgObj{"first_name": u.first, "last_name": u.last, "avatar": ""}
		}
	case "bot":
		if b := m.st.bots[msg.from.id]; b != nil {
			data["bot"] = mgObj{"name": b.name, "avatar": ""}
		}
	}
	body, err := json.Marshal(mgObj{
		"type": "message_sent",
		"meta": mgObj{"id": msg.id, "timestamp": msg.at.Unix()},
		"data": data,
	})
	if err != nil {
		m.log.Error("sandbox mg: encode webhook", "error", err)
		return
	}
	m.outbox = append(m.outbox, mgDelivery{msgID: msg.id, url: ch.tr.webhook, body: body})
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// deliverWebhooks posts queued webhooks in order until the MG closes. The
// transport's answer sets the message's status: sent with its
// external_message_id, or failed with the error code it gave ("general"
// when the answer is not 200 or not understood). MG's own retry policy for
// webhooks is unverified; the sandbox does not retry.
func (m *MG) deliverWebhooks() {
	for {
		m.mu.Lock()
		batch := m.outbox
		m.outbox = nil
		m.mu.Unlock()
		for _, d := range batch {
			ext, code := m.postWebhook(d)
			m.mu.Lock()
			if msg := m.st.messages[d.msgID]; msg != nil {
				if code == "" {
					msg.status, msg.externalID = "sent", ext
				} else {
					msg.status, msg.errCode = "failed", code
				}
				m.touch()
			}
			m.mu.Unlock()
		}
		select {
		case <-m.ctx.Done():
			return
		case <-m.wake:
		}
	}
}

func (m *MG) postWebhook(d mgDelivery) (externalID, errCode string) {
	ctx, cancel := context.WithTimeout(m.ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return "", "general"
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.hc.Do(req)
	if err != nil {
		return "", "network_error"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, mgMaxBody))
	var ans struct {
		ExternalMessageID string `json:"external_message_id"`
		Error             *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &ans) != nil {
		return "", "general"
	}
	if ans.Error != nil {
		return "", mgOr(ans.Error.Code, "general")
	}
	return ans.ExternalMessageID, ""
}

// MGDelivery is a message the built-in messenger received from MG: a
// message_sent webhook, i.e. a reply that reached the customer's side.
type MGDelivery struct {
	// MessageID is MG's id of the message (the webhook's meta.id).
	MessageID int64
	Chat      bd.ChatID
	Channel   bd.ChannelID
	// ExternalChatID and CustomerExternalID are the messenger's ids.
	ExternalChatID     string
	CustomerExternalID string
	Text               string
	// Bot is the bot's name when a bot wrote; empty otherwise.
	Bot string
	// User is the user's name when a manager wrote; empty otherwise.
	User string
}

// hMessenger is the built-in messenger: the default transport's webhook
// endpoint. It records message_sent webhooks and answers each with an
// external_message_id.
func (m *MG) hMessenger(w http.ResponseWriter, r *http.Request) {
	var wh struct {
		Type string `json:"type"`
		Meta struct {
			ID int64 `json:"id"`
		} `json:"meta"`
		Data struct {
			ExternalUserID string `json:"external_user_id"`
			ExternalChatID string `json:"external_chat_id"`
			ChannelID      int64  `json:"channel_id"`
			Content        string `json:"content"`
			User           *struct {
				FirstName string `json:"first_name"`
				LastName  string `json:"last_name"`
			} `json:"user"`
			Bot *struct {
				Name string `json:"name"`
			} `json:"bot"`
		} `json:"data"`
	}
	if e := mgReadJSON(r, &wh); e != nil {
		mgWriteError(w, e)
		return
	}
	if wh.Type != "message_sent" {
		mgWriteJSON(w, http.StatusOK, mgObj{})
		return
	}
	d := MGDelivery{
		MessageID: wh.Meta.ID, Channel: bd.ChannelID(wh.Data.ChannelID),
		ExternalChatID: wh.Data.ExternalChatID, CustomerExternalID: wh.Data.ExternalUserID, Text: wh.Data.Content,
	}
	if wh.Data.User != nil {
		d.User = strings.TrimSpace(wh.Data.User.FirstName + " " + wh.Data.User.LastName)
	}
	if wh.Data.Bot != nil {
		d.Bot = wh.Data.Bot.Name
	}
	m.mu.Lock()
	d.Chat = bd.ChatID(m.st.chatByExt[mgExtKey{wh.Data.ChannelID, wh.Data.ExternalChatID}])
	m.inbox = append(m.inbox, d)
	m.touch()
	n := len(m.inbox)
	m.mu.Unlock()
	mgWriteJSON(w, http.StatusOK, mgObj{"external_message_id": fmt.Sprintf("sandbox-out-%d", n)})
}

// Delivered returns what the built-in messenger received for the chat, or
// for every chat when chat is 0, oldest first.
func (m *MG) Delivered(chat bd.ChatID) []MGDelivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []MGDelivery
	for _, d := range m.inbox {
		if chat == 0 || d.Chat == chat {
			out = append(out, d)
		}
	}
	return out
}
