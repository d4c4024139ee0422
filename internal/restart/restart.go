// Package restart runs a function again whenever it stops with an error,
// after a pause that grows, until its context ends.
package restart

import (
	"context"
	"time"
)

// Loop runs run until ctx ends, starting it again whenever it returns
// while ctx is live, after a pause that starts at first, doubles up to a
// minute, and falls back to first once a run lasted a minute. stopped,
// when not nil, hears of each stop with the pause before the next start.
func Loop(ctx context.Context, first time.Duration, run func(context.Context) error, stopped func(err error, pause time.Duration)) {
	pause := first
	for {
		started := time.Now()
		err := run(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			pause = first // it ran well for a while
		}
		if stopped != nil {
			stopped(err, pause)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, time.Minute)
	}
}
