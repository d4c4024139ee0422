package strategy_test

import (
	"context"
	"fmt"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/strategy"
)

// benchRequest returns n candidates with distinct assignment times, a tenth
// of them at 3 or more open dialogs, and a last manager who is not among
// them, so that every strategy scans the whole list.
func benchRequest(n int) strategy.Request {
	cs := make([]strategy.Candidate, n)
	for i := range cs {
		cs[i] = strategy.Candidate{
			Manager:        bd.ManagerID(i + 1),
			Open:           (i * 7) % 3,
			Capacity:       5,
			LastAssignedAt: at((i * 7919) % (n + 13)),
		}
		if i%10 == 9 {
			cs[i].Open = 3 + i%2
		}
	}
	req := request(cs...)
	req.LastManager = bd.ManagerID(n + 1)
	return req
}

func BenchmarkPick(b *testing.B) {
	rr, ll := strategy.NewRoundRobin(), strategy.NewLeastLoaded()
	sticky, _ := strategy.NewSticky(rr)
	capped, _ := strategy.NewCapped(ll, 3)
	strategies := []struct {
		name string
		s    strategy.Strategy
	}{
		{"RoundRobin", rr},
		{"LeastLoaded", ll},
		{"StickyRoundRobin", sticky},
		{"CappedLeastLoaded", capped},
	}
	ctx := context.Background()
	for _, st := range strategies {
		for _, n := range []int{10, 100, 1000, 10000} {
			req := benchRequest(n)
			b.Run(fmt.Sprintf("%s/n=%d", st.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := st.s.Pick(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/candidate")
			})
		}
	}
}
