package retailcrm_test

import (
	"context"
	"slices"
	"sync"
	"time"
)

// simClock is a virtual clock for tests whose work goes over real sockets,
// where testing/synctest cannot advance time: a goroutine blocked on a
// network read (an idle keep-alive connection, the sandbox's listener) is
// never durably blocked, so a bubble's clock would stand still.
//
// The clock knows the flows of work started with Go: each one is running,
// asleep in Sleep, or finished. When none is running, time jumps to the
// earliest wake-up and wakes the flows due then. A flow must sleep in one
// goroutine at a time (the crm client's limiter and backoff do: the bind's
// own goroutine waits while a request is in flight), and time stands
// still while any flow runs, e.g. while a request is on the wire.
type simClock struct {
	mu       sync.Mutex
	now      time.Time
	running  int
	sleepers []*simSleeper
}

type simSleeper struct {
	until time.Time
	wake  chan struct{}
}

func newSimClock() *simClock {
	return &simClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now is the clock's time; it fits crm.WithClock and sandbox.WithClock.
func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Go runs f as a flow of the clock and returns at once.
func (c *simClock) Go(f func()) {
	c.mu.Lock()
	c.running++
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			c.running--
			c.advance()
			c.mu.Unlock()
		}()
		f()
	}()
}

// Sleep waits until the clock has moved d on, or ctx ends; it fits
// crm.WithSleep. It must be called from a flow started with Go.
func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	c.mu.Lock()
	s := &simSleeper{until: c.now.Add(d), wake: make(chan struct{})}
	c.sleepers = append(c.sleepers, s)
	c.running--
	c.advance()
	c.mu.Unlock()
	select {
	case <-s.wake:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		if i := slices.Index(c.sleepers, s); i >= 0 {
			c.sleepers = slices.Delete(c.sleepers, i, i+1)
			c.running++
		} // else woken meanwhile, and counted as running again
		return ctx.Err()
	}
}

// advance moves time to the earliest wake-up when no flow runs, and wakes
// the sleepers due then. c.mu must be held.
func (c *simClock) advance() {
	if c.running > 0 || len(c.sleepers) == 0 {
		return
	}
	next := c.sleepers[0].until
	for _, s := range c.sleepers[1:] {
		if s.until.Before(next) {
			next = s.until
		}
	}
	if next.After(c.now) {
		c.now = next
	}
	c.sleepers = slices.DeleteFunc(c.sleepers, func(s *simSleeper) bool {
		if s.until.After(c.now) {
			return false
		}
		close(s.wake)
		c.running++
		return true
	})
}
