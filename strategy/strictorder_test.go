package strategy_test

import (
	"testing"

	"github.com/botdistributor/botdistributor/strategy"
	"github.com/botdistributor/botdistributor/strategy/strategytest"
)

func TestStrictOrderConformance(t *testing.T) {
	strategytest.Run(t, func(*testing.T) strategy.Strategy { return strategy.NewStrictOrder() })
}

func ranked(c strategy.Candidate, rank int) strategy.Candidate {
	c.Rank = rank
	return c
}

func TestStrictOrderPick(t *testing.T) {
	runPickCases(t, strategy.NewStrictOrder(), []pickCase{
		{"single candidate", request(ranked(cand(4, 3, at(5)), 2)), 4, "first in the set order (place 3)"},
		{"first place wins over a lighter load", request(ranked(cand(1, 0, never), 1), ranked(cand(2, 9, at(1)), 0)), 2, "first in the set order (place 1)"},
		{"the order, not the ids", request(ranked(cand(1, 0, never), 5), ranked(cand(2, 0, never), 3), ranked(cand(3, 0, never), 4)), 2, "first in the set order (place 4)"},
		{"equal places go to the lower id", request(ranked(cand(6, 0, never), 1), ranked(cand(4, 5, at(1)), 1)), 4, "first in the set order (place 2)"},
		{"no places set: the lower id", request(cand(9, 0, never), cand(7, 3, at(2))), 7, "first in the set order (place 1)"},
		{"far places are formatted", request(ranked(cand(1, 0, never), 150), ranked(cand(2, 0, never), 151)), 1, "first in the set order (place 151)"},
	})
}

func TestStrictOrderHammer(t *testing.T) {
	hammer(t, strategy.NewStrictOrder(), hammerRequest())
}
