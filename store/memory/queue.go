package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

var errNotWaiting = fmt.Errorf("%w: memory: the dialog is not waiting", store.ErrNotFound)

// queueKey is what orders a waiting dialog.
type queueKey struct {
	priority int
	since    time.Time
	dialog   bd.DialogID
}

// compareKeys orders keys as the queue does: higher priority first, then
// older since, then lower dialog id.
func compareKeys(a, b queueKey) int {
	if c := cmp.Compare(b.priority, a.priority); c != 0 {
		return c
	}
	if c := a.since.Compare(b.since); c != 0 {
		return c
	}
	return cmp.Compare(a.dialog, b.dialog)
}

// queue is one account's waiting dialogs, kept sorted in queue order.
// Entries are pointers so that inserting and removing move words, not
// whole records.
type queue struct {
	entries []*store.Waiting
	// pos finds the key of a waiting dialog, which finds its entry by
	// binary search.
	pos map[bd.DialogID]queueKey
}

func keyOf(w *store.Waiting) queueKey {
	return queueKey{priority: w.Priority, since: w.Since, dialog: w.Dialog.ID}
}

// search returns where k is, or would be, in the queue.
func (q *queue) search(k queueKey) (int, bool) {
	return slices.BinarySearchFunc(q.entries, k, func(w *store.Waiting, k queueKey) int {
		return compareKeys(keyOf(w), k)
	})
}

// Enqueue implements [store.Queue]. The queue is ordered by the wall clock
// of Since (a monotonic clock reading is dropped). An empty account or a
// non-positive dialog id fail with [store.ErrInvalid].
func (s *Store) Enqueue(_ context.Context, w store.Waiting, then ...store.Job) (bool, error) {
	if err := checkDialog("enqueue", w.Dialog.Account, w.Dialog.ID); err != nil {
		return false, err
	}
	if err := store.CheckJobs(then); err != nil {
		return false, fmt.Errorf("memory: enqueue: %w", err)
	}
	added, err := s.enqueue(w)
	if err != nil {
		return false, err
	}
	s.submit(then)
	return added, nil
}

func (s *Store) enqueue(w store.Waiting) (bool, error) {
	w.Since = w.Since.Round(0)
	sh := s.shardFor(w.Dialog.Account)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.isClosed(w.Dialog.ID) {
		return false, closedErr(w.Dialog.ID)
	}
	q := &sh.queue
	if _, ok := q.pos[w.Dialog.ID]; ok {
		return false, nil
	}
	k := keyOf(&w)
	i, _ := q.search(k)
	q.entries = slices.Insert(q.entries, i, &w)
	q.pos[w.Dialog.ID] = k
	return true, nil
}

// Waiting implements [store.Queue]. A limit of zero returns nothing; a
// negative limit fails with [store.ErrInvalid].
func (s *Store) Waiting(_ context.Context, acc bd.AccountID, limit int) ([]store.Waiting, error) {
	if err := checkAccount("waiting", acc); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, invalid("waiting", "limit must not be negative, got %d", limit)
	}
	sh := s.shardOf(acc)
	if sh == nil {
		return nil, nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := min(limit, len(sh.queue.entries))
	if n == 0 {
		return nil, nil
	}
	out := make([]store.Waiting, n)
	for i, w := range sh.queue.entries[:n] {
		out[i] = *w
	}
	return out, nil
}

// Dequeue implements [store.Queue]; it fails with [store.ErrNotFound] when
// the dialog is not waiting.
func (s *Store) Dequeue(_ context.Context, acc bd.AccountID, d bd.DialogID) error {
	if err := checkDialog("dequeue", acc, d); err != nil {
		return err
	}
	sh := s.shardOf(acc)
	if sh == nil {
		return errNotWaiting
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !sh.queue.remove(d) {
		return errNotWaiting
	}
	return nil
}

// Waits implements [store.Queue]. An empty account or a non-positive dialog
// id fail with [store.ErrInvalid].
func (s *Store) Waits(_ context.Context, acc bd.AccountID, d bd.DialogID) (bool, error) {
	if err := checkDialog("waits", acc, d); err != nil {
		return false, err
	}
	sh := s.shardOf(acc)
	if sh == nil {
		return false, nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, ok := sh.queue.pos[d]
	return ok, nil
}

// remove takes d out of the queue and reports whether it was waiting.
// Callers hold the shard's lock.
func (q *queue) remove(d bd.DialogID) bool {
	k, ok := q.pos[d]
	if !ok {
		return false
	}
	i, found := q.search(k)
	if !found {
		// The entries and pos are changed together under the lock.
		panic("memory: waiting queue index out of step with its entries")
	}
	q.entries = slices.Delete(q.entries, i, i+1)
	delete(q.pos, d)
	return true
}

// QueueLen implements [store.Queue].
func (s *Store) QueueLen(_ context.Context, acc bd.AccountID) (int, error) {
	if err := checkAccount("queue length", acc); err != nil {
		return 0, err
	}
	sh := s.shardOf(acc)
	if sh == nil {
		return 0, nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.queue.entries), nil
}
