package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// sessionCookie is the name of the session cookie.
const sessionCookie = "bd_session"

// maxSessions bounds the sessions kept in memory; beyond it anonymous
// sessions (opened by visiting the login page) are evicted first.
const maxSessions = 10000

// anonymousTTL is how long a session that never logged in lives.
const anonymousTTL = time.Hour

// session is one browser's session. Every session, logged in or not,
// carries a CSRF token that every POST must echo.
type session struct {
	id      string
	csrf    string
	user    string // "" until logged in
	expires time.Time
}

// sessions keeps sessions in memory; a restart logs everyone out. It is
// safe for concurrent use.
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, m: make(map[string]*session)}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than returning an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create makes a session for user ("" for anonymous) and returns a copy.
func (s *sessions) create(user string) session {
	now := s.now()
	ttl := s.ttl
	if user == "" {
		ttl = anonymousTTL
	}
	ss := &session{id: randomToken(), csrf: randomToken(), user: user, expires: now.Add(ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		s.evictLocked(now)
	}
	s.m[ss.id] = ss
	return *ss
}

// evictLocked drops expired sessions, then anonymous ones, until there is room.
func (s *sessions) evictLocked(now time.Time) {
	for id, ss := range s.m {
		if now.After(ss.expires) {
			delete(s.m, id)
		}
	}
	for id, ss := range s.m {
		if len(s.m) < maxSessions {
			return
		}
		if ss.user == "" {
			delete(s.m, id)
		}
	}
}

// get returns the session of the request's cookie, if it is known and not
// expired; a logged-in session's expiry slides forward.
func (s *sessions) get(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[c.Value]
	if !ok {
		return session{}, false
	}
	if now.After(ss.expires) {
		delete(s.m, ss.id)
		return session{}, false
	}
	if ss.user != "" {
		ss.expires = now.Add(s.ttl)
	}
	return *ss, true
}

// drop forgets a session.
func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// validCSRF reports whether token is the session's CSRF token.
func (ss session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(ss.csrf)) == 1
}
