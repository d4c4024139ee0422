package strategy_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/botdistributor/botdistributor/strategy"
	"github.com/botdistributor/botdistributor/strategy/strategytest"
)

func TestNewRegistryBuiltins(t *testing.T) {
	r := strategy.NewRegistry()
	want := []string{"least_loaded", "round_robin", "sticky_least_loaded", "sticky_round_robin", "strict_order"}
	if got := r.Names(); !slices.Equal(got, want) {
		t.Fatalf("Names = %v, want %v", got, want)
	}
	if got := []string{strategy.NameLeastLoaded, strategy.NameRoundRobin, strategy.NameStickyLeastLoaded, strategy.NameStickyRoundRobin, strategy.NameStrictOrder}; !slices.Equal(got, want) {
		t.Fatalf("name constants = %v, want %v", got, want)
	}

	// Who each built-in picks from one request tells them apart: 1 was
	// never assigned, 2 holds the fewest dialogs, 3 is the last manager
	// and first in the admin's order.
	req := request(cand(1, 4, never), cand(2, 1, at(5)), cand(3, 3, at(1)))
	req.Candidates[0].Rank, req.Candidates[1].Rank, req.Candidates[2].Rank = 1, 2, 0
	req.LastManager = 3
	wantPick := map[string]string{
		strategy.NameRoundRobin:        "1 longest since last assignment (never)",
		strategy.NameLeastLoaded:       "2 fewest open dialogs (1)",
		strategy.NameStickyRoundRobin:  "3 returning customer's last manager",
		strategy.NameStickyLeastLoaded: "3 returning customer's last manager",
		strategy.NameStrictOrder:       "3 first in the set order (place 1)",
	}
	for name, want := range wantPick {
		s, ok := r.Lookup(name)
		if !ok {
			t.Errorf("Lookup(%q) found nothing", name)
			continue
		}
		c, err := s.Pick(t.Context(), req)
		if got := fmt.Sprint(c.Manager, " ", c.Reason); err != nil || got != want {
			t.Errorf("%s picked %q, %v; want %q", name, got, err, want)
		}
	}

	// Without a last manager the sticky ones choose as their base does.
	req.LastManager = 0
	for sticky, base := range map[string]string{
		strategy.NameStickyRoundRobin:  "1 longest since last assignment (never)",
		strategy.NameStickyLeastLoaded: "2 fewest open dialogs (1)",
	} {
		s, _ := r.Lookup(sticky)
		c, err := s.Pick(t.Context(), req)
		if got := fmt.Sprint(c.Manager, " ", c.Reason); err != nil || got != base {
			t.Errorf("%s without a last manager picked %q, %v; want %q", sticky, got, err, base)
		}
	}
}

func TestRegistryBuiltinsConform(t *testing.T) {
	r := strategy.NewRegistry()
	for _, name := range r.Names() {
		t.Run(name, func(t *testing.T) {
			strategytest.Run(t, func(t *testing.T) strategy.Strategy {
				s, _ := r.Lookup(name)
				return s
			})
		})
	}
}

func TestRegistryRegister(t *testing.T) {
	r := strategy.NewRegistry()
	first := strategy.Func(func(context.Context, strategy.Request) (strategy.Choice, error) {
		return strategy.Choice{Manager: 1, Reason: "first"}, nil
	})
	if err := r.Register("first_one", first); err != nil {
		t.Fatalf("Register: %v", err)
	}
	s, ok := r.Lookup("first_one")
	if !ok {
		t.Fatal("Lookup of a registered name found nothing")
	}
	if c, _ := s.Pick(t.Context(), request(cand(1, 0, never))); c.Reason != "first" {
		t.Errorf("Lookup returned a different strategy: it picked %+v", c)
	}
	want := []string{"first_one", "least_loaded", "round_robin", "sticky_least_loaded", "sticky_round_robin", "strict_order"}
	if got := r.Names(); !slices.Equal(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	if _, ok := r.Lookup("nobody"); ok {
		t.Error("Lookup of an unknown name found something")
	}
}

func TestRegistryRegisterRejects(t *testing.T) {
	r := strategy.NewRegistry()
	cases := []struct {
		name, reg string
		s         strategy.Strategy
		want      string
	}{
		{"empty name", "", strategy.NewRoundRobin(), "strategy: register: empty name"},
		{"nil strategy", "x", nil, `strategy: register "x": strategy is nil`},
		{"nil func", "x", strategy.Func(nil), `strategy: register "x": strategy is nil`},
		{"nil pointer", "x", (*strategy.Sticky)(nil), `strategy: register "x": strategy is nil`},
		{"duplicate of a built-in", strategy.NameRoundRobin, strategy.NewLeastLoaded(), `strategy: register "round_robin": the name is already registered`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Register(tc.reg, tc.s)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Register = %v, want %q", err, tc.want)
			}
		})
	}
	// The refused duplicate left the built-in in place.
	s, _ := r.Lookup(strategy.NameRoundRobin)
	if _, ok := s.(*strategy.RoundRobin); !ok {
		t.Errorf("round_robin is now %T", s)
	}
	if _, ok := r.Lookup("x"); ok {
		t.Error("a refused strategy was registered")
	}
}

func TestRegistryZeroValue(t *testing.T) {
	var r strategy.Registry
	if names := r.Names(); len(names) != 0 {
		t.Errorf("Names of an empty registry = %v", names)
	}
	if _, ok := r.Lookup(strategy.NameRoundRobin); ok {
		t.Error("an empty registry found round_robin")
	}
	if err := r.Register("mine", strategy.NewRoundRobin()); err != nil {
		t.Fatal(err)
	}
	if err := r.Register("mine", strategy.NewRoundRobin()); err == nil {
		t.Error("a duplicate name was accepted")
	}
	if got := r.Names(); !slices.Equal(got, []string{"mine"}) {
		t.Errorf("Names = %v", got)
	}
}

func TestRegistryHammer(t *testing.T) {
	r := strategy.NewRegistry()
	const goroutines, per = 8, 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for i := range per {
				// Every goroutine tries the same names: each is won once.
				name := fmt.Sprintf("custom_%d", i)
				_ = r.Register(name, strategy.NewRoundRobin())
				if _, ok := r.Lookup(name); !ok {
					t.Errorf("goroutine %d: %s missing right after Register", g, name)
				}
				if s, ok := r.Lookup(strategy.NameLeastLoaded); !ok || s == nil {
					t.Errorf("goroutine %d: built-in missing", g)
				}
				_ = r.Names()
			}
		})
	}
	close(start)
	wg.Wait()
	if n := len(r.Names()); n != 5+per {
		t.Errorf("%d names registered, want %d", n, 5+per)
	}
}
