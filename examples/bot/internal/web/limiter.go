package web

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// loginLimiter throttles login attempts per client address, with a global
// ceiling on attempts from addresses that have failed before.
//
// Each address may try a few times in a row, then about once every few
// seconds; only its own failures use its budget up, so nobody can lock
// another address out. The global ceiling bounds how fast guesses from
// many addresses are checked, but it only applies to addresses with a
// failure on record: an address that has not failed is never refused by
// it, so a correct password typed from a clean address always gets
// through. It is safe for concurrent use.
type loginLimiter struct {
	now    func() time.Time
	global *rate.Limiter

	mu      sync.Mutex
	clients map[string]*clientBudget
}

type clientBudget struct {
	lim    *rate.Limiter
	failed bool
	seen   time.Time
}

// The budgets: per address 5 attempts at once, then one per 6 s; all
// addresses with failures together 5 per second, 50 at once.
const (
	clientBurst  = 5
	clientEvery  = 6 * time.Second
	globalRate   = 5
	globalBurst  = 50
	maxClients   = 10000
	forgetClient = time.Hour
)

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, global: rate.NewLimiter(globalRate, globalBurst), clients: make(map[string]*clientBudget)}
}

// allow reports whether the client may try to log in now; it takes one
// attempt of the client's budget (and of the global one, if the client
// failed before).
func (l *loginLimiter) allow(client string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[client]
	if c == nil {
		if len(l.clients) >= maxClients {
			for k, v := range l.clients {
				if now.Sub(v.seen) > forgetClient || !v.failed {
					delete(l.clients, k)
				}
			}
		}
		c = &clientBudget{lim: rate.NewLimiter(rate.Every(clientEvery), clientBurst)}
		l.clients[client] = c
	}
	c.seen = now
	if !c.lim.AllowN(now, 1) {
		return false
	}
	if c.failed && !l.global.AllowN(now, 1) {
		return false
	}
	return true
}

// failed records a failed attempt of the client.
func (l *loginLimiter) failed(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.clients[client]; c != nil {
		c.failed = true
	}
}

// clientAddr is the request's client address without the port. Behind a
// reverse proxy every client has the proxy's address; the proxy should
// then throttle logins itself.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
