package sandbox

import (
	"encoding/json"
	"time"
)

// The JSON shapes of the sandbox's MG, after the Bot API reference. Every
// builder is called with m.mu held.

// mgObjectTime is how MG writes object timestamps: RFC 3339 with
// microseconds, in UTC.
const mgObjectTime = "2006-01-02T15:04:05.000000Z07:00"

// mgMessageZone is the offset message times carry: MG writes a message's
// time as plain RFC 3339 with an offset, so the sandbox uses +03:00 to
// keep clients honest about parsing offsets.
var mgMessageZone = time.FixedZone("+03:00", 3*60*60)

func mgTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(mgObjectTime)
}

func mgMsgTime(t time.Time) string { return t.In(mgMessageZone).Format(time.RFC3339) }

func mgNullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

type mgObj = map[string]any

func (m *MG) refUser(u *mgUser) mgObj {
	return mgObj{
		"id": u.id, "external_id": u.externalID, "type": "user", "name": u.name(),
		"first_name": u.first, "last_name": u.last, "username": u.username, "avatar": "",
		"available": u.online && u.active, "is_technical_account": u.technical, "is_admin": false,
	}
}

func (m *MG) refBot(b *mgBot) mgObj {
	return mgObj{"id": b.id, "type": "bot", "name": b.name, "avatar": "", "is_system": false}
}

func (m *MG) refCustomer(c *mgCustomer) mgObj {
	return mgObj{
		"id": c.id, "external_id": c.externalID, "type": "customer", "name": c.name(),
		"first_name": c.first, "last_name": c.last, "username": c.nickname, "avatar": c.avatar,
		"phone": c.phone, "email": c.email, "is_blocked": false,
	}
}

func (m *MG) refParty(p mgParty) mgObj {
	switch p.typ {
	case "user":
		if u := m.st.users[p.id]; u != nil {
			return m.refUser(u)
		}
	case "bot":
		if b := m.st.bots[p.id]; b != nil {
			return m.refBot(b)
		}
	case "customer":
		if c := m.st.customers[p.id]; c != nil {
			return m.refCustomer(c)
		}
	case "channel":
		if ch := m.st.channels[p.id]; ch != nil {
			return mgObj{"id": ch.id, "type": "channel", "name": ch.name}
		}
	}
	return mgObj{"id": p.id, "type": p.typ}
}

// wireResp is the short form of a responsible.
func (m *MG) wireResp(r *mgResp) any {
	if r == nil {
		return nil
	}
	o := mgObj{"id": r.id, "type": r.typ, "assigned_at": mgTS(r.at)}
	if u := m.st.users[r.id]; r.typ == "user" && u != nil {
		o["external_id"] = u.externalID
	}
	return o
}

// wireFullResp is the participant form a responsible takes inside
// chat.last_dialog.
func (m *MG) wireFullResp(r *mgResp) any {
	if r == nil {
		return nil
	}
	return m.refParty(mgParty{r.typ, r.id})
}

func (m *MG) wireChannel(ch *mgChannel) mgObj {
	settings := ch.settings
	if len(settings) == 0 {
		settings = json.RawMessage(`{}`)
	}
	o := mgObj{
		"id": ch.id, "type": ch.typ, "name": ch.name, "settings": settings,
		"created_at": mgTS(ch.created), "updated_at": mgTS(ch.updated),
		"activated_at": mgTS(ch.activated), "deactivated_at": mgTS(ch.deactivated),
		"is_active": ch.active,
	}
	if ch.tr != nil {
		o["transport_id"] = ch.tr.id
	}
	return o
}

func (m *MG) wireChat(c *mgChat) mgObj {
	o := mgObj{
		"id": c.id, "avatar": "", "author_id": 0, "last_activity": mgTS(c.lastActivity),
		"created_at": mgTS(c.created), "updated_at": mgTS(c.updated), "waiting_level": "none",
		"last_message": nil, "last_dialog": nil,
	}
	if ch := m.st.channels[c.channel]; ch != nil {
		o["channel"] = m.wireChannel(ch)
	}
	if cu := m.st.customers[c.customer]; cu != nil {
		o["customer"] = m.refCustomer(cu)
		o["name"] = cu.name()
		o["author_id"] = cu.id
	}
	if msg := m.st.messages[c.lastMessage]; msg != nil {
		o["last_message"] = m.wireMessage(msg, false)
	}
	if d := m.st.dialogs[c.lastDialog()]; d != nil {
		o["last_dialog"] = mgObj{
			"id": d.id, "begin_message_id": mgNullID(d.begin), "ending_message_id": mgNullID(d.ending),
			"responsible": m.wireFullResp(d.resp), "is_active": d.active,
			"created_at": mgTS(d.created), "closed_at": mgTS(d.closed),
		}
	}
	return o
}

// wireDialog is the REST shape of a dialog (GET /dialogs).
func (m *MG) wireDialog(d *mgDialog) mgObj {
	var botID int64
	if d.resp != nil && d.resp.typ == "bot" {
		botID = d.resp.id
	}
	return mgObj{
		"id": d.id, "chat_id": d.chat, "begin_message_id": mgNullID(d.begin),
		"ending_message_id": mgNullID(d.ending), "bot_id": mgNullID(botID),
		"is_assigned": d.resp != nil, "responsible": m.wireResp(d.resp), "is_active": d.active,
		"created_at": mgTS(d.created), "updated_at": mgTS(d.updated), "closed_at": mgTS(d.closed),
		"tags": []any{}, "utm": nil,
	}
}

// wireEventDialog is the shape of a dialog inside websocket events.
func (m *MG) wireEventDialog(d *mgDialog) mgObj {
	o := mgObj{
		"id": d.id, "begin_message_id": mgNullID(d.begin), "ending_message_id": mgNullID(d.ending),
		"responsible": m.wireResp(d.resp), "assigned_at": nil,
		"created_at": mgTS(d.created), "closed_at": mgTS(d.closed), "utm": nil,
	}
	if d.resp != nil {
		o["assigned_at"] = mgTS(d.resp.at)
	}
	if c := m.st.chats[d.chat]; c != nil {
		o["chat"] = m.wireChat(c)
	}
	return o
}

func (m *MG) wireMessage(msg *mgMessage, withChat bool) mgObj {
	o := mgObj{
		"id": msg.id, "time": mgMsgTime(msg.at), "type": msg.typ, "scope": msg.scope,
		"chat_id": msg.chat, "is_read": false, "is_edit": false, "status": msg.status,
		"from": m.refParty(msg.from), "content": msg.content,
		"actions": []string{"edit", "delete", "quote"}, "created_at": mgTS(msg.at),
	}
	if msg.dialog != 0 {
		o["dialog"] = mgObj{"id": msg.dialog}
	}
	if c := m.st.chats[msg.chat]; c != nil {
		o["channel_id"] = c.channel
		if withChat {
			o["chat"] = m.wireChat(c)
		}
	}
	if msg.errCode != "" {
		o["error"] = mgObj{"code": msg.errCode, "message": ""}
	}
	return o
}

func (m *MG) wireUser(u *mgUser) mgObj {
	return mgObj{
		"id": u.id, "external_id": u.externalID, "username": u.username,
		"first_name": u.first, "last_name": u.last, "avatar_url": "",
		"is_active": u.active, "is_online": u.online, "available": u.online && u.active,
		"connected": u.connected, "is_technical_account": u.technical,
		"created_at": mgTS(u.created), "updated_at": mgTS(u.updated), "revoked_at": nil,
	}
}

func (m *MG) wireBot(b *mgBot, self bool) mgObj {
	return mgObj{
		"id": b.id, "name": b.name, "client_id": b.clientID, "avatar_url": "",
		"created_at": mgTS(b.created), "updated_at": mgTS(b.updated), "deactivated_at": nil,
		"is_active": b.active, "is_self": self, "is_system": false, "roles": b.roles,
	}
}

func (m *MG) wireCustomer(c *mgCustomer) mgObj {
	return mgObj{
		"id": c.id, "external_id": c.externalID, "channel_id": c.channel, "username": c.nickname,
		"first_name": c.first, "last_name": c.last, "avatar_url": c.avatar, "profile_url": c.profileURL,
		"country": c.country, "language": c.language, "phone": c.phone, "email": c.email,
		"utm": nil, "is_blocked": false,
		"created_at": mgTS(c.created), "updated_at": mgTS(c.updated), "revoked_at": nil,
	}
}

// emit sends an event to every websocket subscribed to its type. A
// subscriber whose buffer is full is dropped rather than silently missing
// an event: its client reconnects and resyncs.
func (m *MG) emit(typ string, data any) {
	frame, err := json.Marshal(mgObj{"type": typ, "meta": mgObj{"timestamp": m.now().Unix()}, "data": data})
	if err != nil {
		m.log.Error("sandbox mg: encode event", "type", typ, "error", err)
		return
	}
	for s := range m.subs {
		if s.types[typ] {
			s.send(frame)
		}
	}
}
