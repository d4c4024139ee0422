package mg

import (
	"context"
	"fmt"
	"time"
)

// StreamOption configures a [Stream]; pass options to [Client.Stream] or
// [Client.Events]. Each option checks its own argument, and Stream returns
// the error of every option that refused one. A zero argument means the
// option's default.
type StreamOption interface {
	applyStream(*streamConfig) error
}

type streamOptionFunc func(*streamConfig) error

func (f streamOptionFunc) applyStream(c *streamConfig) error { return f(c) }

// WithMassCommunication subscribes to mass communication events too
// (options=include_mass_communication). The default is without.
func WithMassCommunication() StreamOption {
	return streamOptionFunc(func(c *streamConfig) error {
		c.MassCommunication = true
		return nil
	})
}

// WithOnConnect sets a function run after every successful (re)connect and
// before any event of that connection reaches the handler; events arriving
// meanwhile are buffered. It is the place to re-read state over REST: the
// stream has no replay. An error drops the connection and Run reconnects
// after a backoff, so a failed resync is retried. The default (and nil) is
// none.
func WithOnConnect(f func(ctx context.Context) error) StreamOption {
	return streamOptionFunc(func(c *streamConfig) error {
		c.OnConnect = f
		return nil
	})
}

// WithOnUnknown sets a function receiving events of types this package
// does not know (Data nil, Raw set). The default (and nil) logs them at
// debug level. Either way they are counted and skipped.
func WithOnUnknown(f func(ctx context.Context, ev Event)) StreamOption {
	return streamOptionFunc(func(c *streamConfig) error {
		c.OnUnknown = f
		return nil
	})
}

// WithOnMalformed sets a function receiving frames that are not valid
// events, with the decoding error. The default (and nil) logs them
// (without their content) at warn level. Either way they are counted and
// skipped.
func WithOnMalformed(f func(ctx context.Context, frame []byte, err error)) StreamOption {
	return streamOptionFunc(func(c *streamConfig) error {
		c.OnMalformed = f
		return nil
	})
}

// WithBackoff sets the reconnect policy; its zero fields take their
// defaults (see [Backoff]). Negative durations are refused.
func WithBackoff(b Backoff) StreamOption {
	return streamOptionFunc(func(c *streamConfig) error {
		if b.Initial < 0 || b.Max < 0 {
			return fmt.Errorf("WithBackoff: negative duration (Initial %v, Max %v)", b.Initial, b.Max)
		}
		c.Backoff = b
		return nil
	})
}

// WithPingInterval sets how often the client pings to provoke traffic. The
// default (and 0) is 30s; a negative d disables pings and the read
// deadline.
func WithPingInterval(d time.Duration) StreamOption {
	return streamOptionFunc(func(c *streamConfig) error {
		c.PingInterval = d
		return nil
	})
}

// WithReadTimeout sets the read deadline: a connection on which nothing
// arrived (an event, a ping or a pong) for this long is dropped and
// redialled, which detects half-open TCP connections. It must exceed the
// ping interval. The default (and 0) is three ping intervals; a negative d
// is refused. (Whether MG answers pings is unverified; RFC 6455 requires
// it, and then an idle healthy connection is never dropped. If it did not,
// an idle connection would be renewed, and resynced, every read timeout.)
func WithReadTimeout(d time.Duration) StreamOption {
	return streamOptionFunc(func(c *streamConfig) error {
		if d < 0 {
			return fmt.Errorf("WithReadTimeout: negative duration %v", d)
		}
		c.ReadTimeout = d
		return nil
	})
}

// WithMaxBacklog sets how many received frames may wait for the handler;
// beyond it the connection is dropped (and resynced on reconnect) rather
// than memory growing without bound. The default (and 0) is 10000; a
// negative n is refused.
func WithMaxBacklog(n int) StreamOption {
	return streamOptionFunc(func(c *streamConfig) error {
		if n < 0 {
			return fmt.Errorf("WithMaxBacklog: negative count %d", n)
		}
		c.MaxBacklog = n
		return nil
	})
}

// WithMaxFrameBytes limits one frame. The default (and 0) is 4 MiB; a
// negative n is refused.
func WithMaxFrameBytes(n int64) StreamOption {
	return streamOptionFunc(func(c *streamConfig) error {
		if n < 0 {
			return fmt.Errorf("WithMaxFrameBytes: negative size %d", n)
		}
		c.MaxFrameBytes = n
		return nil
	})
}
