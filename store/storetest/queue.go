package storetest

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

func queueCases() []testCase {
	return []testCase{
		{"EnqueueOnce", testEnqueueOnce},
		{"EnqueueRace", testEnqueueRace},
		{"Order", testQueueOrder},
		{"Limit", testQueueLimit},
		{"Dequeue", testDequeue},
		{"Waits", testWaits},
		{"RoundTrip", testQueueRoundTrip},
		{"AccountsIsolated", testQueueAccountsIsolated},
		{"Empty", testQueueEmpty},
		{"Invalid", testQueueInvalid},
	}
}

// waiting returns a queue entry of dialog d.
func waiting(acc bd.AccountID, d bd.DialogID, priority int, since time.Time) store.Waiting {
	return store.Waiting{
		Dialog:   bd.Dialog{Account: acc, ID: d, Chat: bd.ChatID(d) * 10, Channel: 3, Customer: bd.Customer{ID: bd.CustomerID(d) * 100}, OpenedAt: since},
		Reason:   bd.AllManagersBusy,
		Priority: priority,
		Since:    since,
	}
}

func enqueue(t *testing.T, s store.Store, w store.Waiting) {
	t.Helper()
	added, err := s.Enqueue(t.Context(), w)
	noErr(t, err, "Enqueue(%d)", w.Dialog.ID)
	if !added {
		t.Fatalf("Enqueue(%d) of a dialog not waiting reported added = false", w.Dialog.ID)
	}
}

// queued returns the dialog ids Waiting lists, in its order.
func queued(t *testing.T, s store.Store, acc bd.AccountID, limit int) []bd.DialogID {
	t.Helper()
	ws, err := s.Waiting(t.Context(), acc, limit)
	noErr(t, err, "Waiting(limit %d)", limit)
	ids := make([]bd.DialogID, len(ws))
	for i, w := range ws {
		if w.Dialog.Account != acc {
			t.Fatalf("Waiting of account %q returned a dialog of account %q", acc, w.Dialog.Account)
		}
		ids[i] = w.Dialog.ID
	}
	return ids
}

func wantQueued(t *testing.T, s store.Store, acc bd.AccountID, limit int, want ...bd.DialogID) {
	t.Helper()
	if got := queued(t, s, acc, limit); !slices.Equal(got, want) {
		t.Fatalf("Waiting(limit %d) = %v, want %v", limit, got, want)
	}
}

func wantQueueLen(t *testing.T, s store.Store, acc bd.AccountID, want int) {
	t.Helper()
	n, err := s.QueueLen(t.Context(), acc)
	noErr(t, err, "QueueLen")
	if n != want {
		t.Fatalf("QueueLen = %d, want %d", n, want)
	}
}

func testEnqueueOnce(t *testing.T, s store.Store) {
	acc := newAccount(t)
	first := waiting(acc, 1, 0, at(0))
	enqueue(t, s, first)

	again := waiting(acc, 1, 5, at(time.Hour))
	again.Reason = bd.OutsideWorkingHours
	added, err := s.Enqueue(t.Context(), again)
	noErr(t, err, "second Enqueue(1)")
	if added {
		t.Fatal("second Enqueue(1) of a waiting dialog reported added = true")
	}
	wantQueueLen(t, s, acc, 1)
	ws, err := s.Waiting(t.Context(), acc, 10)
	noErr(t, err, "Waiting")
	if len(ws) != 1 || ws[0].Priority != 0 || ws[0].Reason != bd.AllManagersBusy || !ws[0].Since.Equal(at(0)) {
		t.Fatalf("Waiting = %+v, want only the first entry unchanged", ws)
	}
}

func testEnqueueRace(t *testing.T, s store.Store) {
	acc := newAccount(t)
	const goroutines = 32
	var (
		wins  atomic.Int64
		start = make(chan struct{})
		wg    sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for d := bd.DialogID(1); d <= 4; d++ {
				added, err := s.Enqueue(t.Context(), waiting(acc, d, g, at(time.Duration(g)*time.Second)))
				if err != nil {
					t.Errorf("Enqueue(%d): %v", d, err)
					return
				}
				if added {
					wins.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if got := wins.Load(); got != 4 {
		t.Fatalf("%d goroutines enqueueing 4 dialogs were told added %d times, want 4", goroutines, got)
	}
	wantQueueLen(t, s, acc, 4)
}

func testQueueOrder(t *testing.T, s store.Store) {
	acc := newAccount(t)
	// Enqueued out of order; the comment gives each one's place.
	for _, w := range []store.Waiting{
		waiting(acc, 40, 0, at(2*time.Minute)),   // 7: normal, newest
		waiting(acc, 7, 1, at(3*time.Minute)),    // 2: high priority, newer
		waiting(acc, 30, 0, at(time.Minute)),     // 6: normal, same time as 20 and 25, largest id
		waiting(acc, 50, -1, at(-time.Hour)),     // 8: low priority however old
		waiting(acc, 20, 0, at(time.Minute)),     // 4: normal, same time as 25 and 30, smallest id
		waiting(acc, 9, 1, at(0)),                // 1: high priority, older
		waiting(acc, 60, 0, at(-time.Minute)),    // 3: normal, oldest
		waiting(acc, 10, -1, at(-time.Hour+1e3)), // 9: low priority, a microsecond newer than 50
		waiting(acc, 25, 0, at(time.Minute)),     // 5: normal, same time as 20 and 30
	} {
		enqueue(t, s, w)
	}
	wantQueued(t, s, acc, 100, 9, 7, 60, 20, 25, 30, 40, 50, 10)
	wantQueueLen(t, s, acc, 9)
}

func testQueueLimit(t *testing.T, s store.Store) {
	acc := newAccount(t)
	for d := bd.DialogID(1); d <= 5; d++ {
		enqueue(t, s, waiting(acc, d, 0, at(time.Duration(d)*time.Second)))
	}
	wantQueued(t, s, acc, 1, 1)
	wantQueued(t, s, acc, 3, 1, 2, 3)
	wantQueued(t, s, acc, 5, 1, 2, 3, 4, 5)
	wantQueued(t, s, acc, 50, 1, 2, 3, 4, 5)
}

func testDequeue(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	for d := bd.DialogID(1); d <= 4; d++ {
		enqueue(t, s, waiting(acc, d, 0, at(time.Duration(d)*time.Second)))
	}
	noErr(t, s.Dequeue(ctx, acc, 2), "Dequeue(2)")
	wantQueued(t, s, acc, 10, 1, 3, 4)
	wantQueueLen(t, s, acc, 3)
	isErr(t, s.Dequeue(ctx, acc, 2), store.ErrNotFound, "second Dequeue(2)")
	isErr(t, s.Dequeue(ctx, acc, 99), store.ErrNotFound, "Dequeue of a dialog never queued")

	// A dequeued dialog may wait again, in its new place.
	enqueue(t, s, waiting(acc, 2, 0, at(time.Hour)))
	wantQueued(t, s, acc, 10, 1, 3, 4, 2)
	for _, d := range []bd.DialogID{1, 2, 3, 4} {
		noErr(t, s.Dequeue(ctx, acc, d), "Dequeue(%d)", d)
	}
	wantQueued(t, s, acc, 10)
	wantQueueLen(t, s, acc, 0)
}

func testWaits(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	waits := func(d bd.DialogID, want bool) {
		t.Helper()
		got, err := s.Waits(ctx, acc, d)
		noErr(t, err, "Waits(%d)", d)
		if got != want {
			t.Fatalf("Waits(%d) = %v, want %v", d, got, want)
		}
	}
	waits(1, false)
	enqueue(t, s, waiting(acc, 1, 0, at(0)))
	waits(1, true)
	waits(2, false)
	other := newAccount(t)
	if got, err := s.Waits(ctx, other, 1); err != nil || got {
		t.Fatalf("Waits of another account's dialog = %v, %v; want false", got, err)
	}
	noErr(t, s.Dequeue(ctx, acc, 1), "Dequeue(1)")
	waits(1, false)
	enqueue(t, s, waiting(acc, 3, 0, at(0)))
	_, err := s.Close(ctx, acc, 3, at(time.Second))
	noErr(t, err, "Close(3)")
	waits(3, false)
	_, err = s.Waits(ctx, acc, 0)
	isErr(t, err, store.ErrInvalid, "Waits of dialog 0")
	_, err = s.Waits(ctx, "", 1)
	isErr(t, err, store.ErrInvalid, "Waits of an empty account")
}

func testQueueRoundTrip(t *testing.T, s store.Store) {
	acc := newAccount(t)
	opened := at(-3*time.Hour - 17*time.Microsecond).In(time.FixedZone("MSK", 3*60*60))
	want := store.Waiting{
		Dialog: bd.Dialog{
			Account: acc,
			ID:      123456789012,
			Chat:    987654321098,
			Channel: 55,
			Customer: bd.Customer{
				ID:        4242424242,
				FirstName: "Анна-Мария",
				LastName:  "O'Brien \"Jr\"",
				Phone:     "+7 (912) 345-67-89",
				Email:     "Anna.Maria+shop@Example.COM",
			},
			OpenedAt: opened,
		},
		Reason:   bd.OutsideWorkingHours,
		Priority: 7,
		Since:    at(-time.Hour),
	}
	enqueue(t, s, want)
	ws, err := s.Waiting(t.Context(), acc, 1)
	noErr(t, err, "Waiting")
	if len(ws) != 1 {
		t.Fatalf("Waiting returned %d entries, want 1", len(ws))
	}
	got := ws[0]
	if !got.Dialog.OpenedAt.Equal(want.Dialog.OpenedAt) || !got.Since.Equal(want.Since) {
		t.Fatalf("times changed: OpenedAt %v, Since %v; want %v, %v", got.Dialog.OpenedAt, got.Since, want.Dialog.OpenedAt, want.Since)
	}
	got.Dialog.OpenedAt, got.Since = want.Dialog.OpenedAt, want.Since
	if got != want {
		t.Fatalf("Waiting returned\n%+v\nwant\n%+v", got, want)
	}
}

func testQueueAccountsIsolated(t *testing.T, s store.Store) {
	a1, a2 := newAccount(t), newAccount(t)
	enqueue(t, s, waiting(a1, 1, 0, at(0)))
	enqueue(t, s, waiting(a1, 2, 0, at(time.Second)))
	// The same dialog id in another account is another dialog.
	enqueue(t, s, waiting(a2, 1, 0, at(0)))
	wantQueueLen(t, s, a1, 2)
	wantQueueLen(t, s, a2, 1)
	noErr(t, s.Dequeue(t.Context(), a2, 1), "Dequeue(1) in the second account")
	wantQueued(t, s, a1, 10, 1, 2)
	wantQueued(t, s, a2, 10)
}

func testQueueEmpty(t *testing.T, s store.Store) {
	acc := newAccount(t)
	wantQueueLen(t, s, acc, 0)
	wantQueued(t, s, acc, 10)
	isErr(t, s.Dequeue(t.Context(), acc, 1), store.ErrNotFound, "Dequeue from an empty queue")
}

func testQueueInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	acc := newAccount(t)
	_, err := s.Enqueue(ctx, waiting("", 1, 0, at(0)))
	isErr(t, err, store.ErrInvalid, "Enqueue with an empty account")
	_, err = s.Enqueue(ctx, waiting(acc, 0, 0, at(0)))
	isErr(t, err, store.ErrInvalid, "Enqueue of dialog 0")
	wantQueueLen(t, s, acc, 0)
	if err := s.Dequeue(ctx, "", 1); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Dequeue with an empty account: error = %v, want ErrInvalid or ErrNotFound", err)
	}
}
