package strategytest_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/strategy"
	"github.com/botdistributor/botdistributor/strategy/strategytest"
)

// first picks the first candidate: simple, but it keeps the contract.
func first(_ context.Context, req strategy.Request) (strategy.Choice, error) {
	if len(req.Candidates) == 0 {
		return strategy.Choice{}, strategy.ErrNoCandidate
	}
	return strategy.Choice{Manager: req.Candidates[0].Manager, Reason: "first"}, nil
}

// seededRandom picks a random candidate from a seeded source, under a lock.
type seededRandom struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newSeededRandom() *seededRandom { return &seededRandom{r: rand.New(rand.NewPCG(1, 2))} }

func (s *seededRandom) Pick(_ context.Context, req strategy.Request) (strategy.Choice, error) {
	if len(req.Candidates) == 0 {
		return strategy.Choice{}, strategy.ErrNoCandidate
	}
	s.mu.Lock()
	i := s.r.IntN(len(req.Candidates))
	s.mu.Unlock()
	return strategy.Choice{Manager: req.Candidates[i].Manager, Reason: "random"}, nil
}

// orderedBy is an Ordered strategy made of a Pick and an order that may
// not agree with each other.
type orderedBy struct {
	pick  strategy.Strategy
	order func(a, b strategy.Candidate) int
}

func (s orderedBy) Pick(ctx context.Context, req strategy.Request) (strategy.Choice, error) {
	return s.pick.Pick(ctx, req)
}

func (s orderedBy) Order() func(a, b strategy.Candidate) int { return s.order }

func compareIDs(a, b strategy.Candidate) int { return int(a.Manager - b.Manager) }

// broken holds strategies that each break one rule of the contract, and the
// subtest that must catch it.
var broken = map[string]struct {
	new     func() strategy.Strategy
	subtest string
}{
	"outsider": {
		func() strategy.Strategy {
			return strategy.Func(func(_ context.Context, req strategy.Request) (strategy.Choice, error) {
				if len(req.Candidates) == 0 {
					return strategy.Choice{}, strategy.ErrNoCandidate
				}
				return strategy.Choice{Manager: req.Candidates[len(req.Candidates)-1].Manager + 1000}, nil
			})
		},
		"ChoosesACandidate",
	},
	"never chooses": {
		func() strategy.Strategy {
			return strategy.Func(func(context.Context, strategy.Request) (strategy.Choice, error) {
				return strategy.Choice{}, strategy.ErrNoCandidate
			})
		},
		"ChoosesACandidate",
	},
	"other error": {
		func() strategy.Strategy {
			return strategy.Func(func(_ context.Context, req strategy.Request) (strategy.Choice, error) {
				if len(req.Candidates) > 20 {
					return strategy.Choice{}, errors.New("too many")
				}
				return first(context.Background(), req)
			})
		},
		"ChoosesACandidate",
	},
	"chooses from nothing": {
		func() strategy.Strategy {
			return strategy.Func(func(_ context.Context, req strategy.Request) (strategy.Choice, error) {
				if len(req.Candidates) == 0 {
					return strategy.Choice{Manager: req.LastManager}, nil
				}
				return first(context.Background(), req)
			})
		},
		"NoCandidates",
	},
	"plain error on nothing": {
		func() strategy.Strategy {
			return strategy.Func(func(_ context.Context, req strategy.Request) (strategy.Choice, error) {
				if len(req.Candidates) == 0 {
					return strategy.Choice{}, errors.New("nobody")
				}
				return first(context.Background(), req)
			})
		},
		"NoCandidates",
	},
	"sorts in place": {
		func() strategy.Strategy {
			return strategy.Func(func(_ context.Context, req strategy.Request) (strategy.Choice, error) {
				slices.SortFunc(req.Candidates, func(a, b strategy.Candidate) int { return a.Open - b.Open })
				return first(context.Background(), req)
			})
		},
		"RequestNotModified",
	},
	"appends to the caller's slice": {
		func() strategy.Strategy {
			return strategy.Func(func(_ context.Context, req strategy.Request) (strategy.Choice, error) {
				all := append(req.Candidates, strategy.Candidate{Manager: 1})
				return first(context.Background(), strategy.Request{Candidates: all[:len(all)-1]})
			})
		},
		"RequestNotModified",
	},
	"takes turns in process": {
		func() strategy.Strategy {
			var n atomic.Int64
			return strategy.Func(func(_ context.Context, req strategy.Request) (strategy.Choice, error) {
				if len(req.Candidates) == 0 {
					return strategy.Choice{}, strategy.ErrNoCandidate
				}
				i := int(n.Add(1)) % len(req.Candidates)
				return strategy.Choice{Manager: req.Candidates[i].Manager}, nil
			})
		},
		"Deterministic",
	},
	"order disagrees with Pick": {
		func() strategy.Strategy { return orderedBy{pick: strategy.NewLeastLoaded(), order: compareIDs} },
		"Order",
	},
	"order not total": {
		func() strategy.Strategy {
			return orderedBy{pick: strategy.Func(first), order: func(a, b strategy.Candidate) int { return 0 }}
		},
		"Order",
	},
	"seeded without saying so": {
		func() strategy.Strategy { return newSeededRandom() },
		"Deterministic",
	},
	"reason depends on history": {
		func() strategy.Strategy {
			var n atomic.Int64
			return strategy.Func(func(_ context.Context, req strategy.Request) (strategy.Choice, error) {
				c, err := first(context.Background(), req)
				if n.Add(1)%2 == 0 {
					c.Reason = "second time"
				}
				return c, err
			})
		},
		"Deterministic",
	},
}

const brokenEnv = "STRATEGYTEST_BROKEN"

// TestBrokenHelper runs the suite on the broken strategy named by
// $STRATEGYTEST_BROKEN; TestRunCatchesBrokenStrategies starts it in a child
// process, because a failing suite fails its test. Without the variable it
// does nothing.
func TestBrokenHelper(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		return
	}
	b, ok := broken[name]
	if !ok {
		t.Fatalf("unknown broken strategy %q", name)
	}
	strategytest.Run(t, func(*testing.T) strategy.Strategy { return b.new() })
}

func TestRunCatchesBrokenStrategies(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		return
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenHelper$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed a strategy that %s (err %v):\n%s", name, err, out)
			}
			if want := "--- FAIL: TestBrokenHelper/" + b.subtest + " "; !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		})
	}
}

func TestRunPassesConformingStrategies(t *testing.T) {
	t.Run("first candidate", func(t *testing.T) {
		strategytest.Run(t, func(*testing.T) strategy.Strategy { return strategy.Func(first) })
	})
	t.Run("built-in", func(t *testing.T) {
		strategytest.Run(t, func(*testing.T) strategy.Strategy { return strategy.NewLeastLoaded() })
	})
	t.Run("seeded", func(t *testing.T) {
		strategytest.Run(t, func(*testing.T) strategy.Strategy { return newSeededRandom() }, strategytest.WithSeeded())
	})
	t.Run("may refuse some requests", func(t *testing.T) {
		strategytest.Run(t, func(*testing.T) strategy.Strategy {
			return strategy.Func(func(ctx context.Context, req strategy.Request) (strategy.Choice, error) {
				if len(req.Candidates) > 0 && req.Candidates[0].Manager == bd.ManagerID(1) {
					return strategy.Choice{}, strategy.ErrNoCandidate
				}
				return first(ctx, req)
			})
		})
	})
}

// The suite calls newStrategy with the subtest's t, once per subtest.
func TestRunCallsNewStrategyPerSubtest(t *testing.T) {
	var names []string
	strategytest.Run(t, func(t *testing.T) strategy.Strategy {
		names = append(names, t.Name())
		return strategy.Func(first)
	})
	want := []string{
		t.Name() + "/ChoosesACandidate",
		t.Name() + "/NoCandidates",
		t.Name() + "/RequestNotModified",
		t.Name() + "/Deterministic",
		t.Name() + "/Concurrent",
		t.Name() + "/Order",
	}
	if !slices.Equal(names, want) {
		t.Errorf("newStrategy called for %v, want %v", names, want)
	}
}
