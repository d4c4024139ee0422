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

// AccountState is how an account fares in this process. It holds no
// secret.
type AccountState struct {
	ID bd.AccountID
	// Domain and MGEndpoint are the account's, as the store gave them to
	// the last build.
	Domain, MGEndpoint string
	// Running is true when the account's distributor is built; Err says
	// why it is not.
	Running bool
	Err     string
	// Problems are the last failure of each of the account's parts that
	// has not succeeded since, ordered by Op: the build (until a build
	// succeeds), the stream (until it resyncs again), Parts.Poll and
	// Parts.Roster (until a read succeeds), putting new settings in force
	// (until a reload succeeds). A stream's and its poll's problems go
	// when this process stops running the stream.
	Problems []Problem
	// Holder is true while this process runs the account's stream; Since
	// is when it started to.
	Holder bool
	Since  time.Time
	// Connected is true while the stream's websocket is up (known for an
	// *mgsource.Source or a stream with the same Stats method).
	Connected bool
	// Stream counts what the stream running here did (for an
	// *mgsource.Source or a stream with the same Stats method); zero when
	// none runs here.
	Stream mgsource.Stats
	// LastEvent and LastResync are when this process last handed the
	// distributor an event and a resync; zero if never.
	LastEvent  time.Time
	LastResync time.Time
	// Waiting counts the dialogs in the account's queue and Dead its dead
	// letters (up to 1000); -1 when the store could not say.
	Waiting int
	Dead    int
}

// Problem is the last failure of one part of an account.
type Problem struct {
	// Op names the part as Hooks.Failed does: "build", "stream", "poll",
	// "roster", "rescan".
	Op  string
	Err string
	At  time.Time
}

// String returns "op: error".
func (p Problem) String() string { return p.Op + ": " + p.Err }

// maxDeadCount bounds the dead letters Accounts counts per account.
const maxDeadCount = 1000

// Accounts describes every account the fleet hosts, ordered by id. It
// reads each account's queue length and dead letters from the store.
func (f *Fleet) Accounts(ctx context.Context) []AccountState {
	f.mu.Lock()
	out := make([]AccountState, 0, len(f.hosts))
	for _, h := range f.hosts {
		out = append(out, h.state())
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b AccountState) int { return strings.Compare(string(a.ID), string(b.ID)) })
	for i := range out {
		f.count(ctx, &out[i])
	}
	return out
}

// Account describes one account the fleet hosts, as Accounts does.
func (f *Fleet) Account(ctx context.Context, id bd.AccountID) (AccountState, error) {
	f.mu.Lock()
	h := f.hosts[id]
	var s AccountState
	if h != nil {
		s = h.state()
	}
	f.mu.Unlock()
	if h == nil {
		return AccountState{}, fmt.Errorf("%w %q", ErrUnknownAccount, id)
	}
	f.count(ctx, &s)
	return s, nil
}

// state is h's state but for what the store counts. Call with Fleet.mu
// held.
func (h *host) state() AccountState {
	s := AccountState{ID: h.id, Domain: h.acc.Domain, MGEndpoint: h.acc.MGEndpoint, Running: h.d != nil, Waiting: -1, Dead: -1}
	if h.err != nil {
		s.Err = h.err.Error()
	}
	if h.run != nil {
		s.Holder, s.Since = true, h.run.since
	}
	if p := h.stream.Load(); p != nil {
		if st, ok := (*p).(interface{ Stats() mgsource.Stats }); ok {
			s.Stream = st.Stats()
			s.Connected = s.Stream.Stream.Connects > s.Stream.Stream.Disconnects
		}
	}
	s.LastEvent = unixTime(h.lastEvent.Load())
	s.LastResync = unixTime(h.lastResync.Load())
	h.probMu.Lock()
	for _, p := range h.problems {
		s.Problems = append(s.Problems, p)
	}
	h.probMu.Unlock()
	slices.SortFunc(s.Problems, func(a, b Problem) int { return strings.Compare(a.Op, b.Op) })
	return s
}

// count reads the account's queue length and dead letters into s.
func (f *Fleet) count(ctx context.Context, s *AccountState) {
	if n, err := f.st.QueueLen(ctx, s.ID); err == nil {
		s.Waiting = n
	}
	if dead, err := f.st.DeadJobs(ctx, s.ID, maxDeadCount); err == nil {
		s.Dead = len(dead)
	}
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
	h, err := f.running(id)
	if err != nil {
		return nil, err
	}
	return h.d, nil
}

// running returns the host of a running account; f.mu is held.
func (f *Fleet) running(id bd.AccountID) (*host, error) {
	h := f.hosts[id]
	switch {
	case h == nil:
		return nil, fmt.Errorf("%w %q", ErrUnknownAccount, id)
	case h.d == nil:
		return nil, fmt.Errorf("fleet: account %q is not running: %w", id, h.err)
	}
	return h, nil
}

// Value returns the Parts.Value the account was built with. Like the
// distributor, it is replaced when the account is rebuilt on new
// credentials: ask again rather than keeping it.
func (f *Fleet) Value(id bd.AccountID) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, err := f.running(id)
	if err != nil {
		return nil, err
	}
	return h.parts.Value, nil
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
