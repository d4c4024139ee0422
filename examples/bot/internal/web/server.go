package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/store"
)

// Backend is what the pages show and change. *bot.Supervisor implements
// it. Its methods must be safe for concurrent use.
type Backend interface {
	Connect(ctx context.Context, domain string, key bd.Secret) (bd.AccountID, error)
	Accounts(ctx context.Context) []bot.AccountInfo
	Account(ctx context.Context, id bd.AccountID) (bot.AccountInfo, error)
	Settings(ctx context.Context, id bd.AccountID) (bd.Settings, error)
	ValidateSettings(s bd.Settings) error
	SaveSettings(ctx context.Context, id bd.AccountID, s bd.Settings) error
	Choices(ctx context.Context, id bd.AccountID) (bot.Choices, error)
	Recent(ctx context.Context, id bd.AccountID) ([]distributor.Trace, error)
	DeadLetters(ctx context.Context, id bd.AccountID) ([]store.DeadJob, error)
	Dashboard(ctx context.Context, id bd.AccountID) (bot.Dashboard, error)
}

var _ Backend = (*bot.Supervisor)(nil)

// Config configures a [Server]. Backend and AdminPassword are required.
type Config struct {
	Backend Backend
	// AdminUser and AdminPassword are the one login of the page; the user
	// defaults to "admin".
	AdminUser     string
	AdminPassword string
	// Health reports whether the store is reachable, for /healthz; nil
	// means always healthy.
	Health func(ctx context.Context) error
	// Metrics serves /metrics to a logged-in session or to HTTP basic
	// authentication with the admin's user and password (for a Prometheus
	// scrape); nil leaves it out. It lists every account, so it is never
	// served to anonymous callers; serve it on an address of its own to
	// scrape it without a password.
	Metrics http.Handler
	// SecureCookies marks the session cookie Secure; set it when the page
	// is served over HTTPS (directly or behind a proxy).
	SecureCookies bool
	// SessionTTL is how long a logged-in session lives without use;
	// 0 means 12h.
	SessionTTL time.Duration
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock of sessions; nil means time.Now.
	Now func() time.Time
}

// Server serves the settings pages, /healthz and /metrics.
//
// Every page but /login, /healthz, /metrics and the style sheet needs a
// logged-in session; every POST must carry the session's CSRF token.
// Pages never show an API key or a bot token. A Server is safe for
// concurrent use.
type Server struct {
	cfg      Config
	sessions *sessions
	pages    *pages
	log      *slog.Logger
	logins   *loginLimiter
	userHash [32]byte
	passHash [32]byte
	mux      *http.ServeMux
}

// New checks the configuration and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("web: no backend")
	}
	if cfg.AdminPassword == "" {
		return nil, errors.New("web: an admin password is required")
	}
	if cfg.AdminUser == "" {
		cfg.AdminUser = "admin"
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		sessions: newSessions(cfg.SessionTTL, cfg.Now),
		pages:    p,
		log:      cfg.Logger,
		logins:   newLoginLimiter(cfg.Now),
		userHash: sha256.Sum256([]byte(cfg.AdminUser)),
		passHash: sha256.Sum256([]byte(cfg.AdminPassword)),
		mux:      http.NewServeMux(),
	}
	s.routes()
	return s, nil
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return securityHeaders(s.mux) }

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	if s.cfg.Metrics != nil {
		m.HandleFunc("GET /metrics", s.metrics)
	}
	m.HandleFunc("GET /static/style.css", serveStyle)
	m.HandleFunc("GET /static/app.js", serveScript)
	m.HandleFunc("GET /lang", s.setLang)
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.authed(s.logout))
	m.HandleFunc("GET /{$}", s.authed(s.home))
	m.HandleFunc("POST /connect", s.authed(s.connect))
	m.HandleFunc("GET /accounts/{id}", s.authed(s.account))
	m.HandleFunc("POST /accounts/{id}/settings", s.authed(s.saveSettings))
	m.HandleFunc("GET /accounts/{id}/decisions", s.authed(s.decisions))
	m.HandleFunc("GET /accounts/{id}/dashboard", s.authed(s.dashboard))
	m.HandleFunc("GET /accounts/{id}/dashboard/live", s.authed(s.dashboardLive))
}

// metrics serves /metrics to a logged-in session or to basic
// authentication with the admin's credentials; anyone else gets 401.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.sessions.get(r)
	authed := ok && ss.user != ""
	if !authed {
		if user, pass, has := r.BasicAuth(); has {
			client := clientAddr(r)
			if !s.logins.allow(client) {
				http.Error(w, "Too many attempts.", http.StatusTooManyRequests)
				return
			}
			if authed = s.validLogin(user, pass); !authed {
				s.logins.failed(client)
			}
		}
	}
	if !authed {
		w.Header().Set("WWW-Authenticate", `Basic realm="botdistributor metrics", charset="UTF-8"`)
		http.Error(w, "Unauthorized: log in, or scrape with the admin's user and password.", http.StatusUnauthorized)
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}

// securityHeaders forbids framing, sniffing, foreign scripts and caching
// of pages; the one script is the page's own (/static/app.js).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// maxFormBytes bounds a submitted form.
const maxFormBytes = 1 << 20

// authed wraps a handler that needs a logged-in session. A GET without one
// is sent to the login page; a POST without one, or without the session's
// CSRF token, or from another origin, is refused with 403.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, ok := s.sessions.get(r)
		if r.Method == http.MethodPost {
			if !s.checkPost(w, r, ss, ok) {
				return
			}
		}
		if !ok || ss.user == "" {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "Forbidden: log in first.", http.StatusForbidden)
			return
		}
		h(w, r, ss)
	}
}

// checkPost parses a POST form and checks its origin and CSRF token,
// answering 403 when they fail.
func (s *Server) checkPost(w http.ResponseWriter, r *http.Request, ss session, ok bool) bool {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			http.Error(w, "Forbidden: the form was sent from another site.", http.StatusForbidden)
			return false
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "Bad request: the form cannot be read.", http.StatusBadRequest)
		return false
	}
	if !ok || !ss.validCSRF(r.PostForm.Get("csrf")) {
		http.Error(w, "Forbidden: the form's security token is missing or does not match your session. Reload the page and try again.", http.StatusForbidden)
		return false
	}
	return true
}

func (s *Server) setCookie(w http.ResponseWriter, ss session, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: ss.id, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// validLogin compares the credentials in constant time.
func (s *Server) validLogin(user, pass string) bool {
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	okUser := subtle.ConstantTimeCompare(u[:], s.userHash[:])
	okPass := subtle.ConstantTimeCompare(p[:], s.passHash[:])
	return okUser&okPass == 1
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := s.cfg.Health(ctx); err != nil {
			s.log.Error("health check failed", slog.Any("error", err))
			http.Error(w, "store unreachable", http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// render executes a page into a buffer first, so a failing template never
// sends half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	s.renderPart(w, status, name, "", data)
}

// renderPart renders one part of a page (see pages.execute).
func (s *Server) renderPart(w http.ResponseWriter, status int, name, part string, data any) {
	var buf bytes.Buffer
	if err := s.pages.execute(&buf, name, part, data); err != nil {
		s.log.Error("rendering a page failed", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "Internal error: the page cannot be shown.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
