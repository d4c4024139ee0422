package crm

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"sync"

	"golang.org/x/time/rate"
)

// DefaultRate is retailCRM's documented limit for regular API v5 methods:
// 10 requests per second per API key.
const DefaultRate = 10.0

// Limiters holds one token bucket per (domain, API key), so that every
// [Client] of one key in the process draws from the same budget. Buckets are
// keyed by a hash of domain and key; the key itself is not kept.
//
// A Limiters is safe for concurrent use. Buckets are created on first use
// and kept for the life of the registry (one small struct per key).
type Limiters struct {
	limit rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// NewLimiters returns a registry whose buckets allow perSecond requests per
// second, with bursts of up to burst requests. A perSecond of 0 or less (or
// NaN) means [DefaultRate], and math.Inf(1) means no limit; a burst below 1
// means 1. Tests use no limit to run fast; production code normally uses
// [SharedLimiters].
func NewLimiters(perSecond float64, burst int) *Limiters {
	limit := rate.Limit(perSecond)
	switch {
	case !(perSecond > 0):
		limit = rate.Limit(DefaultRate)
	case math.IsInf(perSecond, 1):
		limit = rate.Inf
	}
	if burst < 1 {
		burst = 1
	}
	return &Limiters{limit: limit, burst: burst, m: make(map[string]*rate.Limiter)}
}

var shared = NewLimiters(DefaultRate, 1)

// SharedLimiters returns the process-wide registry used when
// no [WithLimiters] option says otherwise: [DefaultRate] with a burst of 1, so requests of
// one key leave at most every 100 ms and a server counting requests per
// second never sees more than 10.
func SharedLimiters() *Limiters { return shared }

// Limit returns the registry's rate in requests per second, math.Inf(1)
// for no limit.
func (l *Limiters) Limit() float64 {
	if l.limit == rate.Inf {
		return math.Inf(1)
	}
	return float64(l.limit)
}

// get returns the bucket of (domain, key), creating it on first use.
func (l *Limiters) get(domain, key string) *rate.Limiter {
	id := keyHash(domain, key)
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[id]
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[id] = lim
	}
	return lim
}

// KeyID returns a short, stable identifier of an API key on a domain, safe
// to log: the first 12 hex digits of a SHA-256 over domain and key. It
// identifies a key across log lines without revealing it.
func KeyID(domain, key string) string { return keyHash(domain, key)[:12] }

func keyHash(domain, key string) string {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}
