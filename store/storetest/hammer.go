package storetest

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// The shape of the invariant hammer: many goroutines, few dialogs and few
// slots, so that the same dialog and the same last slot are fought over.
const (
	hammerGoroutines = 64
	hammerManagers   = 8
	hammerCapacity   = 3
	hammerDialogs    = 48 // twice the slots of all managers together
	hammerBots       = 2
	sampleEvery      = 32 // each goroutine checks the loads every this many operations
)

func invariantCases(cfg config) []testCase {
	return []testCase{
		{"Hammer", func(t *testing.T, s store.Store) { hammer(t, s, cfg.hammer, false) }},
		{"HammerWithRecord", func(t *testing.T, s store.Store) { hammer(t, s, cfg.hammer, true) }},
	}
}

// holders counts, per responsible, the dialogs the hammer's successful calls
// gave them minus those the calls took away. Additions commute, so at the end
// they equal what the store must hold whatever the interleaving was.
type holders struct {
	managers [hammerManagers + 1]atomic.Int64
	bots     atomic.Int64
}

func (h *holders) add(r bd.Responsible, n int64) {
	if m, ok := r.Manager(); ok {
		if m < 1 || m > hammerManagers {
			panic("storetest: responsible outside the hammer's managers")
		}
		h.managers[m].Add(n)
	} else if _, ok := r.Bot(); ok {
		h.bots.Add(n)
	}
}

// hammer races hammerGoroutines goroutines making n operations in all, most
// of them Assign to a manager of capacity hammerCapacity, the rest Release
// (and Record, when withRecord is set) on a small pool of dialogs. Every
// goroutine samples the loads as it goes; at the end the store must agree
// with the operations that succeeded. Without Record no manager may ever
// exceed the capacity; Record ignores capacity by contract, so then only
// the bookkeeping is checked.
func hammer(t *testing.T, s store.Store, n int, withRecord bool) {
	acc := newAccount(t)
	ctx := t.Context()
	managers := make([]bd.ManagerID, hammerManagers)
	for i := range managers {
		managers[i] = bd.ManagerID(i + 1)
	}

	var (
		held                          holders
		assigned, full, taken, missed atomic.Int64
		failed                        atomic.Bool
		start                         = make(chan struct{})
		wg                            sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		failed.Store(true)
		t.Errorf(format, args...)
	}
	for g := range hammerGoroutines {
		ops := n / hammerGoroutines
		if g < n%hammerGoroutines {
			ops++
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0x5eed))
			<-start
			for i := range ops {
				if failed.Load() {
					return
				}
				d := bd.DialogID(1 + rng.IntN(hammerDialogs))
				when := at(time.Duration(g*ops+i) * time.Millisecond)
				switch r := rng.IntN(16); {
				case r < 4:
					prev, err := s.Release(ctx, acc, d)
					switch {
					case err == nil:
						held.add(prev, -1)
					case errors.Is(err, store.ErrNotFound):
						missed.Add(1)
					default:
						fail("Release(%d): %v", d, err)
					}
				case withRecord && r < 6:
					to := randomResponsible(rng)
					prev, err := s.Record(ctx, store.Assignment{Account: acc, Dialog: d, Customer: 1, To: to, At: when})
					if err != nil {
						fail("Record(%d to %s): %v", d, to, err)
						break
					}
					held.add(prev, -1)
					held.add(to, 1)
				default:
					to := bd.ManagerOf(managers[rng.IntN(len(managers))])
					if r == 15 {
						to = bd.BotOf(bd.BotID(1 + rng.IntN(hammerBots)))
					}
					err := s.Assign(ctx, store.Assignment{Account: acc, Dialog: d, Customer: 1, To: to, Capacity: hammerCapacity, At: when})
					switch {
					case err == nil:
						assigned.Add(1)
						held.add(to, 1)
					case errors.Is(err, store.ErrCapacity):
						full.Add(1)
					case errors.Is(err, store.ErrAssigned):
						taken.Add(1)
					default:
						fail("Assign(%d to %s): %v", d, to, err)
					}
				}
				if i%sampleEvery == 0 {
					ls, err := s.Loads(ctx, acc, managers, nil)
					if err != nil {
						fail("Loads: %v", err)
						continue
					}
					for _, l := range ls {
						if l.Open < 0 || !withRecord && l.Open > hammerCapacity {
							fail("sampled load of manager %d is %d open dialogs, capacity %d", l.Manager, l.Open, hammerCapacity)
						}
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d operations: %d assigned, %d refused at capacity, %d refused as assigned, %d releases of unassigned dialogs",
		n, assigned.Load(), full.Load(), taken.Load(), missed.Load())

	total := checkConsistent(t, s, acc, managers)
	for i, l := range loads(t, s, acc, managers...) {
		m := managers[i]
		if want := held.managers[m].Load(); int64(l.Open) != want {
			t.Errorf("manager %d holds %d open dialogs, the successful calls left %d", m, l.Open, want)
		}
		if !withRecord && l.Open > hammerCapacity {
			t.Errorf("manager %d holds %d open dialogs, capacity %d", m, l.Open, hammerCapacity)
		}
	}
	byManager, byBot := 0, 0
	for d := bd.DialogID(1); d <= hammerDialogs; d++ {
		r, err := s.Responsible(ctx, acc, d)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			t.Fatalf("Responsible(%d): %v", d, err)
		case r.Kind == bd.ManagerResponsible:
			byManager++
		case r.Kind == bd.BotResponsible:
			byBot++
		default:
			t.Fatalf("Responsible(%d) = %s with no error", d, r)
		}
	}
	if byManager != total {
		t.Errorf("%d dialogs name a manager as responsible, the managers' lists hold %d", byManager, total)
	}
	if want := held.bots.Load(); int64(byBot) != want {
		t.Errorf("%d dialogs name a bot as responsible, the successful calls left %d", byBot, want)
	}
}

// randomResponsible returns one of the hammer's managers or bots, or nobody.
func randomResponsible(rng *rand.Rand) bd.Responsible {
	switch r := rng.IntN(hammerManagers + hammerBots + 1); {
	case r < hammerManagers:
		return bd.ManagerOf(bd.ManagerID(r + 1))
	case r < hammerManagers+hammerBots:
		return bd.BotOf(bd.BotID(r - hammerManagers + 1))
	}
	return bd.Responsible{}
}
