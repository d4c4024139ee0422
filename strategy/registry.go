package strategy

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// The names under which [NewRegistry] registers the built-in strategies.
// They are the values an account's settings use to choose a strategy.
const (
	// NameRoundRobin is [RoundRobin].
	NameRoundRobin = "round_robin"
	// NameLeastLoaded is [LeastLoaded].
	NameLeastLoaded = "least_loaded"
	// NameStickyRoundRobin is [Sticky] in front of [RoundRobin].
	NameStickyRoundRobin = "sticky_round_robin"
	// NameStickyLeastLoaded is [Sticky] in front of [LeastLoaded].
	NameStickyLeastLoaded = "sticky_least_loaded"
	// NameStrictOrder is [StrictOrder].
	NameStrictOrder = "strict_order"
)

// Registry maps names to strategies, so that settings can choose a strategy
// by name. There is no global registry: a program builds its own with
// [NewRegistry], adds its custom strategies with [Registry.Register] and
// hands the registry to whatever resolves settings.
//
// A Registry is safe for concurrent use. The zero value is an empty
// registry, ready to use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Strategy
}

// NewRegistry returns a registry holding the built-in strategies under
// [NameRoundRobin], [NameLeastLoaded], [NameStickyRoundRobin] and
// [NameStickyLeastLoaded], and [NameStrictOrder].
func NewRegistry() *Registry {
	rr, ll := NewRoundRobin(), NewLeastLoaded()
	return &Registry{m: map[string]Strategy{
		NameRoundRobin:        rr,
		NameLeastLoaded:       ll,
		NameStickyRoundRobin:  &Sticky{next: rr},
		NameStickyLeastLoaded: &Sticky{next: ll},
		NameStrictOrder:       NewStrictOrder(),
	}}
}

// Register adds s under name. It refuses an empty name, a nil strategy and a
// name that is already taken; a taken name keeps its strategy.
func (r *Registry) Register(name string, s Strategy) error {
	if name == "" {
		return errors.New("strategy: register: empty name")
	}
	if isNil(s) {
		return fmt.Errorf("strategy: register %q: strategy is nil", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[name]; ok {
		return fmt.Errorf("strategy: register %q: the name is already registered", name)
	}
	if r.m == nil {
		r.m = make(map[string]Strategy)
	}
	r.m[name] = s
	return nil
}

// Lookup returns the strategy registered under name, and whether there is
// one.
func (r *Registry) Lookup(name string) (Strategy, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.m[name]
	return s, ok
}

// Names returns the registered names in sorted order, e.g. for a settings
// page's choice list.
func (r *Registry) Names() []string {
	r.mu.RLock()
	names := make([]string, 0, len(r.m))
	for name := range r.m {
		names = append(names, name)
	}
	r.mu.RUnlock()
	slices.Sort(names)
	return names
}
