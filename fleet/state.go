package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
)

// AccountState is how an account fares in this process.
type AccountState struct {
	ID bd.AccountID
	// Running is true when the account's distributor is built; Err says
	// why it is not.
	Running bool
	Err     string
	// Holder is true while this process runs the account's stream; Since
	// is when it started to.
	Holder bool
	Since  time.Time
	// Connected is true while the stream's websocket is up (known for an
	// *mgsource.Source or a stream with the same Stats method).
	Connected bool
	// LastEvent and LastResync are when this process last handed the
	// distributor an event and a resync; zero if never.
	LastEvent  time.Time
	LastResync time.Time
	// Waiting counts the dialogs in the account's queue and Dead its dead
	// letters (up to 1000); -1 when the store could not say.
	Waiting int
	Dead    int
}

// maxDeadCount bounds the dead letters Accounts counts per account.
const maxDeadCount = 1000

// Accounts describes every account the fleet hosts, ordered by id. It
// reads each account's queue length and dead letters from the store.
func (f *Fleet) Accounts(ctx context.Context) []AccountState {
	f.mu.Lock()
	out := make([]AccountState, 0, len(f.hosts))
	for _, h := range f.hosts {
		s := AccountState{ID: h.id, Running: h.d != nil, Waiting: -1, Dead: -1}
		if h.err != nil {
			s.Err = h.err.Error()
		}
		if h.run != nil {
			s.Holder, s.Since = true, h.run.since
		}
		if p := h.stream.Load(); p != nil {
			if st, ok := (*p).(interface{ Stats() mgsource.Stats }); ok {
				ss := st.Stats().Stream
				s.Connected = ss.Connects > ss.Disconnects
			}
		}
		s.LastEvent = unixTime(h.lastEvent.Load())
		s.LastResync = unixTime(h.lastResync.Load())
		out = append(out, s)
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b AccountState) int { return strings.Compare(string(a.ID), string(b.ID)) })
	for i := range out {
		if n, err := f.st.QueueLen(ctx, out[i].ID); err == nil {
			out[i].Waiting = n
		}
		if dead, err := f.st.DeadJobs(ctx, out[i].ID, maxDeadCount); err == nil {
			out[i].Dead = len(dead)
		}
	}
	return out
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Distributor returns the account's distributor, e.g. to save settings,
// explain a decision or list dead letters. It belongs to the fleet: do not
// close it. After a change of the account's credentials it is replaced;
// ask again rather than keeping it.
func (f *Fleet) Distributor(id bd.AccountID) (*distributor.Distributor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := f.hosts[id]
	switch {
	case h == nil:
		return nil, fmt.Errorf("%w %q", ErrUnknownAccount, id)
	case h.d == nil:
		return nil, fmt.Errorf("fleet: account %q is not running: %w", id, h.err)
	}
	return h.d, nil
}

// Holding returns the accounts whose stream this process runs, in order.
func (f *Fleet) Holding() []bd.AccountID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []bd.AccountID
	for id, h := range f.hosts {
		if h.run != nil {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
