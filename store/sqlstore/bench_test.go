package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// benchManagers is how many managers the benchmark's dialogs go to, and how
// many rows the raw updates touch: with more workers than that, workers
// contend for the same rows in both measurements.
const benchManagers = 8

// benchWorkers are the numbers of concurrent workers each benchmark runs.
var benchWorkers = []int{1, 4, 16}

// BenchmarkSQLiteAssignRelease measures Assign+Release cycles on a SQLite
// file in WAL mode, beside single-row UPDATE transactions on the same file
// (writers serialised by a mutex, as every SQLite program's writers must
// be), with synchronous=FULL (the default: every commit waits for the disk)
// and synchronous=NORMAL (commits wait for no disk).
func BenchmarkSQLiteAssignRelease(b *testing.B) {
	for _, mode := range []string{"FULL", "NORMAL"} {
		for _, w := range benchWorkers {
			b.Run(fmt.Sprintf("sync=%s/workers=%d", mode, w), func(b *testing.B) {
				db := openDB(b, "sqlite", sqliteDSN(b, "synchronous("+mode+")"))
				benchAssignRelease(b, sqlstore.SQLite, db, w)
			})
		}
	}
}

// BenchmarkPostgresAssignRelease measures Assign+Release cycles on
// PostgreSQL, beside single-row UPDATE transactions on the same database.
func BenchmarkPostgresAssignRelease(b *testing.B) {
	for _, w := range benchWorkers {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			benchAssignRelease(b, sqlstore.Postgres, openDB(b, "pgx", newPostgresSchema(b)), w)
		})
	}
}

// benchAssignRelease runs b.N cycles (Assign a new dialog to a manager, then
// Release it) on workers goroutines, and as many single-row UPDATE
// transactions on the same database with as many workers, and reports both
// rates and their ratio. A cycle is two committed transactions, so where
// commits dominate the cost a ratio of 0.5 is the most there can be.
func benchAssignRelease(b *testing.B, d sqlstore.Dialect, db *sql.DB, workers int) {
	ctx := context.Background()
	s := open(b, db, d)
	if _, err := db.ExecContext(ctx, `CREATE TABLE bench_raw (id integer NOT NULL PRIMARY KEY, n bigint NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	for id := range benchManagers {
		if _, err := db.ExecContext(ctx, `INSERT INTO bench_raw (id, n) VALUES ($1, 0)`, id); err != nil {
			b.Fatal(err)
		}
	}

	cycle := func(i int64) error {
		a := store.Assignment{
			Account: "bench", Dialog: bd.DialogID(i), Customer: bd.CustomerID(i),
			To: bd.ManagerOf(bd.ManagerID(1 + i%benchManagers)), Capacity: 1 << 30, At: at0,
		}
		if err := s.Assign(ctx, a); err != nil {
			return err
		}
		_, err := s.Release(ctx, a.Account, a.Dialog)
		return err
	}
	var mu sync.Mutex // SQLite only
	update := func(i int64) error {
		if d == sqlstore.SQLite {
			mu.Lock()
			defer mu.Unlock()
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE bench_raw SET n = n + 1 WHERE id = $1`, i%benchManagers); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}

	// The two are measured in alternating rounds, so that a change in the
	// machine's load during the run weighs on both alike.
	const rounds = 8
	var cycleTime, updateTime time.Duration
	var first int64
	b.ResetTimer()
	for r := range int64(rounds) {
		n := int64(b.N)*(r+1)/rounds - int64(b.N)*r/rounds
		b.StartTimer()
		cycleTime += runWorkers(b, workers, first, n, cycle)
		b.StopTimer()
		updateTime += runWorkers(b, workers, first, n, update)
		first += n
	}
	cycles := float64(b.N) / cycleTime.Seconds()
	raw := float64(b.N) / updateTime.Seconds()
	b.ReportMetric(cycles, "cycles/s")
	b.ReportMetric(raw, "raw_updates/s")
	b.ReportMetric(cycles/raw, "ratio")
}

// runWorkers calls op with first+1 .. first+n, spread over workers
// goroutines, and returns how long that took.
func runWorkers(b *testing.B, workers int, first, n int64, op func(i int64) error) time.Duration {
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	next.Store(first)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := next.Add(1)
				if i > first+n {
					return
				}
				if err := op(i); err != nil {
					failed.Store(true)
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if b.Failed() {
		b.FailNow()
	}
	return elapsed
}

// BenchmarkLoads measures Loads of 20 managers into a reused buffer, as a
// distributor deciding a dialog calls it.
func BenchmarkLoads(b *testing.B) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		b.Run(d.String(), func(b *testing.B) {
			var db *sql.DB
			if d == sqlstore.SQLite {
				db = openDB(b, "sqlite", sqliteDSN(b))
			} else {
				db = newPostgresDB(b)
			}
			ctx := context.Background()
			s := open(b, db, d)
			managers := make([]bd.ManagerID, 20)
			for i := range managers {
				managers[i] = bd.ManagerID(i + 1)
				if i%2 == 0 {
					a := store.Assignment{Account: "bench", Dialog: bd.DialogID(i + 1), To: bd.ManagerOf(managers[i]), Capacity: 5, At: at0}
					if err := s.Assign(ctx, a); err != nil {
						b.Fatal(err)
					}
				}
			}
			var buf []store.Load
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = s.Loads(ctx, "bench", managers, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClose measures Close of a dialog a manager holds, one worker:
// each iteration assigns a new dialog and closes it.
func BenchmarkClose(b *testing.B) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres} {
		b.Run(d.String(), func(b *testing.B) {
			var db *sql.DB
			if d == sqlstore.SQLite {
				db = openDB(b, "sqlite", sqliteDSN(b, "synchronous(NORMAL)"))
			} else {
				db = newPostgresDB(b)
			}
			ctx := context.Background()
			s := open(b, db, d)
			var assignTime, closeTime time.Duration
			for i := 1; b.Loop(); i++ {
				a := store.Assignment{Account: "bench", Dialog: bd.DialogID(i), To: bd.ManagerOf(bd.ManagerID(1 + i%benchManagers)), Capacity: 1 << 30, At: at0}
				start := time.Now()
				if err := s.Assign(ctx, a); err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if _, err := s.Close(ctx, a.Account, a.Dialog, at0); err != nil {
					b.Fatal(err)
				}
				assignTime += mid.Sub(start)
				closeTime += time.Since(mid)
			}
			b.ReportMetric(assignTime.Seconds()*1e6/float64(b.N), "assign_µs/op")
			b.ReportMetric(closeTime.Seconds()*1e6/float64(b.N), "close_µs/op")
		})
	}
}
