package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// Reply claims of the built-in situations are bits of one map entry per
// dialog, so a dialog's claims share an entry; claims of other situations
// live in a map of their own.
type replyBits uint8

// bitOf returns the bit of a built-in situation, or 0.
func bitOf(sit bd.Situation) replyBits {
	switch sit {
	case bd.DialogReceived:
		return 1 << 0
	case bd.ManagerAssigned:
		return 1 << 1
	case bd.NoManagerOnline:
		return 1 << 2
	case bd.AllManagersBusy:
		return 1 << 3
	case bd.OutsideWorkingHours:
		return 1 << 4
	}
	return 0
}

// replyKey names a reply of a situation that has no bit.
type replyKey struct {
	dialog    bd.DialogID
	situation bd.Situation
}

// checkReply rejects an empty account, a non-positive dialog id and an empty
// situation.
func checkReply(op string, acc bd.AccountID, d bd.DialogID, sit bd.Situation) error {
	if err := checkDialog(op, acc, d); err != nil {
		return err
	}
	if sit == "" {
		return invalid(op, "situation is empty")
	}
	return nil
}

// ClaimReply implements [store.Replies]. An empty account, a non-positive
// dialog id or an empty situation fail with [store.ErrInvalid].
func (s *Store) ClaimReply(_ context.Context, acc bd.AccountID, d bd.DialogID, sit bd.Situation) (bool, error) {
	if err := checkReply("claim reply", acc, d, sit); err != nil {
		return false, err
	}
	return s.claimReply(acc, d, sit), nil
}

// claimReply takes the claim of a checked reply and reports whether it was
// free.
func (s *Store) claimReply(acc bd.AccountID, d bd.DialogID, sit bd.Situation) bool {
	sh := s.shardFor(acc)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.claimReply(d, sit)
}

// keepReply claims the replies of the reply job j under one hold of the
// account's lock and returns the job with those it claimed (see
// [store.Job.Keep]).
func (s *Store) keepReply(j store.Job) (store.Job, bool) {
	sh := s.shardFor(j.Account)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return j.Keep(func(sit bd.Situation) bool { return sh.claimReply(j.Dialog.ID, sit) })
}

// claimReply claims the reply of situation sit to dialog d, with sh.mu
// held, and reports whether it was not claimed before.
func (sh *shard) claimReply(d bd.DialogID, sit bd.Situation) bool {
	if bit := bitOf(sit); bit != 0 {
		r := sh.dialogs[d]
		if r.replies&bit != 0 {
			return false
		}
		r.replies |= bit
		sh.dialogs[d] = r
		return true
	}
	k := replyKey{dialog: d, situation: sit}
	if _, ok := sh.otherReplies[k]; ok {
		return false
	}
	sh.otherReplies[k] = struct{}{}
	return true
}

// ReleaseReply implements [store.Replies]; the arguments are checked as by
// ClaimReply.
func (s *Store) ReleaseReply(_ context.Context, acc bd.AccountID, d bd.DialogID, sit bd.Situation) error {
	if err := checkReply("release reply", acc, d, sit); err != nil {
		return err
	}
	sh := s.shardOf(acc)
	if sh == nil {
		return nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if bit := bitOf(sit); bit != 0 {
		if r, ok := sh.dialogs[d]; ok {
			if r.replies &^= bit; r.replies == 0 && !r.closed {
				delete(sh.dialogs, d)
			} else {
				sh.dialogs[d] = r
			}
		}
		return nil
	}
	delete(sh.otherReplies, replyKey{dialog: d, situation: sit})
	return nil
}

// ClaimEvent implements [store.Events], keeping at for PruneEvents. An
// empty account or key, or an invalid job, fail with [store.ErrInvalid].
func (s *Store) ClaimEvent(_ context.Context, acc bd.AccountID, key string, at time.Time, then ...store.Job) (bool, error) {
	const op = "claim event"
	if err := checkAccount(op, acc); err != nil {
		return false, err
	}
	if key == "" {
		return false, invalid(op, "key is empty")
	}
	if err := store.CheckJobs(then); err != nil {
		return false, fmt.Errorf("memory: %s: %w", op, err)
	}
	if !s.claimEvent(acc, key, at) {
		return false, nil
	}
	s.submit(then)
	return true, nil
}

func (s *Store) claimEvent(acc bd.AccountID, key string, at time.Time) bool {
	return s.shardFor(acc).events.claim(key, at)
}

// PruneEvents implements [store.Events]. It visits the accounts one at a
// time, so claims racing with it are either pruned or kept whole.
func (s *Store) PruneEvents(_ context.Context, before time.Time) (int, error) {
	n := 0
	limit := unixNanos(before)
	s.shards.Range(func(_, v any) bool {
		sh := v.(*shard)
		n += sh.events.prune(limit)
		sh.mu.Lock()
		for d, r := range sh.dialogs {
			if r.closed && r.closedAt < limit {
				delete(sh.dialogs, d)
				if len(sh.otherReplies) == 0 {
					continue
				}
				for k := range sh.otherReplies {
					if k.dialog == d {
						delete(sh.otherReplies, k)
					}
				}
			}
		}
		sh.mu.Unlock()
		return true
	})
	return n, nil
}

// eventClaims keeps a shard's claimed event keys with when each was
// claimed. A key is found by its 64-bit hash and its bytes are kept in one
// buffer, so that the table, which holds every claim until it is pruned,
// holds no pointer for the collector to follow and grows by moving
// integers instead of hashing again strings scattered over the heap. A
// key whose hash another key claimed first is kept apart, by itself.
//
// The claims have a lock of their own: they share nothing with the rest
// of the account, and an event source claiming keys (into a table that
// now and then grows) should not hold up the workers' decisions.
type eventClaims struct {
	mu     sync.Mutex
	seed   maphash.Seed
	byHash map[uint64]eventClaim
	keys   []byte // the keys of byHash, one after another
	others map[string]int64
}

// eventClaim is a claim in byHash: its key is keys[off:off+n], at is when
// it was claimed, in Unix nanoseconds.
type eventClaim struct {
	off, n int
	at     int64
}

func newEventClaims() eventClaims {
	return eventClaims{seed: maphash.MakeSeed(), byHash: make(map[uint64]eventClaim), others: make(map[string]int64)}
}

// key returns the key of e.
func (c *eventClaims) key(e eventClaim) []byte { return c.keys[e.off : e.off+e.n] }

// claim claims key at the given time and reports whether it was free.
func (c *eventClaims) claim(key string, at time.Time) bool {
	h := maphash.String(c.seed, key)
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, taken := c.byHash[h]
	if taken && string(c.key(prev)) == key {
		return false
	}
	if len(c.others) > 0 {
		if _, ok := c.others[key]; ok {
			return false
		}
	}
	if taken {
		c.others[key] = unixNanos(at)
	} else {
		c.byHash[h] = eventClaim{off: len(c.keys), n: len(key), at: unixNanos(at)}
		c.keys = append(c.keys, key...)
	}
	return true
}

// prune forgets the claims made before limit (Unix nanoseconds) and
// returns how many; the keys kept move to a new buffer.
func (c *eventClaims) prune(limit int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	kept := 0
	for h, e := range c.byHash {
		if e.at < limit {
			delete(c.byHash, h)
			n++
		} else {
			kept += e.n
		}
	}
	if n > 0 {
		keys := make([]byte, 0, kept)
		for h, e := range c.byHash {
			off := len(keys)
			keys = append(keys, c.key(e)...)
			e.off = off
			c.byHash[h] = e
		}
		c.keys = keys
	}
	for k, at := range c.others {
		if at < limit {
			delete(c.others, k)
			n++
		}
	}
	return n
}
