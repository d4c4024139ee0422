package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/internal/option"
)

// MGOption configures a fake MG; pass options to [NewMG]. Each option
// checks its own argument, and NewMG returns the error of every option that
// refused one.
type MGOption interface {
	applyMG(*mgConfig) error
}

// CRMOption configures a fake retailCRM account; pass options to
// [NewCRM]. Each option checks its own argument, and NewCRM returns the
// error of every option that refused one.
type CRMOption interface {
	applyCRM(*crmConfig) error
}

// CommonOption configures both fakes: it is an [MGOption] and a
// [CRMOption].
type CommonOption interface {
	MGOption
	CRMOption
}

type mgOptionFunc func(*mgConfig) error

func (f mgOptionFunc) applyMG(c *mgConfig) error { return f(c) }

type crmOptionFunc func(*crmConfig) error

func (f crmOptionFunc) applyCRM(c *crmConfig) error { return f(c) }

type commonOption struct {
	mg  mgOptionFunc
	crm crmOptionFunc
}

func (o commonOption) applyMG(c *mgConfig) error { return o.mg(c) }

func (o commonOption) applyCRM(c *crmConfig) error { return o.crm(c) }

// WithSeed seeds the injected faults and, in MG, the generated tokens, so a
// run can be repeated. The default is 0.
func WithSeed(seed uint64) CommonOption {
	return commonOption{
		mg:  func(c *mgConfig) error { c.Seed = seed; return nil },
		crm: func(c *crmConfig) error { c.Seed = seed; return nil },
	}
}

// WithClock sets the clock: MG's, and the CRM's rate limit's. The default
// (and nil) is time.Now.
func WithClock(now func() time.Time) CommonOption {
	if now == nil {
		now = time.Now
	}
	return commonOption{
		mg:  func(c *mgConfig) error { c.Now = now; return nil },
		crm: func(c *crmConfig) error { c.Now = now; return nil },
	}
}

// WithBotToken sets the token of MG's first bot; read it back with
// [MG.BotToken]. The default (and "") is a token derived from the seed.
func WithBotToken(token bd.Secret) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		c.BotToken = token
		return nil
	})
}

// WithBotName sets the name of MG's first bot. The default (and "") is
// "Distributor".
func WithBotName(name string) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		if name == "" {
			name = "Distributor"
		}
		c.BotName = name
		return nil
	})
}

// WithBotRoles sets the roles of MG's first bot. The default (and none) is
// ["distributor"].
func WithBotRoles(roles ...string) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		if len(roles) == 0 {
			roles = []string{"distributor"}
		}
		c.BotRoles = slices.Clone(roles)
		return nil
	})
}

// WithWebhookURL sets where the message_sent webhooks of MG's default
// transport go; it must be an absolute http(s) URL. The default (and "")
// is the sandbox's built-in messenger, whose deliveries [MG.Delivered]
// returns.
func WithWebhookURL(webhook string) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		if webhook != "" {
			u, err := url.Parse(webhook)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("WithWebhookURL: %q is not an absolute http(s) URL", webhook)
			}
		}
		c.WebhookURL = webhook
		return nil
	})
}

// WithLogger sets where MG's own diagnostics go. The default (and nil)
// discards them.
func WithLogger(l *slog.Logger) MGOption {
	return mgOptionFunc(func(c *mgConfig) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.Logger = l
		return nil
	})
}

// WithKeys sets the API keys the CRM accepts, each with its permissions.
// The default (and an empty map) is {CRMDefaultKey: CRMFullAccess()}; an
// empty key is refused.
func WithKeys(keys map[string]CRMKey) CRMOption {
	return crmOptionFunc(func(c *crmConfig) error {
		if _, ok := keys[""]; ok {
			return errors.New("WithKeys: an API key must not be empty")
		}
		c.Keys = maps.Clone(keys)
		return nil
	})
}

// WithMGBot sets the MessageGateway endpoint and bot token the CRM's
// integration module edit returns as info.mgBot (point them at a fake MG
// to use it). The defaults (and "") are "http://127.0.0.1:1" and
// "sandbox-mg-bot-token".
func WithMGBot(endpoint, token string) CRMOption {
	return crmOptionFunc(func(c *crmConfig) error {
		if endpoint == "" {
			endpoint = "http://127.0.0.1:1"
		}
		if token == "" {
			token = "sandbox-mg-bot-token"
		}
		c.MGEndpoint, c.MGToken = endpoint, token
		return nil
	})
}

// WithRateLimit sets how many requests per second each key may make;
// requests above it get HTTP 503. The default (and 0) is 10, retailCRM's
// limit; a negative perSecond means no limit. NaN is refused.
func WithRateLimit(perSecond float64) CRMOption {
	return crmOptionFunc(func(c *crmConfig) error {
		switch {
		case math.IsNaN(perSecond):
			return errors.New("WithRateLimit: NaN requests per second")
		case perSecond == 0:
			perSecond = 10
		}
		c.RateLimit = perSecond
		return nil
	})
}

// WithThrottleStatus sets the HTTP status of a request above the rate
// limit: 503, retailCRM's documented answer and the default (also for 0),
// or 429, which newer retailCRM clients treat the same way. Any other
// status is refused.
func WithThrottleStatus(status int) CRMOption {
	return crmOptionFunc(func(c *crmConfig) error {
		switch status {
		case 0:
			status = http.StatusServiceUnavailable
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		default:
			return fmt.Errorf("WithThrottleStatus: status %d (want 503 or 429)", status)
		}
		c.ThrottleStatus = status
		return nil
	})
}

// WithSlidingWindow makes the CRM allow at most the rate limit (its
// integer part, at least 1) requests in any one-second window. Without it a
// token bucket holding that many tokens, refilled at the rate limit per
// second, is used. Which one retailCRM uses is unverified; the sliding
// window is the stricter.
func WithSlidingWindow() CRMOption {
	return crmOptionFunc(func(c *crmConfig) error {
		c.SlidingWindow = true
		return nil
	})
}

// WithNotRetailCRM makes every answer of the CRM an HTML page, like a web
// site that is not a retailCRM account.
func WithNotRetailCRM() CRMOption {
	return crmOptionFunc(func(c *crmConfig) error {
		c.NotRetailCRM = true
		return nil
	})
}

// WithSites sets the account's stores. The default (and none) is one store
// "sandbox", default for the CRM; a store without a code is refused.
func WithSites(sites ...CRMSite) CRMOption {
	return crmOptionFunc(func(c *crmConfig) error {
		for _, s := range sites {
			if s.Code == "" {
				return errors.New("WithSites: a site needs a code")
			}
		}
		c.Sites = slices.Clone(sites)
		return nil
	})
}

// applyAll applies every option with apply and returns the refusals joined
// and prefixed with "sandbox: " and the fake's name, or nil.
func applyAll[O any](fake string, opts []O, apply func(O) error) error {
	if err := option.Apply(opts, apply); err != nil {
		return fmt.Errorf("sandbox: %s: %w", fake, err)
	}
	return nil
}
