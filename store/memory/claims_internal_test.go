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
	c.byHash[maphash.String(c.seed, "a")] = eventClaim{off: len(c.keys), n: 1, at: t0.UnixNano()}
	c.keys = append(c.keys, 'b')
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
	claim("later", t0.Add(time.Hour), true)
	if n := c.prune(t0.Add(time.Second).UnixNano()); n != 2 {
		t.Fatalf("prune = %d, want 2 (the slot's claim and c)", n)
	}
	// The keys kept moved to a buffer of their own and still match.
	if got := string(c.keys); got != "later" {
		t.Fatalf("keys after the prune = %q, want %q", got, "later")
	}
	claim("later", t0, false)
	claim("c", t0, true)
	// The slot is free again, and "a", claimed apart, stays claimed.
	claim("a", t0.Add(2*time.Minute), false)
	if n := c.prune(t0.Add(time.Hour).UnixNano()); n != 2 {
		t.Fatalf("prune = %d, want 2 (a, claimed apart, and c again)", n)
	}
	claim("a", t0, true)
	claim("a", t0, false)
}
