package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// pickupRate is the load BenchmarkJobPickup offers: jobs per second, each
// submitted in a transaction of its own.
const pickupRate = 200

// BenchmarkJobPickup measures how long a job waits between the commit that
// stores it and the start of its handler, with jobs submitted at 200 per
// second to a running Work: the latency River's fetching adds to every job.
// It reports the median and 99th percentile. Run it with a fixed count, e.g.
//
//	BOTDISTRIBUTOR_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test ./store/sqlstore/ -run '^$' -bench BenchmarkJobPickup -benchtime 1000x
func BenchmarkJobPickup(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchPickup(b, sqlstore.SQLite, openDB(b, "sqlite", sqliteDSN(b)))
	})
	b.Run("postgres/poll", func(b *testing.B) {
		benchPickup(b, sqlstore.Postgres, newPostgresDB(b))
	})
	for _, rate := range []int{pickupRate, 0} {
		name := "postgres/listen"
		if rate == 0 {
			name += "/burst"
		}
		b.Run(name, func(b *testing.B) {
			dsn := migratedPostgresSchema(b)
			pool, err := pgxpool.New(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			benchPickupAt(b, rate, sqlstore.Postgres, openDB(b, "pgx", dsn), sqlstore.WithPgxListener(pool))
		})
	}
}

func benchPickup(b *testing.B, d sqlstore.Dialect, db *sql.DB, opts ...sqlstore.Option) {
	benchPickupAt(b, pickupRate, d, db, opts...)
}

// benchPickupAt submits b.N jobs at rate per second, or one after another
// as fast as they commit when rate is 0 (a burst).
func benchPickupAt(b *testing.B, rate int, d sqlstore.Dialect, db *sql.DB, opts ...sqlstore.Option) {
	ctx := context.Background()
	s := open(b, db, d, opts...)
	var (
		mu        sync.Mutex
		committed = make(map[bd.DialogID]time.Time)
		waits     []time.Duration
		done      = make(chan struct{}, b.N)
	)
	h := func(_ context.Context, j store.Job) error {
		started := time.Now()
		mu.Lock()
		at, ok := committed[j.Dialog.ID]
		if ok {
			waits = append(waits, max(started.Sub(at), 0))
		}
		mu.Unlock()
		if !ok {
			// Submit has not returned yet: the commit is only just done.
			mu.Lock()
			waits = append(waits, 0)
			mu.Unlock()
		}
		done <- struct{}{}
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- s.Work(wctx, h, store.WorkOptions{Accounts: []bd.AccountID{"bench"}}) }()
	defer func() {
		cancel()
		if err := <-stopped; !errors.Is(err, context.Canceled) {
			b.Errorf("Work returned %v", err)
		}
	}()
	// Let the worker start (River elects a leader, starts its producers).
	warm := store.Job{Kind: store.JobBind, Account: "bench", Dialog: bd.Dialog{ID: 1 << 40}}
	if err := s.Submit(ctx, warm); err != nil {
		b.Fatal(err)
	}
	<-done
	mu.Lock()
	waits = waits[:0]
	mu.Unlock()

	b.ResetTimer()
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		tick = t.C
	}
	for i := range b.N {
		if tick != nil {
			<-tick
		}
		id := bd.DialogID(i + 1)
		if err := s.Submit(ctx, store.Job{Kind: store.JobBind, Account: "bench", Dialog: bd.Dialog{ID: id}}); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		committed[id] = time.Now()
		mu.Unlock()
	}
	for range b.N {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatal("jobs not picked up within 30s")
		}
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(waits)
	q := func(p float64) float64 {
		return float64(waits[min(int(p*float64(len(waits))), len(waits)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}
