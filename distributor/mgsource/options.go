package mgsource

import (
	"fmt"
	"log/slog"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/mg"
)

// Option configures a [Source]; pass options to [New]. Each option checks
// its own argument, and New returns the error of every option that refused
// one.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// config is a Source's settings: the arguments of New and the options.
type config struct {
	Account     bd.AccountID
	Client      *mg.Client
	Target      Target
	Status      func(bd.ManagerID) (bd.ManagerStatus, bool)
	Stream      []mg.StreamOption
	Logger      *slog.Logger
	ResyncEvery time.Duration
	DeliverFor  time.Duration
	Lanes       int
}

// WithStatus sets where a manager's retailCRM status is read for the
// roster and for ManagerChanged events (MG knows no CRM status; see
// [NewTranslator]). The default (and nil) is every manager free.
func WithStatus(status func(bd.ManagerID) (bd.ManagerStatus, bool)) Option {
	return optionFunc(func(c *config) error {
		c.Status = status
		return nil
	})
}

// WithStream adds options of the websocket stream (mg.WithBackoff,
// mg.WithPingInterval, mg.WithReadTimeout, mg.WithMaxBacklog,
// mg.WithMaxFrameBytes, mg.WithOnUnknown, mg.WithOnMalformed); the event
// types, the handler and mg.WithOnConnect are set by the Source. The
// default is none, mg's defaults. New refuses what mg.Client.Stream
// refuses.
func WithStream(opts ...mg.StreamOption) Option {
	return optionFunc(func(c *config) error {
		c.Stream = append(c.Stream, opts...)
		return nil
	})
}

// WithLogger sets the logger of the Source's diagnostics. The Source adds
// the attribute account to every record, so give it a logger that does not
// carry one already. The default (and nil) discards them.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.Logger = l
		return nil
	})
}

// WithResyncEvery sets how often Run resyncs while connected, as a safety
// net for events lost before the target accepted them. The default (and
// 0) is [DefaultResyncEvery]; a negative d turns the periodic resync off.
func WithResyncEvery(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d == 0 {
			d = DefaultResyncEvery
		}
		c.ResyncEvery = d
		return nil
	})
}

// WithDeliverFor sets how long an event the target refuses with a
// transient error (its store is unreachable) is offered again before it is
// left to the resync. The default (and 0) is [DefaultDeliverFor]; a
// negative d is refused.
func WithDeliverFor(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		switch {
		case d < 0:
			return fmt.Errorf("WithDeliverFor: negative duration %v", d)
		case d == 0:
			d = DefaultDeliverFor
		}
		c.DeliverFor = d
		return nil
	})
}

// WithLanes sets how many events are handed to the target at once. The
// events of one chat always go through one lane, in the order MG sent
// them; other chats' events do not wait behind them. 1 hands every event
// over in arrival order. The default (and 0) is [DefaultLanes]; a negative
// n is refused.
func WithLanes(n int) Option {
	return optionFunc(func(c *config) error {
		switch {
		case n < 0:
			return fmt.Errorf("WithLanes: negative count %d", n)
		case n == 0:
			n = DefaultLanes
		}
		c.Lanes = n
		return nil
	})
}
