package memory

import (
	"context"
	"fmt"
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
	if bit := bitOf(sit); bit != 0 {
		bits := sh.replies[d]
		if bits&bit != 0 {
			return false
		}
		sh.replies[d] = bits | bit
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
		if bits, ok := sh.replies[d]; ok {
			if bits &^= bit; bits == 0 {
				delete(sh.replies, d)
			} else {
				sh.replies[d] = bits
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
	sh := s.shardFor(acc)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.events[key]; ok {
		return false
	}
	sh.events[key] = at
	return true
}

// PruneEvents implements [store.Events]. It visits the accounts one at a
// time, so claims racing with it are either pruned or kept whole.
func (s *Store) PruneEvents(_ context.Context, before time.Time) (int, error) {
	n := 0
	s.shards.Range(func(_, v any) bool {
		sh := v.(*shard)
		sh.mu.Lock()
		for k, at := range sh.events {
			if at.Before(before) {
				delete(sh.events, k)
				n++
			}
		}
		for d, at := range sh.closed {
			if at.Before(before) {
				delete(sh.closed, d)
				delete(sh.replies, d)
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
