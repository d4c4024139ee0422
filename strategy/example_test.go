package strategy_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/strategy"
)

// A custom strategy is any function with Pick's signature. This one gives
// the dialog to the most senior candidate, by hire date, and keeps to the
// contract: it only answers with a candidate, ErrNoCandidate when there is
// none, and the same answer for the same request.
func ExampleStrategy_custom() {
	hired := map[bd.ManagerID]time.Time{
		11: time.Date(2021, 5, 1, 0, 0, 0, 0, time.UTC),
		12: time.Date(2019, 2, 1, 0, 0, 0, 0, time.UTC),
		13: time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC),
	}
	mostSenior := strategy.Func(func(_ context.Context, req strategy.Request) (strategy.Choice, error) {
		var best *strategy.Candidate
		for i := range req.Candidates {
			c := &req.Candidates[i]
			h, ok := hired[c.Manager]
			if !ok {
				continue // not on the staff list
			}
			if best == nil || h.Before(hired[best.Manager]) ||
				(h.Equal(hired[best.Manager]) && c.Manager < best.Manager) {
				best = c
			}
		}
		if best == nil {
			return strategy.Choice{}, fmt.Errorf("%w: nobody on the staff list", strategy.ErrNoCandidate)
		}
		since := hired[best.Manager].Format("2006")
		return strategy.Choice{Manager: best.Manager, Reason: "most senior (since " + since + ")"}, nil
	})

	var s strategy.Strategy = mostSenior
	req := strategy.Request{Candidates: []strategy.Candidate{
		{Manager: 11, Open: 0, Capacity: 5},
		{Manager: 12, Open: 4, Capacity: 5},
		{Manager: 13, Open: 1, Capacity: 5},
	}}
	c, err := s.Pick(context.Background(), req)
	fmt.Println(c.Manager, c.Reason, err)

	// The senior manager is not eligible now.
	req.Candidates = req.Candidates[:1]
	c, err = s.Pick(context.Background(), req)
	fmt.Println(c.Manager, c.Reason, err)

	_, err = s.Pick(context.Background(), strategy.Request{Candidates: []strategy.Candidate{{Manager: 99}}})
	fmt.Println(errors.Is(err, strategy.ErrNoCandidate), err)
	// Output:
	// 12 most senior (since 2019) <nil>
	// 11 most senior (since 2021) <nil>
	// true strategy: no candidate: nobody on the staff list
}

func ExampleNewLeastLoaded() {
	s := strategy.NewLeastLoaded()
	last := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	req := strategy.Request{Candidates: []strategy.Candidate{
		{Manager: 1, Open: 2, Capacity: 5, LastAssignedAt: last},
		{Manager: 2, Open: 1, Capacity: 5, LastAssignedAt: last},
		{Manager: 3, Open: 1, Capacity: 5, LastAssignedAt: last.Add(-time.Hour)},
	}}
	c, err := s.Pick(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Managers 2 and 3 hold one dialog each; 3 has waited longer.
	fmt.Printf("manager %d: %s\n", c.Manager, c.Reason)
	// Output:
	// manager 3: fewest open dialogs (1)
}

func ExampleNewRoundRobin() {
	s := strategy.NewRoundRobin()
	last := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	req := strategy.Request{Candidates: []strategy.Candidate{
		{Manager: 1, Open: 0, Capacity: 5, LastAssignedAt: last.Add(-time.Minute)},
		{Manager: 2, Open: 3, Capacity: 5, LastAssignedAt: last.Add(-time.Hour)},
		{Manager: 3, Open: 0, Capacity: 5, LastAssignedAt: last},
	}}
	c, _ := s.Pick(context.Background(), req)
	fmt.Printf("manager %d: %s\n", c.Manager, c.Reason)

	// A manager who never had a dialog goes first.
	req.Candidates = append(req.Candidates, strategy.Candidate{Manager: 4, Capacity: 5})
	c, _ = s.Pick(context.Background(), req)
	fmt.Printf("manager %d: %s\n", c.Manager, c.Reason)
	// Output:
	// manager 2: longest since last assignment
	// manager 4: longest since last assignment (never)
}

func ExampleNewCapped() {
	// Least loaded, but nobody takes a third dialog.
	s, err := strategy.NewCapped(strategy.NewLeastLoaded(), 2)
	if err != nil {
		fmt.Println(err)
		return
	}
	req := strategy.Request{Candidates: []strategy.Candidate{
		{Manager: 1, Open: 2, Capacity: 5},
		{Manager: 2, Open: 1, Capacity: 5},
	}}
	c, err := s.Pick(context.Background(), req)
	fmt.Println(c.Manager, err)

	req.Candidates[1].Open = 2
	_, err = s.Pick(context.Background(), req)
	fmt.Println(errors.Is(err, strategy.ErrNoCandidate))
	fmt.Println(err)

	_, err = strategy.NewCapped(strategy.NewLeastLoaded(), 0)
	fmt.Println(err)
	// Output:
	// 2 <nil>
	// true
	// strategy: no candidate: all 2 candidates hold 2 or more open dialogs
	// strategy: capped: limit must be at least 1, got 0
}

func ExampleNewSticky() {
	s, err := strategy.NewSticky(strategy.NewLeastLoaded())
	if err != nil {
		fmt.Println(err)
		return
	}
	req := strategy.Request{
		Candidates: []strategy.Candidate{
			{Manager: 1, Open: 0, Capacity: 5},
			{Manager: 2, Open: 3, Capacity: 5},
		},
		LastManager: 2,
	}
	c, _ := s.Pick(context.Background(), req)
	fmt.Printf("manager %d: %s\n", c.Manager, c.Reason)

	req.LastManager = 7 // not eligible now
	c, _ = s.Pick(context.Background(), req)
	fmt.Printf("manager %d: %s\n", c.Manager, c.Reason)
	// Output:
	// manager 2: returning customer's last manager
	// manager 1: fewest open dialogs (0)
}

func ExampleRegistry() {
	r := strategy.NewRegistry()
	// Even ids first, then the lower id.
	better := func(a, b bd.ManagerID) bool {
		if aEven, bEven := a%2 == 0, b%2 == 0; aEven != bEven {
			return aEven
		}
		return a < b
	}
	evenFirst := strategy.Func(func(_ context.Context, req strategy.Request) (strategy.Choice, error) {
		if len(req.Candidates) == 0 {
			return strategy.Choice{}, strategy.ErrNoCandidate
		}
		best := req.Candidates[0].Manager
		for _, c := range req.Candidates[1:] {
			if better(c.Manager, best) {
				best = c.Manager
			}
		}
		return strategy.Choice{Manager: best, Reason: "even ids first"}, nil
	})
	if err := r.Register("even_first", evenFirst); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Register(strategy.NameRoundRobin, evenFirst))
	fmt.Println(r.Names())

	// The name would come from an account's settings.
	s, ok := r.Lookup("even_first")
	if !ok {
		fmt.Println("unknown strategy")
		return
	}
	c, _ := s.Pick(context.Background(), strategy.Request{Candidates: []strategy.Candidate{
		{Manager: 3}, {Manager: 6}, {Manager: 4},
	}})
	fmt.Println(c.Manager, c.Reason)
	// Output:
	// strategy: register "round_robin": the name is already registered
	// [even_first least_loaded round_robin sticky_least_loaded sticky_round_robin strict_order]
	// 4 even ids first
}
