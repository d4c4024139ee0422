// Package storetest is the conformance suite every [store.Store]
// implementation runs, so that the memory store, the SQL stores and a user's
// own store keep the same contract.
//
// An implementation's test calls [Run] with a constructor:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s := mystore.Open(...)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Every case is a named subtest (for example "Assign/Capacity") that asks the
// constructor for a fresh store, so a single case can be rerun with
// go test -run. Cases also use account ids unique to the subtest and the
// process, so a store whose data outlives the subtest (a shared database)
// still sees each case start from nothing; the one exception is
// "Events/Prune", which counts what PruneEvents forgets across the whole
// store and so needs a store holding no event claims but its own.
// Constructors should register their cleanup with t.Cleanup. The cases run
// one after another unless [WithConcurrency] says otherwise.
//
// Where the interface documentation leaves room, the suite settles it:
//
//   - Requests fail with store.ErrInvalid for an empty account (or account
//     id), a zero dialog or customer id, a zero responsible or a negative
//     capacity in Assign, and an empty event key.
//   - A bot is no manager: assigning to a bot ignores capacity, adds to no
//     manager's load and does not change the customer's last manager.
//   - Release and Record to nobody keep the customer's last manager.
//   - Ids are per account: the same dialog, customer, manager or event key
//     in two accounts are unrelated.
//   - Accounts lists accounts in byte order of their ids.
//   - Collections come back as copies: changing a returned slice or map, or
//     one passed in, does not change what the store holds. An empty slice
//     or map may come back as nil and the other way round.
//
// The suite checks behaviour through the [store.Store] interface only:
// sentinel errors are matched with errors.Is, so implementations may wrap
// them; times are compared with time.Time.Equal and the suite's own times
// carry microsecond precision and no monotonic reading, so stores that keep
// less (SQL columns) pass. Several cases race many goroutines against one
// store and are meant to run under the race detector as well.
package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/internal/option"
	"github.com/botdistributor/botdistributor/store"
)

// Option tunes the suite for the store under test; pass options to [Run].
// Run fails the test at once on an option's bad argument, naming the
// option.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	hammer      int
	concurrency int
}

// DefaultHammer is the number of assignment attempts the invariant hammer
// makes unless [WithHammer] says otherwise.
const DefaultHammer = 10_000

// WithHammer sets how many assignment attempts the invariant hammer races
// against the store. A store with slow writes (a SQL database) may lower
// it, to no less than 64 (one per goroutine); fewer is refused. The default
// (and 0) is [DefaultHammer].
func WithHammer(n int) Option {
	return optionFunc(func(c *config) error {
		switch {
		case n == 0:
			n = DefaultHammer
		case n < hammerGoroutines:
			return fmt.Errorf("WithHammer: %d attempts, want at least %d", n, hammerGoroutines)
		}
		c.hammer = n
		return nil
	})
}

// WithConcurrency runs up to n cases of a group at once instead of one
// after the other, each in its own subtest against its own store, for
// stores whose cases mostly wait (on a database, on a job engine's
// polling). The groups still run one after another, and the invariant
// hammer's cases, which race many goroutines themselves, run alone. The
// cases are subtests started together rather than through t.Parallel, so
// n bounds them, not go test -parallel.
//
// Use it only when newStore returns a store of its own on every call: a
// store whose data outlives the subtest (a shared database) would see
// "Events/Prune" and the Leases cases counting the claims and members of
// the cases beside them. The default (and 0) is 1; a negative n is
// refused.
func WithConcurrency(n int) Option {
	return optionFunc(func(c *config) error {
		switch {
		case n == 0:
			n = 1
		case n < 0:
			return fmt.Errorf("WithConcurrency: %d cases at once, want at least 1", n)
		}
		c.concurrency = n
		return nil
	})
}

// newConfig applies opts and returns the refusals, joined and prefixed
// with "storetest: ".
func newConfig(opts []Option) (config, error) {
	cfg := config{hammer: DefaultHammer, concurrency: 1}
	if err := option.Apply(opts, func(o Option) error { return o.apply(&cfg) }); err != nil {
		return config{}, fmt.Errorf("storetest: %w", err)
	}
	return cfg, nil
}

// Run runs the whole conformance suite against the stores newStore
// returns, tuned by opts (see [Option]; none runs the full suite). newStore
// is called once per subtest and must return a store that is empty, or at
// least has no data under the accounts the subtest uses; it may register
// cleanup with t.Cleanup and should call t.Fatal when it cannot build the
// store.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts ...Option) {
	t.Helper()
	cfg, err := newConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	groups := []struct {
		name  string
		cases []testCase
		alone bool // one case at a time, whatever WithConcurrency says
	}{
		{name: "Assign", cases: assignCases()},
		{name: "Release", cases: releaseCases()},
		{name: "Record", cases: recordCases()},
		{name: "Close", cases: closeCases()},
		{name: "Move", cases: moveCases()},
		{name: "Loads", cases: loadsBufferCases()},
		{name: "Invariants", cases: invariantCases(cfg), alone: true},
		{name: "Queue", cases: queueCases()},
		{name: "Replies", cases: replyCases()},
		{name: "Events", cases: eventCases()},
		{name: "Bindings", cases: bindingCases()},
		{name: "Accounts", cases: accountCases()},
		{name: "Jobs", cases: jobCases()},
		{name: "Leases", cases: leaseCases()},
	}
	runCase := func(t *testing.T, c testCase) {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("storetest: newStore returned nil")
			}
			c.run(t, s)
		})
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			if cfg.concurrency == 1 || g.alone {
				for _, c := range g.cases {
					runCase(t, c)
				}
				return
			}
			// Up to cfg.concurrency cases at once, started in order.
			slots := make(chan struct{}, cfg.concurrency)
			var wg sync.WaitGroup
			for _, c := range g.cases {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() { <-slots }()
					runCase(t, c)
				})
			}
			wg.Wait()
		})
	}
}

// testCase is one named subtest run against a fresh store.
type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// runID tells this process's accounts apart from those of earlier or
// concurrent runs against a shared database.
var runID = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

var accountSeq atomic.Int64

// newAccount returns an account id no other subtest, run or process uses.
func newAccount(t *testing.T) bd.AccountID {
	return bd.AccountID(fmt.Sprintf("storetest-%s-%d-%s", runID, accountSeq.Add(1), t.Name()))
}

// base is the suite's reference time: microsecond precision, UTC, no
// monotonic reading.
var base = time.Date(2025, time.March, 14, 9, 26, 53, 589_793_000, time.UTC)

// at returns base plus d, truncated to microseconds.
func at(d time.Duration) time.Time { return base.Add(d).Truncate(time.Microsecond) }
