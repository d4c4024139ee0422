package fleet_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/store"
)

// stall makes a member's lease rounds hang, as when its database pool is
// exhausted, until the round's context ends.
type stall struct {
	store.Leases
	on atomic.Bool
}

func (s *stall) Lease(ctx context.Context, r store.LeaseRound) (store.LeaseState, error) {
	if s.on.Load() {
		<-ctx.Done()
		return store.LeaseState{}, ctx.Err()
	}
	return s.Leases.Lease(ctx, r)
}

// TestLeaseRoundHangs: a lease round that hangs does not keep the member's
// streams running past their deadline (three quarters of the TTL after the
// last successful round started), and another member takes the accounts
// over only after they stopped.
func TestLeaseRoundHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 2)
		s := &stall{Leases: w.st}
		a, _ := start(t, w, "a", fleet.WithLeases(s))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := a.Holding(); len(got) != 2 {
			t.Fatalf("a holds %v, want both accounts", got)
		}
		s.on.Store(true)
		b, _ := start(t, w, "b")
		// TTL 1s: a's last round started at most 250ms before the stall.
		time.Sleep(time.Second)
		synctest.Wait()
		if got := a.Holding(); len(got) != 0 {
			t.Errorf("a, its lease rounds hanging, still runs the streams of %v a second later", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := b.Holding(); len(got) != 2 {
			t.Errorf("b holds %v, want both accounts", got)
		}
		if o := w.overlaps(); len(o) > 0 {
			t.Fatalf("streams overlapped: %v", o)
		}
	})
}
