// Package changes lets the project's tests wait for a condition without
// sleeping: code that changes something pokes a Watch, and the test
// re-checks its condition whenever a watched source reports a change.
package changes

import (
	"sync"
	"testing"
	"time"
)

// Watch is a broadcast of "something changed". The zero value is not
// ready; use NewWatch. It is safe for concurrent use.
type Watch struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewWatch returns a Watch.
func NewWatch() *Watch { return &Watch{ch: make(chan struct{})} }

// Poke wakes everyone waiting on the Watch.
func (w *Watch) Poke() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.ch)
	w.ch = make(chan struct{})
}

// Changed returns a channel closed at the next Poke.
func (w *Watch) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

// Source is anything that reports changes like a Watch; a nil Source is
// ignored.
type Source interface {
	Changed() <-chan struct{}
}

// Await fails the test unless cond becomes true within timeout; it
// re-checks cond whenever one of the sources reports a change.
func Await(t testing.TB, what string, timeout time.Duration, cond func() bool, sources ...Source) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		chs := make([]<-chan struct{}, 0, 2)
		for _, s := range sources {
			if s != nil {
				chs = append(chs, s.Changed())
			}
		}
		if cond() {
			return
		}
		if wait(chs, deadline.C) {
			t.Fatalf("waiting for %s: gave up after %s", what, timeout)
		}
	}
}

// wait blocks until one of chs is closed (false) or timeout fires (true).
func wait(chs []<-chan struct{}, timeout <-chan time.Time) bool {
	done := make(chan struct{})
	defer close(done)
	any := make(chan struct{}, 1)
	for _, ch := range chs {
		go func() {
			select {
			case <-ch:
				select {
				case any <- struct{}{}:
				default:
				}
			case <-done:
			}
		}()
	}
	select {
	case <-any:
		return false
	case <-timeout:
		return true
	}
}
