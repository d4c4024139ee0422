package memory

import (
	"hash/maphash"
	"testing"
	"time"
)

// TestEventClaimsSharedHash covers keys whose 64-bit hash another key
// claimed first: each is still claimed once, and pruned by its own time.
func TestEventClaimsSharedHash(t *testing.T) {
	c := newEventClaims()
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	// "b" takes the slot of "a"'s hash, as a colliding key would.
	c.byHash[maphash.String(c.seed, "a")] = eventClaim{key: "b", at: t0}
	claim := func(key string, at time.Time, want bool) {
		t.Helper()
		if got := c.claim(key, at); got != want {
			t.Fatalf("claim(%q) = %t, want %t", key, got, want)
		}
	}
	claim("a", t0.Add(time.Minute), true) // kept apart
	claim("a", t0.Add(time.Minute), false)
	claim("c", t0, true)
	claim("c", t0, false)
	if n := c.prune(t0.Add(time.Second)); n != 2 {
		t.Fatalf("prune = %d, want 2 (the slot's claim and c)", n)
	}
	// The slot is free again, and "a", claimed apart, stays claimed.
	claim("a", t0.Add(2*time.Minute), false)
	if n := c.prune(t0.Add(time.Hour)); n != 1 {
		t.Fatalf("prune = %d, want 1", n)
	}
	claim("a", t0, true)
	claim("a", t0, false)
}
