package fleet_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

// idle is a store whose Work does no job: the fleet over it runs streams
// and stores jobs, and leaves every job to the other fleets.
type idle struct{ *memory.Store }

func (idle) Work(ctx context.Context, _ store.JobHandler, _ store.WorkOptions) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestRosterWithoutStream: the jobs of an account whose stream runs in
// another member are decided with a roster read through Parts.Roster,
// before the first job and again once it is older than WithRosterRefresh;
// a first read that fails leaves the job to a later attempt rather than
// deciding as if nobody were online.
func TestRosterWithoutStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1)
		const acc = bd.AccountID("shop-0")
		// a runs the stream and does no job.
		a, err := fleet.New(idle{w.st}, fleet.WithBuild(w.build("a")), fleet.WithMember("a"),
			fleet.WithLeaseTTL(time.Second), fleet.WithRescan(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		defer func() { cancel(); <-done }()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := a.Holding(); len(got) != 1 {
			t.Fatalf("a holds %v, want the account", got)
		}

		// b does every job and never runs the stream; its roster comes
		// from Parts.Roster, failing the first time.
		var reads, failures atomic.Int64
		failures.Store(1)
		build := func(ctx context.Context, ac bd.Account) (fleet.Parts, error) {
			p, err := w.build("b")(ctx, ac)
			p.Roster = func(ctx context.Context, t mgsource.Target) error {
				reads.Add(1)
				if failures.Add(-1) >= 0 {
					return errors.New("MessageGateway unreachable")
				}
				return t.SetRoster(ctx, []bd.Manager{{ID: 1, FirstName: "Ann", Online: true, Active: true}, {ID: 2, Online: true, Active: true}})
			}
			return p, err
		}
		var failed atomic.Int64
		b, _ := start(t, w, "b", fleet.WithBuild(build), fleet.WithRosterRefresh(5*time.Second),
			fleet.WithHooks(fleet.Hooks{Failed: func(_ bd.AccountID, op string, _ error) {
				if op == "roster" {
					failed.Add(1)
				}
			}}))
		// b's first job (the drain a's roster asked for) reads the roster:
		// once failing, once again for its next attempt.
		time.Sleep(time.Second)
		synctest.Wait()
		if got := b.Holding(); len(got) != 0 {
			t.Fatalf("b holds %v, want nothing", got)
		}
		if n := reads.Load(); n != 2 {
			t.Errorf("the roster was read %d times for the first jobs, want twice (one failure, one success)", n)
		}
		if n := failed.Load(); n != 1 {
			t.Errorf("Hooks.Failed saw %d roster failures, want 1", n)
		}
		open := func(from, to int) {
			for id := from; id <= to; id++ {
				w.feeds[acc] <- distributor.Event{Kind: distributor.DialogOpened, Account: acc, Dialog: bd.Dialog{ID: bd.DialogID(id), Chat: bd.ChatID(id)}}
			}
		}
		// Within the refresh interval no job reads it again; after it, one does.
		open(1, 10)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := reads.Load(); n != 2 {
			t.Errorf("the roster was read %d times within the refresh interval, want still 2", n)
		}
		time.Sleep(4 * time.Second)
		open(11, 20)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := reads.Load(); n != 3 {
			t.Errorf("the roster was read %d times after the refresh interval, want 3", n)
		}
		seen := map[bd.DialogID]int{}
		for _, c := range w.gw.Calls() {
			if _, ok := c.To.Manager(); !ok {
				t.Errorf("dialog %d went to %v, want a manager", c.Dialog, c.To)
			}
			seen[c.Dialog]++
		}
		for id := bd.DialogID(1); id <= 20; id++ {
			if seen[id] != 1 {
				t.Errorf("dialog %d was assigned %d times, want once", id, seen[id])
			}
		}
		if q, err := w.st.QueueLen(context.Background(), acc); err != nil || q != 0 {
			t.Errorf("%d dialogs wait (%v), want none: every manager is online", q, err)
		}
	})
}
