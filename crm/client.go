package crm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	retailcrm "github.com/retailcrm/api-client-go/v2"
	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
)

// Client calls one retailCRM account's API v5 with one API key.
//
// A Client is safe for concurrent use; all its goroutines share the key's
// rate limit. Every method takes a context and returns when it ends (see
// the package documentation for what happens to the request then). Errors
// are [*Error] values wrapping the package's sentinels, or wrap ctx.Err()
// when the context ended first. A Client prints and logs as its domain
// only; the key never appears in its formatted value.
type Client struct {
	domain string
	key    string
	keyID  string
	api    *retailcrm.Client
	lim    *rate.Limiter

	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	now        func() time.Time
	sleep      func(context.Context, time.Duration) error
	log        *slog.Logger
}

// New returns a client of the account at domain (see [ParseDomain] for the
// accepted forms) using API key key, tuned by opts (see [Option]; none means
// the defaults). It makes no request. It returns an error wrapping
// [ErrBadDomain] for a malformed domain and [ErrInvalidKey] for an empty
// key, and an error naming the option for an option's bad argument.
func New(domain string, key bd.Secret, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	if err := applyAll(opts, func(o Option) error { return o.apply(&cfg) }); err != nil {
		return nil, err
	}
	return newClient(domain, key, cfg)
}

func newClient(domain string, key bd.Secret, cfg config) (*Client, error) {
	d, err := ParseDomain(domain)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, &Error{Op: "connect " + d, Kind: ErrInvalidKey, Detail: "the API key is empty"}
	}
	api := retailcrm.New(d, key.Reveal())
	api.WithLogger(discardPrintf{})
	return &Client{
		domain:     d,
		key:        key.Reveal(),
		keyID:      KeyID(d, key.Reveal()),
		api:        api,
		lim:        cfg.limiters.get(d, key.Reveal()),
		attempts:   cfg.attempts,
		backoff:    cfg.backoff,
		maxBackoff: cfg.maxBackoff,
		now:        cfg.now,
		sleep:      cfg.sleep,
		log:        cfg.logger,
	}, nil
}

// Domain returns the account's canonical address, e.g. "https://shop.retailcrm.ru".
func (c *Client) Domain() string { return c.domain }

// KeyID returns the loggable identifier of the client's key, see [KeyID].
func (c *Client) KeyID() string { return c.keyID }

// String implements fmt.Stringer: "crm.Client(https://shop.retailcrm.ru)".
func (c *Client) String() string { return "crm.Client(" + c.domain + ")" }

// Format implements fmt.Formatter, so that every verb, %+v and %#v
// included, prints [Client.String] and never the key.
func (c *Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// LogValue implements slog.LogValuer: the domain and the key's [KeyID].
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("domain", c.domain), slog.String("key", c.keyID))
}

// call runs fn under the rate limit, retrying 503 and 429 answers with a
// capped exponential backoff, and returns as soon as ctx ends.
func call[T any](ctx context.Context, c *Client, op string, fn func(api *retailcrm.Client) (T, int, error)) (T, error) {
	var zero T
	wait := c.backoff
	for attempt := 1; ; attempt++ {
		if err := c.take(ctx); err != nil {
			return zero, fmt.Errorf("crm: %s: %w", op, err)
		}
		type result struct {
			v      T
			status int
			err    error
		}
		done := make(chan result, 1) // buffered: an abandoned request finishes without blocking
		go func() {
			v, status, err := fn(c.api)
			done <- result{v, status, err}
		}()
		var r result
		select {
		case <-ctx.Done():
			return zero, fmt.Errorf("crm: %s: %w", op, ctx.Err())
		case r = <-done:
		}
		if r.err == nil {
			return r.v, nil
		}
		e := classify(op, r.status, r.err, c.key)
		if e.Kind != ErrThrottled || attempt >= c.attempts {
			if e.Kind == ErrThrottled {
				e.Detail = fmt.Sprintf("still throttled after %d attempts", attempt)
			}
			return zero, e
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "crm: throttled, retrying",
			slog.String("op", op), slog.String("domain", c.domain), slog.String("key", c.keyID),
			slog.Int("status", r.status), slog.Int("attempt", attempt), slog.Duration("wait", wait))
		if err := c.sleep(ctx, wait); err != nil {
			return zero, fmt.Errorf("crm: %s: %w", op, err)
		}
		wait = min(2*wait, c.maxBackoff)
	}
}

// take waits for the key's rate limit to allow one request.
func (c *Client) take(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := c.now()
	r := c.lim.ReserveN(now, 1)
	if !r.OK() {
		return fmt.Errorf("rate limiter refuses requests")
	}
	if d := r.DelayFrom(now); d > 0 {
		if err := c.sleep(ctx, d); err != nil {
			r.CancelAt(c.now())
			return err
		}
	}
	return nil
}

func sleepTimer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// discardPrintf keeps the underlying client from writing to the standard
// logger (it would only do so in debug mode, which also prints the key).
type discardPrintf struct{}

func (discardPrintf) Printf(string, ...any) {}
