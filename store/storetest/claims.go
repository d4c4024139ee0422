package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// racers is how many goroutines fight over one claim.
const racers = 32

func replyCases() []testCase {
	return []testCase{
		{"ClaimOnce", testClaimReplyOnce},
		{"ClaimRace", testClaimReplyRace},
		{"Release", testReleaseReply},
		{"Invalid", testRepliesInvalid},
	}
}

func claimReply(t *testing.T, s store.Store, acc bd.AccountID, d bd.DialogID, sit bd.Situation, want bool) {
	t.Helper()
	got, err := s.ClaimReply(t.Context(), acc, d, sit)
	noErr(t, err, "ClaimReply(%d, %s)", d, sit)
	if got != want {
		t.Fatalf("ClaimReply(%d, %s) = %t, want %t", d, sit, got, want)
	}
}

func testClaimReplyOnce(t *testing.T, s store.Store) {
	acc := newAccount(t)
	claimReply(t, s, acc, 1, bd.DialogReceived, true)
	claimReply(t, s, acc, 1, bd.DialogReceived, false)
	claimReply(t, s, acc, 1, bd.DialogReceived, false)
	// Other situations, dialogs and accounts are claimed apart.
	claimReply(t, s, acc, 1, bd.ManagerAssigned, true)
	claimReply(t, s, acc, 2, bd.DialogReceived, true)
	claimReply(t, s, newAccount(t), 1, bd.DialogReceived, true)
	claimReply(t, s, acc, 1, bd.ManagerAssigned, false)
}

func testClaimReplyRace(t *testing.T, s store.Store) {
	acc := newAccount(t)
	sits := bd.Situations()
	const dialogs = 4
	wins := make([]atomic.Int64, dialogs*len(sits))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			<-start
			for d := range dialogs {
				for i, sit := range sits {
					ok, err := s.ClaimReply(t.Context(), acc, bd.DialogID(d+1), sit)
					if err != nil {
						t.Errorf("ClaimReply(%d, %s): %v", d+1, sit, err)
						return
					}
					if ok {
						wins[d*len(sits)+i].Add(1)
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for d := range dialogs {
		for i, sit := range sits {
			if n := wins[d*len(sits)+i].Load(); n != 1 {
				t.Errorf("ClaimReply(%d, %s) returned true to %d of %d goroutines, want 1", d+1, sit, n, racers)
			}
		}
	}
}

func testReleaseReply(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	claimReply(t, s, acc, 1, bd.DialogReceived, true)
	claimReply(t, s, acc, 1, bd.ManagerAssigned, true)
	noErr(t, s.ReleaseReply(ctx, acc, 1, bd.ManagerAssigned), "ReleaseReply(1, %s)", bd.ManagerAssigned)
	claimReply(t, s, acc, 1, bd.ManagerAssigned, true)
	claimReply(t, s, acc, 1, bd.ManagerAssigned, false)
	// Only the released situation was freed.
	claimReply(t, s, acc, 1, bd.DialogReceived, false)
	// Releasing what nobody claimed is no error and claims nothing.
	noErr(t, s.ReleaseReply(ctx, acc, 2, bd.NoManagerOnline), "ReleaseReply of an unclaimed reply")
	claimReply(t, s, acc, 2, bd.NoManagerOnline, true)
}

func testRepliesInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.ClaimReply(ctx, "", 1, bd.DialogReceived)
	isErr(t, err, store.ErrInvalid, "ClaimReply with an empty account")
	_, err = s.ClaimReply(ctx, newAccount(t), 0, bd.DialogReceived)
	isErr(t, err, store.ErrInvalid, "ClaimReply of dialog 0")
}

func eventCases() []testCase {
	return []testCase{
		{"ClaimOnce", testClaimEventOnce},
		{"ClaimRace", testClaimEventRace},
		{"Prune", testPruneEvents},
		{"Invalid", testEventsInvalid},
	}
}

func claimEvent(t *testing.T, s store.Store, acc bd.AccountID, key string, when time.Time, want bool) {
	t.Helper()
	got, err := s.ClaimEvent(t.Context(), acc, key, when)
	noErr(t, err, "ClaimEvent(%q)", key)
	if got != want {
		t.Fatalf("ClaimEvent(%q) = %t, want %t", key, got, want)
	}
}

func testClaimEventOnce(t *testing.T, s store.Store) {
	acc := newAccount(t)
	claimEvent(t, s, acc, "dialog_opened:1", at(0), true)
	claimEvent(t, s, acc, "dialog_opened:1", at(0), false)
	claimEvent(t, s, acc, "dialog_opened:1", at(time.Hour), false)
	claimEvent(t, s, acc, "dialog_opened:2", at(0), true)
	claimEvent(t, s, newAccount(t), "dialog_opened:1", at(0), true)
}

func testClaimEventRace(t *testing.T, s store.Store) {
	acc := newAccount(t)
	const keys = 8
	var wins [keys]atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			<-start
			for k := range keys {
				ok, err := s.ClaimEvent(t.Context(), acc, fmt.Sprintf("message_new:%d", k), at(0))
				if err != nil {
					t.Errorf("ClaimEvent(%d): %v", k, err)
					return
				}
				if ok {
					wins[k].Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for k := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Errorf("ClaimEvent(message_new:%d) returned true to %d of %d goroutines, want 1", k, n, racers)
		}
	}
}

func testPruneEvents(t *testing.T, s store.Store) {
	a1, a2 := newAccount(t), newAccount(t)
	ctx := t.Context()
	cut := at(-30 * time.Minute)
	claimEvent(t, s, a1, "old", at(-2*time.Hour), true)
	claimEvent(t, s, a1, "older", at(-3*time.Hour), true)
	claimEvent(t, s, a2, "old", at(-time.Hour), true)
	claimEvent(t, s, a1, "edge", cut, true)
	claimEvent(t, s, a1, "new", at(0), true)

	n, err := s.PruneEvents(ctx, cut)
	noErr(t, err, "PruneEvents")
	if n != 3 {
		t.Fatalf("PruneEvents forgot %d claims, want 3 (the two old ones of one account and the old one of another)", n)
	}
	// Forgotten claims can be made again; claims at or after the cut stay.
	claimEvent(t, s, a1, "old", at(0), true)
	claimEvent(t, s, a2, "old", at(0), true)
	claimEvent(t, s, a1, "edge", at(0), false)
	claimEvent(t, s, a1, "new", at(0), false)

	n, err = s.PruneEvents(ctx, cut)
	noErr(t, err, "second PruneEvents")
	if n != 0 {
		t.Fatalf("second PruneEvents forgot %d claims, want 0", n)
	}
	claimEvent(t, s, a1, "older", at(0), true)
}

func testEventsInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.ClaimEvent(ctx, "", "k", at(0))
	isErr(t, err, store.ErrInvalid, "ClaimEvent with an empty account")
	_, err = s.ClaimEvent(ctx, newAccount(t), "", at(0))
	isErr(t, err, store.ErrInvalid, "ClaimEvent with an empty key")
}
