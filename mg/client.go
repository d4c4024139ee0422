package mg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/internal/option"
)

// APIPrefix is the path the client appends to the MG endpoint.
const APIPrefix = "/api/bot/v1"

// Default request rate of a Client. MG documents no Bot API limit (its
// Transport API client assumes 100 requests/s per token); 20 requests/s
// with a burst of 20 stays well below that and is plenty for distributing
// dialogs. Override it with [WithLimiter].
const (
	DefaultRate  rate.Limit = 20
	DefaultBurst int        = 20
)

// DefaultTimeout is the timeout of the *http.Client a Client makes when
// none is given with [WithHTTPClient].
const DefaultTimeout = 30 * time.Second

const maxResponseBytes = 32 << 20

// Client calls the MG Bot API for one bot token.
//
// A Client is safe for concurrent use. Every method takes a context first;
// cancelling it abandons the request and any backoff. Errors are
// [*APIError] for MG's answers and wrapped transport or decoding errors
// otherwise; none of them carries the bot token.
type Client struct {
	endpoint string // MG host root, as given (without a trailing slash)
	base     string // endpoint + APIPrefix
	token    bd.Secret
	hc       *http.Client
	limiter  *rate.Limiter
	retry    RetryPolicy
	log      *slog.Logger

	selfMu sync.Mutex
	selfID bd.BotID // the bot's own id once known; see selfBotID
}

// Option configures a Client; pass options to [New]. Each option checks
// its own argument, and New returns the error of every option that refused
// one.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	hc      *http.Client
	limiter *rate.Limiter
	retry   RetryPolicy
	log     *slog.Logger
}

// WithHTTPClient makes the Client send its requests (REST and the websocket
// handshake) through hc. When hc has a Timeout, it also bounds each
// websocket dial. The default (and nil) is a client with [DefaultTimeout].
func WithHTTPClient(hc *http.Client) Option {
	return optionFunc(func(c *config) error {
		if hc != nil {
			c.hc = hc
		}
		return nil
	})
}

// WithLimiter makes the Client wait on l before each request. Share one
// limiter between clients of the same token to keep their sum below MG's
// limit. The default (and nil) is a limiter of its own at [DefaultRate]
// with [DefaultBurst]; to disable limiting pass rate.NewLimiter(rate.Inf, 0).
func WithLimiter(l *rate.Limiter) Option {
	return optionFunc(func(c *config) error {
		if l != nil {
			c.limiter = l
		}
		return nil
	})
}

// WithRetry sets the retry policy. Zero fields take their defaults (see
// [RetryPolicy]); MaxAttempts 1 disables the retries of idempotent calls,
// RefusedAttempts 1 those of the other calls. A negative field, or a
// MaxDelay below BaseDelay, is refused.
func WithRetry(p RetryPolicy) Option {
	return optionFunc(func(c *config) error {
		if err := p.validate(); err != nil {
			return fmt.Errorf("WithRetry: %w", err)
		}
		c.retry = p.withDefaults()
		return nil
	})
}

// WithLogger makes the Client log each request at debug level (method,
// path, status, attempt, duration; never the token or bodies). The default
// (and nil) is no logging.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l != nil {
			c.log = l
		}
		return nil
	})
}

// New returns a client for the MG endpoint (the MG host root returned on
// module registration, e.g. "https://mg-s1.retailcrm.pro") and the bot
// token. The client appends /api/bot/v1 itself.
//
// New checks its input and returns an error naming the problem: the
// endpoint must be an absolute http or https URL with a host, without
// credentials, query or fragment, and must not already end with
// /api/bot/v1; the token must be non-empty and free of whitespace and
// control characters (the error never shows the token). An option's bad
// argument is refused with an error naming the option.
func New(endpoint string, token bd.Secret, opts ...Option) (*Client, error) {
	base, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	if err := checkToken(token); err != nil {
		return nil, err
	}
	cfg := config{
		hc:      &http.Client{Timeout: DefaultTimeout},
		limiter: rate.NewLimiter(DefaultRate, DefaultBurst),
		retry:   RetryPolicy{}.withDefaults(),
		log:     slog.New(slog.DiscardHandler),
	}
	if err := option.Apply(opts, func(o Option) error { return o.apply(&cfg) }); err != nil {
		return nil, fmt.Errorf("mg: %w", err)
	}
	c := &Client{
		endpoint: base,
		base:     base + APIPrefix,
		token:    token,
		hc:       cfg.hc,
		limiter:  cfg.limiter,
		retry:    cfg.retry,
		log:      cfg.log,
	}
	return c, nil
}

func parseEndpoint(endpoint string) (string, error) {
	s := strings.TrimSpace(endpoint)
	if s == "" {
		return "", errors.New("mg: empty endpoint")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("mg: endpoint %q is not a URL: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("mg: endpoint %q must use http or https", u.Redacted())
	}
	if u.Host == "" {
		return "", fmt.Errorf("mg: endpoint %q has no host", u.Redacted())
	}
	if u.User != nil {
		return "", fmt.Errorf("mg: endpoint %q must not carry credentials; the bot token is passed separately", u.Redacted())
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("mg: endpoint %q must not have a query or fragment", u.Redacted())
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	if strings.HasSuffix(path, APIPrefix) {
		return "", fmt.Errorf("mg: endpoint %q already ends with %s; pass the MG host root", u.Redacted(), APIPrefix)
	}
	return u.Scheme + "://" + u.Host + path, nil
}

func checkToken(token bd.Secret) error {
	t := token.Reveal()
	if t == "" {
		return errors.New("mg: empty bot token")
	}
	for _, r := range t {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return errors.New("mg: bot token contains whitespace or control characters")
		}
	}
	return nil
}

// Endpoint returns the MG host root the client was made for.
func (c *Client) Endpoint() string { return c.endpoint }

// call is one REST request.
type call struct {
	method string
	path   string // relative to APIPrefix, e.g. "/dialogs/5/assign"
	query  url.Values
	body   any // JSON-encoded when non-nil
	// idempotent calls are retried on 429, 5xx and network errors. Others
	// are retried only on 429 and 503, and their failures that MG may have
	// applied wrap ErrAmbiguous.
	idempotent bool
}

// do performs a call and decodes a 2xx answer into out (unless out is nil).
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("mg: %s %s: encode request: %w", cl.method, cl.path, err)
		}
	}
	target := c.base + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	attempts := c.retry.MaxAttempts
	if !cl.idempotent {
		attempts = c.retry.RefusedAttempts
	}
	var waited time.Duration // between attempts of a call not safe to repeat
	for attempt := 1; ; attempt++ {
		if err := c.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("mg: %s %s: waiting for the rate limiter: %w", cl.method, cl.path, err)
		}
		start := time.Now()
		status, header, body, err := c.roundTrip(ctx, cl.method, target, payload)
		c.log.LogAttrs(ctx, slog.LevelDebug, "mg request",
			slog.String("method", cl.method), slog.String("path", cl.path),
			slog.Int("status", status), slog.Int("attempt", attempt),
			slog.Duration("took", time.Since(start)), errAttr(err))
		var callErr error
		switch {
		case err != nil:
			callErr = fmt.Errorf("mg: %s %s: %w", cl.method, cl.path, err)
		case status >= 200 && status <= 299:
			if out == nil || len(bytes.TrimSpace(body)) == 0 {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				err = fmt.Errorf("mg: %s %s: decode answer: %w", cl.method, cl.path, err)
				if !cl.idempotent {
					// MG applied the call; only its answer is unreadable.
					err = fmt.Errorf("%w: %w", ErrAmbiguous, err)
				}
				return err
			}
			return nil
		default:
			apiErr := newAPIError(cl.method, cl.path, status, body, c.token.Reveal())
			if ra, ok := retryAfter(header, time.Now()); ok {
				apiErr.RetryDelay = ra
			}
			callErr = apiErr
		}
		if !cl.idempotent && mayHaveApplied(status, err) {
			return fmt.Errorf("%w: %w", ErrAmbiguous, callErr)
		}
		if attempt >= attempts || ctx.Err() != nil {
			return callErr
		}
		if cl.idempotent && !retryable(status, err) || !cl.idempotent && !refused(status, err) {
			return callErr
		}
		delay := c.retry.backoff(attempt)
		if ra, ok := retryAfter(header, time.Now()); ok {
			if ra > c.retry.MaxRetryAfter {
				return callErr
			}
			delay = max(delay, ra)
		}
		if !cl.idempotent {
			if waited+delay > c.retry.RefusedMaxWait {
				return callErr
			}
			waited += delay
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "mg request retry",
			slog.String("method", cl.method), slog.String("path", cl.path),
			slog.Int("status", status), slog.Duration("delay", delay))
		if err := c.retry.Sleep(ctx, delay); err != nil {
			return callErr
		}
	}
}

// roundTrip sends one request and reads the whole answer. The error is
// a transport error without the URL (and so without any query); the token
// only travels in a header, which no error prints.
func (c *Client) roundTrip(ctx context.Context, method, target string, payload []byte) (int, http.Header, []byte, error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("X-Bot-Token", c.token.Reveal())
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, resp.Header, data, nil
}

func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String("error", err.Error())
}
