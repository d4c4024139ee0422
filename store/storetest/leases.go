package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// The Leases cases run when the store implements [store.Leases] and are
// skipped otherwise. Members count across the whole store, so these cases
// need a store with no live lease members but their own (a fresh store or
// schema per subtest, as for "Events/Prune").

// leaseWait bounds how long a case waits for a lease to lapse by the
// store's clock; a case that passes waits about the TTL it set.
const leaseWait = 30 * time.Second

func leaseCases() []testCase {
	return []testCase{
		{"Invalid", leaseInvalid},
		{"AloneTakesAll", leaseAlone},
		{"Spread", leaseSpread},
		{"Lapse", leaseLapse},
		{"Leave", leaseLeave},
		{"Hammer", leaseHammer},
	}
}

func leasesOf(t *testing.T, s store.Store) store.Leases {
	t.Helper()
	l, ok := s.(store.Leases)
	if !ok {
		t.Skipf("%T does not implement store.Leases", s)
	}
	return l
}

// leaseAccounts returns n account ids unique to the subtest, in order.
func leaseAccounts(t *testing.T, n int) []bd.AccountID {
	base := newAccount(t)
	out := make([]bd.AccountID, n)
	for i := range out {
		out[i] = bd.AccountID(fmt.Sprintf("%s/%02d", base, i))
	}
	return out
}

func round(t *testing.T, l store.Leases, r store.LeaseRound) store.LeaseState {
	t.Helper()
	st, err := l.Lease(context.Background(), r)
	if err != nil {
		t.Fatalf("Lease(%s): %v", r.Member, err)
	}
	if !slices.IsSorted(st.Held) {
		t.Errorf("Lease(%s): Held %v is not in byte order", r.Member, st.Held)
	}
	return st
}

func leaseInvalid(t *testing.T, s store.Store) {
	l := leasesOf(t, s)
	ctx := context.Background()
	accs := leaseAccounts(t, 1)
	for _, c := range []struct {
		name string
		r    store.LeaseRound
	}{
		{"empty member", store.LeaseRound{Accounts: accs, TTL: time.Minute}},
		{"zero TTL", store.LeaseRound{Member: "m", Accounts: accs}},
		{"negative TTL", store.LeaseRound{Member: "m", Accounts: accs, TTL: -time.Second}},
		{"empty account", store.LeaseRound{Member: "m", Accounts: []bd.AccountID{""}, TTL: time.Minute}},
		{"empty release", store.LeaseRound{Member: "m", Accounts: accs, Release: []bd.AccountID{""}, TTL: time.Minute}},
	} {
		if _, err := l.Lease(ctx, c.r); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Lease with %s: got %v, want ErrInvalid", c.name, err)
		}
	}
	if err := l.Leave(ctx, ""); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Leave(\"\"): got %v, want ErrInvalid", err)
	}
	if hs, err := l.Holders(ctx); err != nil || len(hs) != 0 {
		t.Errorf("Holders after invalid rounds = %v, %v; want none", hs, err)
	}
}

func leaseAlone(t *testing.T, s store.Store) {
	l := leasesOf(t, s)
	accs := leaseAccounts(t, 5)
	st := round(t, l, store.LeaseRound{Member: "a", Accounts: accs, TTL: time.Hour})
	if st.Members != 1 || st.Share != 5 || !slices.Equal(st.Held, accs) {
		t.Fatalf("a alone: got %+v, want all 5 accounts held, 1 member, share 5", st)
	}
	// A renewal keeps them.
	if st := round(t, l, store.LeaseRound{Member: "a", Accounts: accs, TTL: time.Hour}); !slices.Equal(st.Held, accs) {
		t.Fatalf("a renewing: holds %v, want %v", st.Held, accs)
	}
	hs, err := l.Holders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 5 {
		t.Fatalf("Holders = %v, want the 5 leases of a", hs)
	}
	for i, h := range hs {
		if h.Account != accs[i] || h.Holder != "a" || h.Expires.IsZero() {
			t.Errorf("Holders[%d] = %+v, want %s held by a with an expiry", i, h, accs[i])
		}
	}
}

func leaseSpread(t *testing.T, s store.Store) {
	l := leasesOf(t, s)
	accs := leaseAccounts(t, 4)
	r := func(m string, release ...bd.AccountID) store.LeaseState {
		return round(t, l, store.LeaseRound{Member: m, Accounts: accs, TTL: time.Hour, Release: release})
	}
	if st := r("a"); len(st.Held) != 4 {
		t.Fatalf("a alone holds %v, want all 4", st.Held)
	}
	st := r("b")
	if st.Members != 2 || st.Share != 2 || len(st.Held) != 0 {
		t.Fatalf("b joining while a holds everything: got %+v, want 2 members, share 2, nothing held", st)
	}
	// The store never takes a lease from a live holder: a keeps all four
	// until it releases the extras itself (after stopping their streams).
	st = r("a")
	if st.Share != 2 || len(st.Held) != 4 {
		t.Fatalf("a after b joined: got %+v, want share 2 and all 4 still held", st)
	}
	a := r("a", st.Held[2:]...)
	if !slices.Equal(a.Held, accs[:2]) {
		t.Fatalf("a releasing %v: holds %v, want %v", accs[2:], a.Held, accs[:2])
	}
	b := r("b")
	if !slices.Equal(b.Held, accs[2:]) {
		t.Fatalf("b after a released: holds %v, want %v", b.Held, accs[2:])
	}
	// A released lease is not taken back by its former holder.
	if a := r("a"); !slices.Equal(a.Held, accs[:2]) {
		t.Fatalf("a renewing: holds %v, want %v", a.Held, accs[:2])
	}
}

func leaseLapse(t *testing.T, s store.Store) {
	l := leasesOf(t, s)
	accs := leaseAccounts(t, 3)
	if st := round(t, l, store.LeaseRound{Member: "a", Accounts: accs, TTL: 50 * time.Millisecond}); len(st.Held) != 3 {
		t.Fatalf("a holds %v, want all 3", st.Held)
	}
	// b takes every lease once a's lapsed by the store's clock, and not one
	// before: each round either finds them all still a's or all free.
	deadline := time.Now().Add(leaseWait)
	for {
		st := round(t, l, store.LeaseRound{Member: "b", Accounts: accs, TTL: time.Hour})
		if len(st.Held) == 3 {
			if st.Members != 1 {
				t.Errorf("b after a lapsed: %d members, want 1 (a forgotten)", st.Members)
			}
			break
		}
		if len(st.Held) != 0 {
			t.Fatalf("b holds %v: part of a's leases, which lapse together", st.Held)
		}
		if time.Now().After(deadline) {
			t.Fatalf("a's leases with a 50ms TTL did not lapse within %s", leaseWait)
		}
		time.Sleep(10 * time.Millisecond) // polling the store's clock, not waiting for an outcome
	}
	// a comes back: it holds nothing, and its share is now half.
	st := round(t, l, store.LeaseRound{Member: "a", Accounts: accs, TTL: time.Hour})
	if len(st.Held) != 0 || st.Members != 2 || st.Share != 2 {
		t.Fatalf("a back after its leases lapsed: got %+v, want nothing held, 2 members, share 2", st)
	}
}

func leaseLeave(t *testing.T, s store.Store) {
	l := leasesOf(t, s)
	ctx := context.Background()
	accs := leaseAccounts(t, 3)
	round(t, l, store.LeaseRound{Member: "a", Accounts: accs, TTL: time.Hour})
	if st := round(t, l, store.LeaseRound{Member: "b", Accounts: accs, TTL: time.Hour}); len(st.Held) != 0 {
		t.Fatalf("b took %v from a live a", st.Held)
	}
	if err := l.Leave(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := l.Leave(ctx, "nobody"); err != nil {
		t.Errorf("Leave of an unknown member: %v", err)
	}
	st := round(t, l, store.LeaseRound{Member: "b", Accounts: accs, TTL: time.Hour})
	if !slices.Equal(st.Held, accs) || st.Members != 1 {
		t.Fatalf("b after a left: got %+v, want all 3 held and 1 member", st)
	}
	hs, err := l.Holders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Holder != "b" {
			t.Errorf("after a left, Holders lists %+v", h)
		}
	}
}

// leaseHammer races members keeping leases the way a fleet does: a member
// notes the accounts a round gave it, and before releasing one it forgets
// it (stops its stream). No account is ever noted by two members, no
// member loses a lease it did not release, and at the end every account is
// held by someone and nobody holds more than their share.
func leaseHammer(t *testing.T, s store.Store) {
	l := leasesOf(t, s)
	const members, rounds = 4, 40
	accs := leaseAccounts(t, 13)
	var mu sync.Mutex
	owner := make(map[bd.AccountID]string)
	var wg sync.WaitGroup
	for i := range members {
		m := fmt.Sprintf("m%d", i)
		wg.Go(func() {
			mine := map[bd.AccountID]bool{}
			var release []bd.AccountID
			for n := range rounds {
				st, err := l.Lease(context.Background(), store.LeaseRound{Member: m, Accounts: accs, TTL: time.Hour, Release: release})
				if err != nil {
					t.Errorf("%s round %d: %v", m, n, err)
					return
				}
				held := map[bd.AccountID]bool{}
				for _, a := range st.Held {
					held[a] = true
				}
				for a := range mine {
					if !held[a] {
						t.Errorf("%s lost %s without releasing it", m, a)
					}
				}
				mu.Lock()
				for _, a := range st.Held {
					if o, ok := owner[a]; ok && o != m {
						t.Errorf("%s was given %s, which %s holds", m, a, o)
					}
					owner[a] = m
				}
				// Give back the extras, and now and then one more, as a
				// fleet does: forget first, release in the next round.
				release = nil
				extra := len(st.Held) - st.Share
				if n%7 == 3 && len(st.Held) > 0 {
					extra = max(extra, 1)
				}
				for _, a := range st.Held[:max(extra, 0)] {
					delete(owner, a)
					delete(held, a)
					release = append(release, a)
				}
				mu.Unlock()
				mine = held
			}
			if len(release) > 0 {
				if _, err := l.Lease(context.Background(), store.LeaseRound{Member: m, Accounts: accs, TTL: time.Hour, Release: release}); err != nil {
					t.Errorf("%s last release: %v", m, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Settle: rounds in turn until nobody holds more than their share
	// (each gives back its extras) and every account is held.
	total := 0
	for range 4 {
		total = 0
		for i := range members {
			m := fmt.Sprintf("m%d", i)
			st := round(t, l, store.LeaseRound{Member: m, Accounts: accs, TTL: time.Hour})
			if len(st.Held) > st.Share {
				round(t, l, store.LeaseRound{Member: m, Accounts: accs, TTL: time.Hour, Release: st.Held[st.Share:]})
				total += st.Share
			} else {
				total += len(st.Held)
			}
		}
		if total == len(accs) {
			break
		}
	}
	if total != len(accs) {
		t.Errorf("after settling, %d of %d accounts are held", total, len(accs))
	}
}
