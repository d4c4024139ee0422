package strategy_test

import (
	"context"
	"testing"
	"time"

	"github.com/botdistributor/botdistributor/strategy"
	"github.com/botdistributor/botdistributor/strategy/strategytest"
)

func TestRoundRobinConformance(t *testing.T) {
	strategytest.Run(t, func(*testing.T) strategy.Strategy { return strategy.NewRoundRobin() })
}

func TestRoundRobinPick(t *testing.T) {
	const (
		longest = "longest since last assignment"
		neverR  = "longest since last assignment (never)"
	)
	moscow := time.FixedZone("MSK", 3*60*60)
	runPickCases(t, strategy.NewRoundRobin(), []pickCase{
		{"single candidate", request(cand(4, 0, at(5))), 4, longest},
		{"oldest assignment wins", request(cand(1, 0, at(9)), cand(2, 0, at(3)), cand(3, 0, at(7))), 2, longest},
		{"never assigned beats everyone", request(cand(1, 0, at(-10000)), cand(2, 0, never), cand(3, 0, at(1))), 2, neverR},
		{"never assigned beats a time before year one", request(cand(1, 0, time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)), cand(2, 0, never)), 2, neverR},
		{"equal times go to the lower id", request(cand(3, 0, at(1)), cand(5, 0, at(1)), cand(7, 0, at(2))), 3, longest},
		{"all never go to the lower id", request(cand(3, 0, never), cand(5, 0, never)), 3, neverR},
		{"lower id wins out of order", request(cand(9, 0, at(1)), cand(2, 0, never), cand(5, 0, at(1)), cand(1, 0, never)), 1, neverR},
		{"same instant in another zone is a tie", request(cand(8, 0, at(1)), cand(6, 0, at(1).In(moscow))), 6, longest},
		{"load does not matter", request(cand(1, 0, at(5)), cand(2, 9, at(4))), 2, longest},
	})
}

func TestRoundRobinZeroValue(t *testing.T) {
	var s strategy.RoundRobin
	got, err := s.Pick(t.Context(), request(cand(1, 0, at(2)), cand(2, 0, at(1))))
	if err != nil || got.Manager != 2 {
		t.Fatalf("Pick = %+v, %v; want manager 2", got, err)
	}
}

func TestRoundRobinHammer(t *testing.T) {
	hammer(t, strategy.NewRoundRobin(), hammerRequest())
}

// Times are compared by the wall clock, as a shared store keeps them: a
// time that still carries a monotonic clock reading ties with the same
// wall-clock time without one, and the tie goes to the lower id.
func TestRoundRobinIgnoresMonotonicReading(t *testing.T) {
	withMono := time.Now()
	wall := withMono.Round(0) // the same instant, without the monotonic reading
	for _, cs := range [][]strategy.Candidate{
		{{Manager: 2, Capacity: 5, LastAssignedAt: withMono}, {Manager: 1, Capacity: 5, LastAssignedAt: wall}},
		{{Manager: 2, Capacity: 5, LastAssignedAt: wall}, {Manager: 1, Capacity: 5, LastAssignedAt: withMono}},
	} {
		c, err := strategy.NewRoundRobin().Pick(context.Background(), strategy.Request{Candidates: cs})
		if err != nil || c.Manager != 1 {
			t.Fatalf("Pick(%v) = %d, %v; want manager 1 (equal wall clocks, lower id)", cs, c.Manager, err)
		}
	}
}
