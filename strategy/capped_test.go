package strategy_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/strategy"
	"github.com/botdistributor/botdistributor/strategy/strategytest"
)

func TestCappedConformance(t *testing.T) {
	for _, n := range []int{1, 3, 100} {
		t.Run(fmt.Sprintf("limit %d", n), func(t *testing.T) {
			strategytest.Run(t, func(t *testing.T) strategy.Strategy {
				s, err := strategy.NewCapped(strategy.NewLeastLoaded(), n)
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

func TestNewCappedRejects(t *testing.T) {
	cases := []struct {
		name string
		next strategy.Strategy
		n    int
		want string
	}{
		{"nil next", nil, 3, "next strategy is nil"},
		{"nil func", strategy.Func(nil), 3, "next strategy is nil"},
		{"nil pointer", (*strategy.RoundRobin)(nil), 3, "next strategy is nil"},
		{"zero limit", strategy.NewRoundRobin(), 0, "limit must be at least 1, got 0"},
		{"negative limit", strategy.NewRoundRobin(), -2, "limit must be at least 1, got -2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := strategy.NewCapped(tc.next, tc.n)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewCapped = %v, %v; want error containing %q", s, err, tc.want)
			}
			if s != nil {
				t.Errorf("NewCapped returned %v with its error", s)
			}
		})
	}
}

func TestCappedFilters(t *testing.T) {
	cases := []struct {
		name  string
		limit int
		opens []int // candidate i+1 holds opens[i] dialogs
		want  []bd.ManagerID
	}{
		{"limit 1 keeps only idle managers", 1, []int{0, 1, 0, 2}, []bd.ManagerID{1, 3}},
		{"one below the limit stays", 3, []int{2, 3, 4}, []bd.ManagerID{1}},
		{"none at the limit passes everyone", 5, []int{0, 4, 1}, []bd.ManagerID{1, 2, 3}},
		{"first and last removed", 2, []int{2, 0, 1, 7}, []bd.ManagerID{2, 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := &recorder{}
			s, err := strategy.NewCapped(next, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			cs := make([]strategy.Candidate, len(tc.opens))
			for i, o := range tc.opens {
				cs[i] = cand(bd.ManagerID(i+1), o, at(i))
			}
			req := request(cs...)
			req.LastManager = 42
			before := slices.Clone(cs)

			got, err := s.Pick(t.Context(), req)
			if err != nil {
				t.Fatalf("Pick: %v", err)
			}
			if got.Manager != tc.want[0] || got.Reason != "first" {
				t.Errorf("Pick = %+v, want next's choice of manager %d", got, tc.want[0])
			}
			calls := next.Calls()
			if len(calls) != 1 {
				t.Fatalf("next called %d times, want once", len(calls))
			}
			if g := ids(calls[0].Candidates); !slices.Equal(g, tc.want) {
				t.Errorf("next got candidates %v, want %v", g, tc.want)
			}
			if calls[0].Dialog != req.Dialog || calls[0].LastManager != 42 {
				t.Errorf("next got dialog %+v and last manager %d, want the caller's", calls[0].Dialog, calls[0].LastManager)
			}
			if !slices.Equal(before, cs) {
				t.Errorf("caller's candidates changed: %v, was %v", cs, before)
			}
		})
	}
}

func TestCappedAllAtLimit(t *testing.T) {
	next := &recorder{}
	s, err := strategy.NewCapped(next, 2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Pick(t.Context(), request(cand(1, 2, never), cand(2, 5, never)))
	if !errors.Is(err, strategy.ErrNoCandidate) {
		t.Fatalf("Pick error = %v, want ErrNoCandidate", err)
	}
	if want := "all 2 candidates hold 2 or more open dialogs"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if n := len(next.Calls()); n != 0 {
		t.Errorf("next called %d times with nobody below the limit", n)
	}
}

func TestCappedNextErrors(t *testing.T) {
	boom := errors.New("boom")
	s, err := strategy.NewCapped(&recorder{answer: func(strategy.Request) (strategy.Choice, error) {
		return strategy.Choice{}, boom
	}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pick(t.Context(), request(cand(1, 0, never))); !errors.Is(err, boom) {
		t.Errorf("Pick error = %v, want next's error", err)
	}
}

// A next strategy that ignores the candidates it is given must not get a
// manager over the limit.
func TestCappedRefusesChoiceAboveLimit(t *testing.T) {
	for _, filtered := range []bool{false, true} {
		s, err := strategy.NewCapped(&recorder{answer: func(strategy.Request) (strategy.Choice, error) {
			return strategy.Choice{Manager: 1, Reason: "always 1"}, nil
		}}, 3)
		if err != nil {
			t.Fatal(err)
		}
		open := 0
		if filtered {
			open = 3
		}
		got, err := s.Pick(t.Context(), request(cand(1, open, never), cand(2, 0, never)))
		if filtered {
			if err == nil || !strings.Contains(err.Error(), "chose manager 1, who is not among the 1 candidates below the limit of 3") {
				t.Errorf("Pick = %+v, %v; want an error naming the stray choice", got, err)
			}
		} else if err != nil || got.Manager != 1 {
			t.Errorf("Pick = %+v, %v; want manager 1", got, err)
		}
	}
}

// A sticky customer whose last manager is at the limit goes to someone else.
func TestCappedInFrontOfSticky(t *testing.T) {
	sticky, err := strategy.NewSticky(strategy.NewLeastLoaded())
	if err != nil {
		t.Fatal(err)
	}
	s, err := strategy.NewCapped(sticky, 3)
	if err != nil {
		t.Fatal(err)
	}
	req := request(cand(1, 3, never), cand(2, 2, at(1)), cand(3, 1, at(2)))
	req.LastManager = 1
	got, err := s.Pick(t.Context(), req)
	if err != nil || got.Manager != 3 || got.Reason != "fewest open dialogs (1)" {
		t.Errorf("Pick = %+v, %v; want manager 3 by load", got, err)
	}
	req.LastManager = 2
	got, err = s.Pick(t.Context(), req)
	if err != nil || got.Manager != 2 || got.Reason != "returning customer's last manager" {
		t.Errorf("Pick = %+v, %v; want the last manager 2", got, err)
	}
}

func TestCappedLimit(t *testing.T) {
	s, err := strategy.NewCapped(strategy.NewRoundRobin(), 4)
	if err != nil {
		t.Fatal(err)
	}
	if s.Limit() != 4 {
		t.Errorf("Limit = %d, want 4", s.Limit())
	}
}

func TestCappedHammer(t *testing.T) {
	s, err := strategy.NewCapped(strategy.NewLeastLoaded(), 3)
	if err != nil {
		t.Fatal(err)
	}
	hammer(t, s, hammerRequest())
}
