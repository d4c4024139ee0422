package binding

import (
	"context"
	"errors"
	"fmt"
	"sync"

	bd "github.com/botdistributor/botdistributor"
)

// ErrUnknownAccount is returned (wrapped) by [Accounts.Bind] for an account
// without a binder.
var ErrUnknownAccount = errors.New("binding: no binder for the account")

// Accounts routes each request to the [Binder] of its account, so that one
// Binder serves every connected account (each retailCRM account has its
// own client, key and rate limit).
//
// Accounts is safe for concurrent use; the zero value is ready and empty.
type Accounts struct {
	mu sync.RWMutex
	m  map[bd.AccountID]Binder
}

var _ Binder = (*Accounts)(nil)

// Set makes b the binder of account, replacing any earlier one. A nil b
// removes the account.
func (a *Accounts) Set(account bd.AccountID, b Binder) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b == nil {
		delete(a.m, account)
		return
	}
	if a.m == nil {
		a.m = make(map[bd.AccountID]Binder)
	}
	a.m[account] = b
}

// Bind passes req to the binder of req.Account, or returns an error
// wrapping ErrUnknownAccount.
func (a *Accounts) Bind(ctx context.Context, req Request) (Result, error) {
	a.mu.RLock()
	b, ok := a.m[req.Account]
	a.mu.RUnlock()
	if !ok {
		return Result{}, fmt.Errorf("%w %q", ErrUnknownAccount, req.Account)
	}
	return b.Bind(ctx, req)
}
