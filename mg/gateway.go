package mg

import (
	"context"
	"fmt"
	"sync"

	bd "github.com/botdistributor/botdistributor"
)

// Assign makes to responsible for the dialog, with the signature of the
// distributor's Gateway port. A Client speaks for one bot of one account,
// so account is ignored; route several accounts with [Accounts].
func (c *Client) Assign(ctx context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error {
	_, err := c.AssignDialog(ctx, dialog, to)
	return err
}

// Send posts text into the chat publicly (scope public, type text), with
// the signature of reply.Sender. A Client speaks for one bot of one
// account, so account is ignored; route several accounts with [Accounts].
// Like SendMessage it is never retried.
func (c *Client) Send(ctx context.Context, account bd.AccountID, chat bd.ChatID, text string) error {
	_, err := c.SendMessage(ctx, SendMessageRequest{ChatID: chat, Scope: ScopePublic, Type: MessageText, Content: text})
	return err
}

// Accounts routes the distributor's Gateway and reply.Sender calls to the
// Client of each account. The zero value is an empty router ready to use;
// it is safe for concurrent use, and clients may be set and removed while
// calls are in flight.
type Accounts struct {
	mu      sync.RWMutex
	clients map[bd.AccountID]*Client
}

// Set makes c the client of account, replacing any previous one. A nil c
// removes the account.
func (a *Accounts) Set(account bd.AccountID, c *Client) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c == nil {
		delete(a.clients, account)
		return
	}
	if a.clients == nil {
		a.clients = make(map[bd.AccountID]*Client)
	}
	a.clients[account] = c
}

// Remove forgets the account's client.
func (a *Accounts) Remove(account bd.AccountID) { a.Set(account, nil) }

// Client returns the account's client.
func (a *Accounts) Client(account bd.AccountID) (*Client, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	c, ok := a.clients[account]
	return c, ok
}

func (a *Accounts) client(account bd.AccountID) (*Client, error) {
	if c, ok := a.Client(account); ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownAccount, account)
}

// Assign assigns through the account's client; ErrUnknownAccount if it has
// none.
func (a *Accounts) Assign(ctx context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error {
	c, err := a.client(account)
	if err != nil {
		return err
	}
	return c.Assign(ctx, account, dialog, to)
}

// Send sends through the account's client; ErrUnknownAccount if it has
// none.
func (a *Accounts) Send(ctx context.Context, account bd.AccountID, chat bd.ChatID, text string) error {
	c, err := a.client(account)
	if err != nil {
		return err
	}
	return c.Send(ctx, account, chat, text)
}
