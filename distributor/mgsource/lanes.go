package mgsource

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/botdistributor/botdistributor/distributor"
)

// DefaultLanes is Options.Lanes when it is zero.
const DefaultLanes = 8

// lanes hands the stream's events to the target on several goroutines at
// once: the events of one chat always take the same lane, in the order
// they arrived, so one dialog's events keep their order while other
// dialogs' events do not wait behind its store round trips (or behind the
// REST call that completes an event MG sent without its chat's details).
type lanes struct {
	s      *Source
	queues []chan laneEvent
	// busy counts the events queued or being handed over, so that a
	// resync waits for what arrived before it.
	busy   sync.WaitGroup
	errors atomic.Uint64
}

// laneDepth is how many events wait in one lane before the stream's
// reader waits too (the websocket then holds the rest).
const laneDepth = 64

// laneEvent is an event translated on the stream's goroutine, with the
// type MG gave it (for logs).
type laneEvent struct {
	typ string
	ev  distributor.Event
}

func newLanes(s *Source, n int) *lanes {
	l := &lanes{s: s, queues: make([]chan laneEvent, n)}
	for i := range l.queues {
		l.queues[i] = make(chan laneEvent, laneDepth)
	}
	return l
}

// run works the lanes until ctx ends; events still queued then are left to
// the next resync, as an event in flight when a connection drops is.
func (l *lanes) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, q := range l.queues {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					for {
						select {
						case <-q:
							l.busy.Done()
						default:
							return
						}
					}
				case le := <-q:
					if err := l.s.complete(ctx, le.typ, le.ev); err != nil && ctx.Err() == nil {
						l.errors.Add(1)
						l.s.log.LogAttrs(ctx, slog.LevelWarn, "mgsource: event not handed over", slog.String("type", le.typ), slog.Any("error", err))
					}
					l.busy.Done()
				}
			}
		})
	}
	wg.Wait()
}

// add queues ev on its chat's lane; it waits while that lane is full.
func (l *lanes) add(ctx context.Context, le laneEvent) error {
	q := l.queues[laneOf(le.ev, len(l.queues))]
	l.busy.Add(1)
	select {
	case q <- le:
		return nil
	case <-ctx.Done():
		l.busy.Done()
		return ctx.Err()
	}
}

// settle waits until every event queued so far was handed over (or ctx
// ended).
func (l *lanes) settle(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		l.busy.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// laneOf picks the lane of an event: by its chat, or by its manager for
// the events about a manager.
func laneOf(ev distributor.Event, n int) int {
	if n == 1 {
		return 0
	}
	key := int64(ev.Dialog.Chat)
	if key == 0 {
		key = int64(ev.Dialog.ID)
	}
	if key == 0 {
		key = int64(ev.Manager.ID)
	}
	if key < 0 {
		key = -key
	}
	return int(key % int64(n))
}
