package main

import (
	"context"
	"math"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

// naiveStore is WRONG ON PURPOSE. It is the baseline the load test compares
// the real stores with: a memory store whose capacity check is "read the
// count, then write", as an assignment engine does when it counts a
// manager's open conversations and then assigns in a separate step.
//
// Assign reads the manager's load, refuses when it is at capacity, pauses
// for a moment (standing in for the round trip between the read and the
// write of a real database), and then assigns with no capacity limit. Two
// distributors assigning to the same manager at once both see the last free
// slot and both take it: the manager ends above capacity. Everything else,
// the one-responsible-per-dialog rule included, is the memory store's.
//
// Never use anything like it: the distributor's stores make the check and
// the write one atomic step (see store.Assignments).
type naiveStore struct {
	*memory.Store
	// yield is the pause between the read and the write.
	yield time.Duration
}

var _ store.Store = (*naiveStore)(nil)

func newNaiveStore(yield time.Duration) *naiveStore {
	return &naiveStore{Store: memory.New(), yield: yield}
}

// Assign checks the capacity with a read, then writes without a limit.
func (n *naiveStore) Assign(ctx context.Context, a store.Assignment) error {
	m, ok := a.To.Manager()
	if !ok || !a.From.IsZero() {
		return n.Store.Assign(ctx, a)
	}
	loads, err := n.Store.Loads(ctx, a.Account, []bd.ManagerID{m}, nil)
	if err != nil {
		return err
	}
	if loads[0].Open >= a.Capacity {
		return store.ErrCapacity
	}
	if n.yield > 0 {
		time.Sleep(n.yield)
	}
	a.Capacity = math.MaxInt32
	return n.Store.Assign(ctx, a)
}
