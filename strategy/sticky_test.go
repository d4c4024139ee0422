package strategy_test

import (
	"errors"
	"strings"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/strategy"
	"github.com/botdistributor/botdistributor/strategy/strategytest"
)

func TestStickyConformance(t *testing.T) {
	nexts := []struct {
		name string
		new  func() strategy.Strategy
	}{
		{"round robin", func() strategy.Strategy { return strategy.NewRoundRobin() }},
		{"least loaded", func() strategy.Strategy { return strategy.NewLeastLoaded() }},
	}
	for _, next := range nexts {
		t.Run(next.name, func(t *testing.T) {
			strategytest.Run(t, func(t *testing.T) strategy.Strategy {
				s, err := strategy.NewSticky(next.new())
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

func TestNewStickyRejectsNil(t *testing.T) {
	for _, next := range []strategy.Strategy{nil, strategy.Func(nil), (*strategy.LeastLoaded)(nil)} {
		s, err := strategy.NewSticky(next)
		if err == nil || !strings.Contains(err.Error(), "next strategy is nil") || s != nil {
			t.Errorf("NewSticky(%#v) = %v, %v; want an error saying next is nil", next, s, err)
		}
	}
}

func TestStickyPick(t *testing.T) {
	s, err := strategy.NewSticky(strategy.NewLeastLoaded())
	if err != nil {
		t.Fatal(err)
	}
	const keep = "returning customer's last manager"
	withLast := func(last bd.ManagerID, req strategy.Request) strategy.Request {
		req.LastManager = last
		return req
	}
	busy := request(cand(1, 0, never), cand(2, 4, at(1)), cand(3, 9, at(2)))
	runPickCases(t, s, []pickCase{
		{"last manager kept although busier", withLast(3, busy), 3, keep},
		{"last manager kept as the only candidate", withLast(2, request(cand(2, 5, at(1)))), 2, keep},
		{"last manager kept out of order", withLast(1, request(cand(5, 0, never), cand(1, 3, at(1)))), 1, keep},
		{"no last manager falls back", withLast(0, busy), 1, "fewest open dialogs (0)"},
		{"last manager not a candidate falls back", withLast(4, busy), 1, "fewest open dialogs (0)"},
		{"negative last manager falls back", withLast(-1, busy), 1, "fewest open dialogs (0)"},
	})
}

func TestStickyFallbackGetsTheRequest(t *testing.T) {
	next := &recorder{}
	s, err := strategy.NewSticky(next)
	if err != nil {
		t.Fatal(err)
	}
	req := request(cand(1, 0, never), cand(2, 0, never))
	req.LastManager = 9
	if _, err := s.Pick(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	calls := next.Calls()
	if len(calls) != 1 || calls[0].LastManager != 9 || calls[0].Dialog != req.Dialog || len(calls[0].Candidates) != 2 {
		t.Errorf("next got %+v, want the caller's request once", calls)
	}

	req.LastManager = 2
	if _, err := s.Pick(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if n := len(next.Calls()); n != 1 {
		t.Errorf("next called although the last manager was a candidate (%d calls)", n)
	}
}

func TestStickyEmpty(t *testing.T) {
	next := &recorder{}
	s, err := strategy.NewSticky(next)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Pick(t.Context(), strategy.Request{LastManager: 3})
	if !errors.Is(err, strategy.ErrNoCandidate) {
		t.Errorf("Pick error = %v, want ErrNoCandidate", err)
	}
	if n := len(next.Calls()); n != 0 {
		t.Errorf("next called %d times without candidates", n)
	}
}

func TestStickyNextErrors(t *testing.T) {
	boom := errors.New("boom")
	s, err := strategy.NewSticky(&recorder{answer: func(strategy.Request) (strategy.Choice, error) {
		return strategy.Choice{}, boom
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pick(t.Context(), request(cand(1, 0, never))); !errors.Is(err, boom) {
		t.Errorf("Pick error = %v, want next's error", err)
	}
}

func TestStickyHammer(t *testing.T) {
	s, err := strategy.NewSticky(strategy.NewRoundRobin())
	if err != nil {
		t.Fatal(err)
	}
	req := hammerRequest()
	hammer(t, s, req)
	req.LastManager = 0
	hammer(t, s, req)
}
