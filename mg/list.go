package mg

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MaxLimit is the largest page MG serves; pagers ask for it.
const MaxLimit = 1000

// Page selects one page of a list. MG lists have no offsets: pass the
// largest id seen so far as SinceID to get the next page.
type Page struct {
	// SinceID and UntilID bound the objects' ids; zero sends nothing.
	SinceID int64
	UntilID int64
	// Since and Until bound the objects' last-update time; zero sends
	// nothing. MG returns the list in reverse order when Until is given.
	Since time.Time
	Until time.Time
	// Limit is the page size, 1 to MaxLimit; zero means MG's default (100).
	Limit int
}

func (p Page) encode(q url.Values) error {
	if p.Limit < 0 || p.Limit > MaxLimit {
		return fmt.Errorf("mg: page limit %d out of range 1..%d", p.Limit, MaxLimit)
	}
	if p.SinceID < 0 || p.UntilID < 0 {
		return fmt.Errorf("mg: page bounds must not be negative (since_id %d, until_id %d)", p.SinceID, p.UntilID)
	}
	setInt(q, "limit", int64(p.Limit))
	setInt(q, "since_id", p.SinceID)
	setInt(q, "until_id", p.UntilID)
	setTime(q, "since", p.Since)
	setTime(q, "until", p.Until)
	return nil
}

func setInt(q url.Values, key string, v int64) {
	if v != 0 {
		q.Set(key, strconv.FormatInt(v, 10))
	}
}

func setStr(q url.Values, key, v string) {
	if v != "" {
		q.Set(key, v)
	}
}

func setFlag(q url.Values, key string, f Flag) {
	if v, ok := f.query(); ok {
		q.Set(key, v)
	}
}

func setTime(q url.Values, key string, t time.Time) {
	if !t.IsZero() {
		q.Set(key, t.UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
	}
}

// list performs a GET of a list endpoint and decodes the bare array.
func list[T any](ctx context.Context, c *Client, path string, q url.Values, p Page) ([]T, error) {
	if err := p.encode(q); err != nil {
		return nil, err
	}
	var out []T
	if err := c.do(ctx, call{method: http.MethodGet, path: path, query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// all pages through a list by since_id until a short page. It tolerates a
// server that treats since_id as inclusive (objects already seen are
// skipped) and stops when a page brings nothing new.
func all[T any](ctx context.Context, start Page, fetch func(context.Context, Page) ([]T, error), id func(T) int64) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		p := start
		if p.Limit == 0 {
			p.Limit = MaxLimit
		}
		last := p.SinceID
		for {
			page, err := fetch(ctx, p)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, v := range page {
				i := id(v)
				if p.SinceID > 0 && i <= p.SinceID {
					continue // already seen: since_id was inclusive
				}
				last = max(last, i)
				if !yield(v, nil) {
					return
				}
			}
			if len(page) < p.Limit || last <= p.SinceID {
				return
			}
			p.SinceID = last
		}
	}
}

// BotsFilter selects bots for [Client.Bots].
type BotsFilter struct {
	ID     int64
	Active Flag
	// Self: Yes selects the calling bot only.
	Self Flag
	// Roles selects bots with these roles, sent as repeated role keys.
	// (The v1 bot client sends a single role; the OpenAPI spec declares an
	// array. More than one role is unverified.)
	Roles []string
	Page
}

// Bots lists bots (GET /bots).
func (c *Client) Bots(ctx context.Context, f BotsFilter) ([]Bot, error) {
	q := url.Values{}
	setInt(q, "id", f.ID)
	setFlag(q, "active", f.Active)
	setFlag(q, "self", f.Self)
	for _, r := range f.Roles {
		q.Add("role", r)
	}
	return list[Bot](ctx, c, "/bots", q, f.Page)
}

// SelfBot returns the calling bot (GET /bots?self=1). It is how a bot learns
// its own id, e.g. to ignore its own messages.
func (c *Client) SelfBot(ctx context.Context) (Bot, error) {
	bots, err := c.Bots(ctx, BotsFilter{Self: Yes})
	if err != nil {
		return Bot{}, err
	}
	for _, b := range bots {
		if b.IsSelf {
			return b, nil
		}
	}
	if len(bots) == 1 {
		return bots[0], nil
	}
	return Bot{}, fmt.Errorf("mg: GET /bots?self=1 returned %d bots and none marked is_self", len(bots))
}

// ChannelsFilter selects channels for [Client.Channels].
type ChannelsFilter struct {
	ID int64
	// Types selects channel types, sent as repeated types keys.
	Types  []string
	Active Flag
	Page
}

// Channels lists channels (GET /channels).
func (c *Client) Channels(ctx context.Context, f ChannelsFilter) ([]Channel, error) {
	q := url.Values{}
	setInt(q, "id", f.ID)
	for _, t := range f.Types {
		q.Add("types", t)
	}
	setFlag(q, "active", f.Active)
	return list[Channel](ctx, c, "/channels", q, f.Page)
}

// UsersFilter selects users for [Client.Users].
type UsersFilter struct {
	ID         int64
	ExternalID string
	Online     Flag
	Active     Flag
	Page
}

// Users lists MG users, the managers as MG knows them (GET /users).
func (c *Client) Users(ctx context.Context, f UsersFilter) ([]User, error) {
	q := url.Values{}
	setInt(q, "id", f.ID)
	setStr(q, "external_id", f.ExternalID)
	setFlag(q, "online", f.Online)
	setFlag(q, "active", f.Active)
	return list[User](ctx, c, "/users", q, f.Page)
}

// AllUsers iterates over every user the filter selects, page by page
// (MaxLimit per page unless f.Limit says otherwise). A failed page ends the
// iteration with its error.
func (c *Client) AllUsers(ctx context.Context, f UsersFilter) iter.Seq2[User, error] {
	return all(ctx, f.Page, func(ctx context.Context, p Page) ([]User, error) {
		g := f
		g.Page = p
		return c.Users(ctx, g)
	}, func(u User) int64 { return int64(u.ID) })
}

// CustomersFilter selects customers for [Client.Customers].
type CustomersFilter struct {
	ID          int64
	ChannelID   int64
	ChannelType string
	ExternalID  string
	Page
}

// Customers lists MG customers (GET /customers).
func (c *Client) Customers(ctx context.Context, f CustomersFilter) ([]Customer, error) {
	q := url.Values{}
	setInt(q, "id", f.ID)
	setInt(q, "channel_id", f.ChannelID)
	setStr(q, "channel_type", f.ChannelType)
	setStr(q, "external_id", f.ExternalID)
	return list[Customer](ctx, c, "/customers", q, f.Page)
}

// ChatsFilter selects chats for [Client.Chats].
type ChatsFilter struct {
	ID                       int64
	ChannelID                int64
	ChannelType              string
	CustomerID               int64
	CustomerExternalID       string
	IncludeMassCommunication bool
	Page
}

// Chats lists chats (GET /chats).
func (c *Client) Chats(ctx context.Context, f ChatsFilter) ([]Chat, error) {
	q := url.Values{}
	setInt(q, "id", f.ID)
	setInt(q, "channel_id", f.ChannelID)
	setStr(q, "channel_type", f.ChannelType)
	setInt(q, "customer_id", f.CustomerID)
	setStr(q, "customer_external_id", f.CustomerExternalID)
	if f.IncludeMassCommunication {
		q.Set("include_mass_communication", "1")
	}
	return list[Chat](ctx, c, "/chats", q, f.Page)
}

// DialogsFilter selects dialogs for [Client.Dialogs]. MG has no
// GET /dialogs/{id}; select one dialog with ID.
type DialogsFilter struct {
	ID     int64
	ChatID int64
	// UserID selects the dialogs a user (manager) is responsible for.
	UserID int64
	// BotID selects the dialogs a bot is responsible for.
	BotID int64
	// Assigned sends assign=1 or assign=0. That MG reads assign=0 as
	// "unassigned only" is unverified: check Dialog.IsAssigned.
	Assigned Flag
	// Active: Yes selects open dialogs, No closed ones.
	Active                   Flag
	IncludeMassCommunication bool
	Page
}

// Dialogs lists one page of dialogs (GET /dialogs).
func (c *Client) Dialogs(ctx context.Context, f DialogsFilter) ([]Dialog, error) {
	q := url.Values{}
	setInt(q, "id", f.ID)
	setInt(q, "chat_id", f.ChatID)
	setInt(q, "user_id", f.UserID)
	setInt(q, "bot_id", f.BotID)
	setFlag(q, "assign", f.Assigned)
	setFlag(q, "active", f.Active)
	if f.IncludeMassCommunication {
		q.Set("include_mass_communication", "1")
	}
	return list[Dialog](ctx, c, "/dialogs", q, f.Page)
}

// AllDialogs iterates over every dialog the filter selects, page by page by
// since_id (MaxLimit per page unless f.Limit says otherwise), until a short
// page. A failed page ends the iteration with its error:
//
//	for d, err := range c.AllDialogs(ctx, mg.DialogsFilter{Active: mg.Yes}) {
//		if err != nil {
//			return err
//		}
//		...
//	}
func (c *Client) AllDialogs(ctx context.Context, f DialogsFilter) iter.Seq2[Dialog, error] {
	return all(ctx, f.Page, func(ctx context.Context, p Page) ([]Dialog, error) {
		g := f
		g.Page = p
		return c.Dialogs(ctx, g)
	}, func(d Dialog) int64 { return int64(d.ID) })
}

// Collect gathers an iteration such as [Client.AllDialogs] into a slice,
// stopping at the first error.
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// MessagesFilter selects messages for [Client.Messages].
type MessagesFilter struct {
	// IDs selects messages by id, sent as repeated id keys.
	IDs         []int64
	ChatID      int64
	DialogID    int64
	UserID      int64
	CustomerID  int64
	BotID       int64
	ChannelID   int64
	ChannelType string
	// Scope is ScopePublic or ScopePrivate; empty sends nothing.
	Scope string
	// Type is a message type such as MessageText; empty sends nothing.
	Type                     string
	IncludeMassCommunication bool
	Page
}

// Messages lists messages (GET /messages), e.g. those of a dialog to tell
// whether a manager has answered.
func (c *Client) Messages(ctx context.Context, f MessagesFilter) ([]Message, error) {
	q := url.Values{}
	for _, id := range f.IDs {
		q.Add("id", strconv.FormatInt(id, 10))
	}
	setInt(q, "chat_id", f.ChatID)
	setInt(q, "dialog_id", f.DialogID)
	setInt(q, "user_id", f.UserID)
	setInt(q, "customer_id", f.CustomerID)
	setInt(q, "bot_id", f.BotID)
	setInt(q, "channel_id", f.ChannelID)
	setStr(q, "channel_type", f.ChannelType)
	setStr(q, "scope", f.Scope)
	setStr(q, "type", f.Type)
	if f.IncludeMassCommunication {
		q.Set("include_mass_communication", "1")
	}
	return list[Message](ctx, c, "/messages", q, f.Page)
}

// AllMessages iterates over every message the filter selects, page by page
// by since_id (MaxLimit per page unless f.Limit says otherwise), until a
// short page. A failed page ends the iteration with its error.
func (c *Client) AllMessages(ctx context.Context, f MessagesFilter) iter.Seq2[Message, error] {
	return all(ctx, f.Page, func(ctx context.Context, p Page) ([]Message, error) {
		g := f
		g.Page = p
		return c.Messages(ctx, g)
	}, func(m Message) int64 { return m.ID })
}
