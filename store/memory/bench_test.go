package memory_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

var managerCounts = []int{10, 100, 1000, 10000}

// customers is how many customers the benchmarks cycle through: customers
// return, and the store keeps each one's last manager.
const customers = 10_000

// roster returns n manager ids and a store in which each holds a few dialogs.
func roster(b *testing.B, acc bd.AccountID, n int) (*memory.Store, []bd.ManagerID) {
	b.Helper()
	s := memory.New()
	ms := make([]bd.ManagerID, n)
	for i := range ms {
		ms[i] = bd.ManagerID(1000 + i)
		for j := range i % 3 {
			d := bd.DialogID(1_000_000_000 + i*3 + j)
			if err := s.Assign(context.Background(), store.Assignment{Account: acc, Dialog: d, To: bd.ManagerOf(ms[i]), Capacity: 3, At: time.Unix(int64(i), 0)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s, ms
}

func BenchmarkAssignRelease(b *testing.B) {
	ctx := context.Background()
	const acc = bd.AccountID("bench")
	s, ms := roster(b, acc, 100)
	at := time.Now()
	var i int
	for b.Loop() {
		d := bd.DialogID(i + 1)
		if err := s.Assign(ctx, store.Assignment{Account: acc, Dialog: d, Customer: bd.CustomerID(1 + i%customers), To: bd.ManagerOf(ms[i%len(ms)]), Capacity: 10, At: at}); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Release(ctx, acc, d); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAssignReleaseParallel runs AssignRelease from every P, each on
// an account of its own, to show that accounts do not contend.
func BenchmarkAssignReleaseParallel(b *testing.B) {
	ctx := context.Background()
	s := memory.New()
	var next int64
	var mu = make(chan struct{}, 1)
	b.RunParallel(func(pb *testing.PB) {
		mu <- struct{}{}
		next++
		acc := bd.AccountID("bench-" + strconv.FormatInt(next, 10))
		<-mu
		at := time.Now()
		for i := 0; pb.Next(); i++ {
			d := bd.DialogID(i + 1)
			if err := s.Assign(ctx, store.Assignment{Account: acc, Dialog: d, To: bd.ManagerOf(bd.ManagerID(i%100 + 1)), Capacity: 10, At: at}); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Release(ctx, acc, d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkLoads(b *testing.B) {
	ctx := context.Background()
	const acc = bd.AccountID("bench")
	for _, n := range managerCounts {
		b.Run(fmt.Sprintf("managers=%d", n), func(b *testing.B) {
			s, ms := roster(b, acc, n)
			b.ReportAllocs()
			var buf []store.Load
			for b.Loop() {
				ls, err := s.Loads(ctx, acc, ms, buf)
				buf = ls
				if err != nil || len(ls) != n {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkClaimEvent(b *testing.B) {
	ctx := context.Background()
	const acc = bd.AccountID("bench")
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "message_new:" + strconv.Itoa(i)
	}
	at := time.Now()
	b.Run("new", func(b *testing.B) {
		s := memory.New()
		i := 0
		for b.Loop() {
			if i%len(keys) == 0 && i > 0 {
				// Start over on a fresh set of claims; pruning is not measured.
				b.StopTimer()
				s.PruneEvents(ctx, at.Add(time.Hour))
				b.StartTimer()
			}
			if ok, err := s.ClaimEvent(ctx, acc, keys[i%len(keys)], at); !ok || err != nil {
				b.Fatal(ok, err)
			}
			i++
		}
	})
	b.Run("duplicate", func(b *testing.B) {
		s := memory.New()
		s.ClaimEvent(ctx, acc, "dup", at)
		for b.Loop() {
			if ok, err := s.ClaimEvent(ctx, acc, "dup", at); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkCycle runs the store calls the distributor makes for one dialog
// from opening to closing: claim the opening event, claim the "received"
// reply, read the loads of every manager, look up the customer's last
// manager, assign, claim the "assigned" reply, read the queue length, claim
// the closing event and release. Event claims are pruned as a bot would,
// every so many cycles, and the pruning is measured too.
func BenchmarkCycle(b *testing.B) {
	ctx := context.Background()
	const acc = bd.AccountID("bench")
	for _, n := range managerCounts {
		b.Run(fmt.Sprintf("managers=%d", n), func(b *testing.B) {
			s, ms := roster(b, acc, n)
			start := time.Now()
			var buf []byte
			var loadBuf []store.Load
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				d := bd.DialogID(i)
				c := bd.CustomerID(1 + i%customers)
				at := start.Add(time.Duration(i) * time.Millisecond)
				buf = strconv.AppendInt(append(buf[:0], "open:"...), int64(i), 10)
				if ok, err := s.ClaimEvent(ctx, acc, string(buf), at); !ok || err != nil {
					b.Fatal(ok, err)
				}
				if ok, err := s.ClaimReply(ctx, acc, d, bd.DialogReceived); !ok || err != nil {
					b.Fatal(ok, err)
				}
				ls, err := s.Loads(ctx, acc, ms, loadBuf)
				if err != nil {
					b.Fatal(err)
				}
				loadBuf = ls
				pick := ls[i%len(ls)].Manager
				if last, err := s.LastManager(ctx, acc, c); err == nil {
					pick = last
				}
				if err := s.Assign(ctx, store.Assignment{Account: acc, Dialog: d, Customer: c, To: bd.ManagerOf(pick), Capacity: 10, At: at}); err != nil {
					b.Fatal(err)
				}
				if ok, err := s.ClaimReply(ctx, acc, d, bd.ManagerAssigned); !ok || err != nil {
					b.Fatal(ok, err)
				}
				if _, err := s.QueueLen(ctx, acc); err != nil {
					b.Fatal(err)
				}
				buf = strconv.AppendInt(append(buf[:0], "close:"...), int64(i), 10)
				if ok, err := s.ClaimEvent(ctx, acc, string(buf), at); !ok || err != nil {
					b.Fatal(ok, err)
				}
				if _, err := s.Release(ctx, acc, d); err != nil {
					b.Fatal(err)
				}
				if i%(1<<16) == 0 {
					if _, err := s.PruneEvents(ctx, at.Add(-time.Minute)); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
