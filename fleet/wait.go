package fleet

import (
	"context"
	"fmt"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// Await waits until this process hosts acc as given: built with its
// domain, API key, MG endpoint and token, e.g. after it was saved in the
// store on connecting it. It asks for a rescan when the fleet hosts no
// such build yet. It returns nil once the account's distributor runs, the
// build's error when a build begun after the call failed (or the one
// there, once a rescan has tried again and failed as well), ErrStopped
// once Run has returned, or ctx's error. Before Run starts it waits.
func (f *Fleet) Await(ctx context.Context, acc bd.Account) error {
	begun := time.Now()
	asked := false
	for {
		f.mu.Lock()
		h := f.hosts[acc.ID]
		changed := f.changed
		var running, failed bool
		var cause error
		if h != nil && !credentialsChanged(h.acc, acc) {
			running = h.d != nil
			failed, cause = !h.built.Before(begun), h.err
		}
		f.mu.Unlock()
		switch {
		case running:
			return nil
		case failed:
			return fmt.Errorf("fleet: account %q cannot start: %w", acc.ID, cause)
		}
		if !asked {
			f.Rescan()
			asked = true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.done:
			return ErrStopped
		}
	}
}

// Ready waits until this process runs the account's stream and the stream
// has handed the distributor a resync since (the roster and the open
// dialogs are current): then the account's events are handled here. An
// account without a stream is ready once this process holds its lease.
// Where another process runs the stream, Ready waits until this one takes
// it over or ctx ends. It returns the build's error when the account
// cannot start, ErrStopped once Run has returned, or ctx's error.
func (f *Fleet) Ready(ctx context.Context, id bd.AccountID) error {
	for {
		f.mu.Lock()
		h := f.hosts[id]
		changed := f.changed
		ready := h != nil && h.run != nil &&
			(h.parts.Stream == nil || h.lastResync.Load() >= h.run.since.UnixNano())
		f.mu.Unlock()
		switch {
		case ready:
			return nil
		case h != nil && h.d == nil:
			return fmt.Errorf("fleet: account %q cannot start: %w", id, h.err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.done:
			return ErrStopped
		}
	}
}

// Done returns a channel closed once Run has returned.
func (f *Fleet) Done() <-chan struct{} { return f.done }
