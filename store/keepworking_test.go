package store_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

// failingWork is a store whose Work fails the first n times, then works
// until its context ends.
type failingWork struct {
	*memory.Store
	n      int
	starts []time.Time
}

func (f *failingWork) Work(ctx context.Context, h store.JobHandler, o store.WorkOptions) error {
	f.starts = append(f.starts, time.Now())
	if len(f.starts) <= f.n {
		return errors.New("database unreachable")
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestKeepWorkingStartsAgainAfterAPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &failingWork{Store: memory.New(), n: 3}
		ctx, cancel := context.WithCancel(t.Context())
		var pauses []time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			store.KeepWorking(ctx, f, func(context.Context, store.Job) error { return nil }, store.WorkOptions{},
				func(err error, pause time.Duration) { pauses = append(pauses, pause) })
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		if len(f.starts) != 4 {
			t.Fatalf("Work started %d times, want 4 (3 failures, then running)", len(f.starts))
		}
		want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
		if len(pauses) != len(want) {
			t.Fatalf("pauses %v, want %v", pauses, want)
		}
		for i, p := range want {
			if pauses[i] != p || f.starts[i+1].Sub(f.starts[i]) != p {
				t.Fatalf("pause %d: told %v, waited %v; want %v", i, pauses[i], f.starts[i+1].Sub(f.starts[i]), p)
			}
		}
		cancel()
		<-done // returns once ctx ended
	})
}
