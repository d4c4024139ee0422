package distributor_test

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/strategy"
)

// A large pool with an ordered strategy is decided over the head of an
// index (a few managers' loads read fresh) instead of every manager's
// load; the choices must be the ones a decision over the whole pool makes.
// Two distributors live through the same seeded opens, closes and leaves:
// one with a built-in (strategy.Ordered) strategy, one with the same Pick
// hidden behind strategy.Func, which has no order, so that it reads the
// whole pool every time.
func TestIndexedPoolChoosesAsTheWholePool(t *testing.T) {
	const managers, capacity, steps = 80, 2, 900
	cases := []struct {
		name   string
		strat  func() strategy.Strategy
		sticky bool
	}{
		{"round robin", func() strategy.Strategy { return strategy.NewRoundRobin() }, false},
		{"least loaded", func() strategy.Strategy { return strategy.NewLeastLoaded() }, false},
		{"sticky least loaded", func() strategy.Strategy { return strategy.NewLeastLoaded() }, true},
		{"strict order", func() strategy.Strategy { return strategy.NewStrictOrder() }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ids := managerIDs(managers)
			// The admin's order is not the ids' (strict order follows it).
			order := slices.Clone(ids)
			rand.New(rand.NewPCG(3, 5)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			s := settingsFor(order, capacity)
			s.Sticky = tc.sticky
			// Some managers are on leave today: the index passes over them.
			s.Leave = map[bd.ManagerID][]bd.DateRange{}
			for m := bd.ManagerID(3); m <= managers; m += 7 {
				s.Leave[m] = []bd.DateRange{{From: t0.Format(time.DateOnly), To: t0.Format(time.DateOnly)}}
			}
			var narrow, wide atomic.Int64 // assignments decided over a head / the whole pool
			hooks := distributor.WithHooks(distributor.Hooks{Decision: func(tr distributor.Trace) {
				if tr.Outcome != distributor.OutcomeAssigned {
					return
				}
				if tr.CandidateCount <= 9 {
					narrow.Add(1)
				} else {
					wide.Add(1)
				}
			}})
			ordered := tc.strat()
			indexed := newFixture(t, s, onlineManagers(ids), distributor.WithStrategy(ordered), distributor.WithIndexFrom(64), hooks)
			whole := newFixture(t, s, onlineManagers(ids), distributor.WithStrategy(strategy.Func(ordered.Pick)))
			r := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			var open []bd.DialogID
			next, queued := 1, 0 // steps that ended with dialogs waiting

			for step := range steps {
				now := t0.Add(time.Duration(step) * 3 * time.Second)
				indexed.clock.Set(now)
				whole.clock.Set(now)
				if len(open) == 0 || r.IntN(10) < 6 {
					dl := dialog(next, 1)
					next++
					if r.IntN(3) == 0 && next > 10 {
						dl.Customer.ID = bd.CustomerID(5000 + 1 + r.IntN(next-2)) // a returning customer
					}
					dl.OpenedAt = now
					indexed.open(t, dl)
					whole.open(t, dl)
					open = append(open, dl.ID)
				} else {
					i := r.IntN(len(open))
					id := open[i]
					open = slices.Delete(open, i, i+1)
					indexed.close(t, id)
					whole.close(t, id)
				}
				for _, id := range open {
					if got, want := indexed.responsible(t, id), whole.responsible(t, id); got != want {
						t.Fatalf("step %d: dialog %d is with %v over the index, with %v over the whole pool", step, id, got, want)
					}
				}
				if step%10 == 0 && whole.queueLen(t) > 0 {
					queued++
				}
			}
			if queued == 0 {
				t.Fatal("the pool never filled up: the drain over a full index was not exercised")
			}
			if got, want := indexed.queueLen(t), whole.queueLen(t); got != want {
				t.Fatalf("queue length %d over the index, %d over the whole pool", got, want)
			}
			if n := narrow.Load(); n < wide.Load() {
				t.Fatalf("only %d of %d assignments were decided over the index's head", n, n+wide.Load())
			}
			indexed.checkInvariants(t, ids, capacity)
			t.Logf("%d assignments over the index's head, %d over the whole pool", narrow.Load(), wide.Load())
		})
	}
}
