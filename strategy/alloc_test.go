package strategy_test

import (
	"context"
	"testing"

	"github.com/botdistributor/botdistributor/strategy"
)

// The distributor calls Pick for every dialog; the plain strategies must not
// allocate.
func TestPickDoesNotAllocate(t *testing.T) {
	rr, ll := strategy.NewRoundRobin(), strategy.NewLeastLoaded()
	sticky, _ := strategy.NewSticky(rr)
	capped, _ := strategy.NewCapped(ll, 1000)
	tight, _ := strategy.NewCapped(ll, 3) // removes some of hammerRequest's candidates
	req := hammerRequest()
	noLast := req
	noLast.LastManager = 0
	cases := []struct {
		name string
		s    strategy.Strategy
		req  strategy.Request
		skip bool
	}{
		{"RoundRobin", rr, req, false},
		{"LeastLoaded", ll, req, false},
		{"Sticky keeping", sticky, req, false},
		{"Sticky falling back", sticky, noLast, false},
		{"Capped removing nobody", capped, req, false},
		// The race detector makes sync.Pool drop buffers at random.
		{"Capped removing some", tight, req, raceEnabled},
	}
	ctx := context.Background()
	for _, tc := range cases {
		if tc.skip {
			continue
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := tc.s.Pick(ctx, tc.req); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Pick allocates %v times per call", tc.name, allocs)
		}
	}
}
