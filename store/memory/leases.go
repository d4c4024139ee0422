package memory

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

var _ store.Leases = (*Store)(nil)

// leases keeps the [store.Leases] state: members and leases with their
// expiry on the process's clock (time.Now), under one lock. Members are
// the fleets of this process sharing the store; several let tests and
// single-process tools exercise the sharing that PostgreSQL does across
// processes.
type leases struct {
	mu      sync.Mutex
	members map[string]time.Time
	held    map[bd.AccountID]store.Lease
}

// Lease implements [store.Leases]: the round is one step under the lock.
func (s *Store) Lease(_ context.Context, r store.LeaseRound) (store.LeaseState, error) {
	if err := r.Check(); err != nil {
		return store.LeaseState{}, err
	}
	l := &s.leases
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.members == nil {
		l.members = make(map[string]time.Time)
		l.held = make(map[bd.AccountID]store.Lease)
	}
	now := time.Now()
	until := now.Add(r.TTL)
	l.members[r.Member] = until
	for m, exp := range l.members {
		if exp.Before(now) {
			delete(l.members, m)
		}
	}
	for _, a := range r.Release {
		if x, ok := l.held[a]; ok && x.Holder == r.Member {
			delete(l.held, a)
		}
	}
	st := store.LeaseState{Members: len(l.members), Share: store.LeaseShare(len(r.Accounts), len(l.members))}
	for a, x := range l.held {
		if x.Holder == r.Member {
			x.Expires = until
			l.held[a] = x
			st.Held = append(st.Held, a)
		}
	}
	for _, a := range r.Accounts {
		if len(st.Held) >= st.Share {
			break
		}
		if x, ok := l.held[a]; ok && !x.Expires.Before(now) {
			continue
		}
		l.held[a] = store.Lease{Account: a, Holder: r.Member, Expires: until}
		st.Held = append(st.Held, a)
	}
	slices.Sort(st.Held)
	return st, nil
}

// Leave implements [store.Leases].
func (s *Store) Leave(_ context.Context, member string) error {
	if member == "" {
		return invalid("leave", "member is empty")
	}
	l := &s.leases
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.members, member)
	for a, x := range l.held {
		if x.Holder == member {
			delete(l.held, a)
		}
	}
	return nil
}

// Holders implements [store.Leases].
func (s *Store) Holders(context.Context) ([]store.Lease, error) {
	l := &s.leases
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	var out []store.Lease
	for _, x := range l.held {
		if !x.Expires.Before(now) {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b store.Lease) int { return cmp.Compare(a.Account, b.Account) })
	return out, nil
}
