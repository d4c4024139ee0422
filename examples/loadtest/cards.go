package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/store"
)

// cardReader is the fake retailCRM of -routing: a binding.Profiler whose
// cards give every third customer a personal manager (one of the
// account's managers, by customer id) and make every fifth a priority
// customer (segment "vip"). Like the real retailCRM it serves 10 reads a
// second per account (per API key), each taking latency.
type cardReader struct {
	accounts store.Accounts
	latency  time.Duration

	mu       sync.Mutex
	managers map[bd.AccountID][]bd.ManagerID
	limiters map[bd.AccountID]*rate.Limiter
}

func newCardReader(accounts store.Accounts, latency time.Duration) *cardReader {
	return &cardReader{accounts: accounts, latency: latency,
		managers: map[bd.AccountID][]bd.ManagerID{}, limiters: map[bd.AccountID]*rate.Limiter{}}
}

// Profile implements binding.Profiler.
func (c *cardReader) Profile(ctx context.Context, req binding.ProfileRequest) (bd.CustomerProfile, error) {
	managers, lim, err := c.account(ctx, req.Account)
	if err != nil {
		return bd.CustomerProfile{}, fmt.Errorf("%w: %w", binding.ErrUnavailable, err)
	}
	if err := lim.Wait(ctx); err != nil {
		return bd.CustomerProfile{}, fmt.Errorf("%w: %w", binding.ErrUnavailable, err)
	}
	select {
	case <-time.After(c.latency):
	case <-ctx.Done():
		return bd.CustomerProfile{}, fmt.Errorf("%w: %w", binding.ErrUnavailable, ctx.Err())
	}
	id := int64(req.Customer.ID)
	p := bd.CustomerProfile{CRMCustomer: 1_000_000 + id}
	if id%3 == 0 && len(managers) > 0 {
		p.Manager = managers[int(id/3)%len(managers)]
	}
	if id%5 == 0 {
		p.Segments = []string{"vip"}
	}
	return p, nil
}

// account returns the account's managers (from its settings, read once)
// and its rate limit.
func (c *cardReader) account(ctx context.Context, id bd.AccountID) ([]bd.ManagerID, *rate.Limiter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if lim, ok := c.limiters[id]; ok {
		return c.managers[id], lim, nil
	}
	acc, err := c.accounts.Account(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	lim := rate.NewLimiter(10, 10)
	c.managers[id], c.limiters[id] = acc.Settings.Managers, lim
	return acc.Settings.Managers, lim, nil
}
