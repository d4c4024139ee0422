package strategy_test

import (
	"testing"

	"github.com/botdistributor/botdistributor/strategy"
	"github.com/botdistributor/botdistributor/strategy/strategytest"
)

func TestLeastLoadedConformance(t *testing.T) {
	strategytest.Run(t, func(*testing.T) strategy.Strategy { return strategy.NewLeastLoaded() })
}

func TestLeastLoadedPick(t *testing.T) {
	runPickCases(t, strategy.NewLeastLoaded(), []pickCase{
		{"single candidate", request(cand(4, 3, at(5))), 4, "fewest open dialogs (3)"},
		{"fewest open wins over idle time", request(cand(1, 2, never), cand(2, 1, at(50)), cand(3, 4, at(-50))), 2, "fewest open dialogs (1)"},
		{"equal load goes to never assigned", request(cand(1, 1, at(1)), cand(2, 1, never), cand(3, 1, at(0))), 2, "fewest open dialogs (1)"},
		{"equal load goes to longest idle", request(cand(1, 0, at(3)), cand(2, 0, at(1)), cand(3, 0, at(2))), 2, "fewest open dialogs (0)"},
		{"equal load and time go to the lower id", request(cand(6, 2, at(1)), cand(4, 2, at(1)), cand(5, 2, at(1))), 4, "fewest open dialogs (2)"},
		{"equal load all never go to the lower id", request(cand(6, 0, never), cand(4, 0, never)), 4, "fewest open dialogs (0)"},
		{"idle tie-break only among the least loaded", request(cand(1, 3, never), cand(2, 2, at(9)), cand(3, 2, at(8))), 3, "fewest open dialogs (2)"},
		{"large loads are formatted", request(cand(1, 151, at(1)), cand(2, 150, at(2))), 2, "fewest open dialogs (150)"},
		{"load 99 uses the table edge", request(cand(1, 99, at(1))), 1, "fewest open dialogs (99)"},
		{"load 100 is just past it", request(cand(1, 100, at(1))), 1, "fewest open dialogs (100)"},
	})
}

func TestLeastLoadedHammer(t *testing.T) {
	hammer(t, strategy.NewLeastLoaded(), hammerRequest())
}
