package mgsource

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/botdistributor/botdistributor/distributor"
)

// DefaultLanes is how many events are handed to the target at once, unless
// [WithLanes] says otherwise.
const DefaultLanes = 8

// lanes hands the stream's events to the target on several goroutines at
// once: the events of one chat always take the same lane, in the order
// they arrived, so one dialog's events keep their order while other
// dialogs' events do not wait behind its store round trips (or behind the
// REST call that completes an event MG sent without its chat's details).
// A lane has a goroutine and a buffer only while it has events: an idle
// account costs none.
type lanes struct {
	s *Source

	mu    sync.Mutex
	ctx   context.Context // of the running Source; nil when it does not run
	lanes []lane
	// queued counts the events queued or being handed over, so that a
	// resync waits for what arrived before it; idle is closed whenever
	// queued is 0.
	queued int
	idle   chan struct{}
	// adding counts the adds under way, running the lanes' goroutines:
	// stop waits for both.
	adding  sync.WaitGroup
	running sync.WaitGroup
	errors  atomic.Uint64
}

// lane is one lane's queue: ch is nil while the lane is idle; pending
// counts the events sent or about to be sent on it that its goroutine
// has not finished.
type lane struct {
	ch      chan laneEvent
	pending int
}

// errNotRunning refuses an event handed over while the Source does not run.
var errNotRunning = errors.New("mgsource: the source is not running")

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
	idle := make(chan struct{})
	close(idle)
	return &lanes{s: s, lanes: make([]lane, n), idle: idle}
}

// start lets events be handed over under ctx, until it ends.
func (l *lanes) start(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ctx = ctx
}

// stop, once start's ctx has ended, waits until every add under way has
// returned and every lane's goroutine has exited, and drops what is still
// queued: those events are left to the next resync, as an event in flight
// when a connection drops is. The lanes can be started again afterwards.
func (l *lanes) stop() {
	l.mu.Lock()
	l.ctx = nil // no add or lane starts once stop waits
	l.mu.Unlock()
	l.adding.Wait()
	l.running.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.lanes {
		ln := &l.lanes[i]
		if ln.ch != nil {
			// An add that met the end of the run may still have sent.
			for range len(ln.ch) {
				<-ln.ch
				l.done()
			}
		}
		ln.ch, ln.pending = nil, 0
	}
}

// add queues ev on its chat's lane, starting the lane's goroutine if the
// lane was idle; it waits while that lane is full.
func (l *lanes) add(ctx context.Context, le laneEvent) error {
	i := laneOf(le.ev, len(l.lanes))
	l.mu.Lock()
	run := l.ctx
	if run == nil || run.Err() != nil {
		l.mu.Unlock()
		return errNotRunning
	}
	l.adding.Add(1)
	defer l.adding.Done()
	ln := &l.lanes[i]
	if ln.ch == nil {
		ln.ch = make(chan laneEvent, laneDepth)
		l.running.Add(1)
		go l.work(run, ln, ln.ch)
	}
	ch := ln.ch
	ln.pending++
	if l.queued++; l.queued == 1 {
		l.idle = make(chan struct{})
	}
	l.mu.Unlock()
	select {
	case ch <- le:
		return nil
	case <-ctx.Done():
	case <-run.Done():
	}
	l.mu.Lock()
	ln.pending--
	l.done()
	l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	return run.Err()
}

// done uncounts a queued event; l.mu is held.
func (l *lanes) done() {
	if l.queued--; l.queued == 0 {
		close(l.idle)
	}
}

// work hands a lane's events over until the lane is empty or ctx ends.
func (l *lanes) work(ctx context.Context, ln *lane, ch chan laneEvent) {
	defer l.running.Done()
	for {
		select {
		case <-ctx.Done():
			return // stop drops what is left
		case le := <-ch:
			if err := l.s.complete(ctx, le.typ, le.ev); err != nil && ctx.Err() == nil {
				l.errors.Add(1)
				l.s.log.LogAttrs(ctx, slog.LevelWarn, "mgsource: event not handed over", slog.String("type", le.typ), slog.Any("error", err))
			}
			l.mu.Lock()
			l.done()
			if ln.pending--; ln.pending == 0 {
				ln.ch = nil // idle: the next event starts the lane again
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
		}
	}
}

// settle waits until every event queued so far was handed over (or ctx
// ended).
func (l *lanes) settle(ctx context.Context) {
	l.mu.Lock()
	idle := l.idle
	l.mu.Unlock()
	select {
	case <-idle:
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
