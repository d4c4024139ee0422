package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// TestIdleQueueCost measures what an idle Work of many accounts costs on
// PostgreSQL: the statements the database ran (xact_commit of
// pg_stat_database, which counts every autocommitted statement; the whole
// database, so other clients add to it) and this process's CPU time, over
// 5 seconds with no job, for one queue per account and for the shared
// queue (WithSharedQueue). It runs when BOTDISTRIBUTOR_SQLSTORE_IDLE
// holds the number of accounts, e.g. 300. A measurement, not a check.
func TestIdleQueueCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("BOTDISTRIBUTOR_SQLSTORE_IDLE"))
	if n <= 0 {
		t.Skip("a measurement: set BOTDISTRIBUTOR_SQLSTORE_IDLE to the number of accounts, e.g. 300")
	}
	for _, shared := range []bool{false, true} {
		db := newPostgresDB(t)
		db.SetMaxOpenConns(20)
		var opts []sqlstore.Option
		if shared {
			opts = append(opts, sqlstore.WithSharedQueue())
		}
		s := open(t, db, sqlstore.Postgres, opts...)
		var wo store.WorkOptions
		if !shared {
			for i := range n {
				wo.Accounts = append(wo.Accounts, bd.AccountID(fmt.Sprintf("shop-%d", i)))
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Work(ctx, func(context.Context, store.Job) error { return nil }, wo) }()
		time.Sleep(2 * time.Second) // let River start its producers
		commits := func() int64 {
			var c int64
			if err := db.QueryRow(`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		c0, u0 := commits(), cpu()
		const window = 5 * time.Second
		time.Sleep(window) // the measurement window
		c1, u1 := commits(), cpu()
		cancel()
		<-done
		layout := "one queue per account"
		if shared {
			layout = "shared queue"
		}
		t.Logf("%d accounts, %s: %.0f statements/s, %.0f ms CPU/s in this process",
			n, layout, float64(c1-c0)/window.Seconds(), float64((u1-u0).Milliseconds())/window.Seconds())
	}
}

// cpu returns the process's user and system CPU time.
func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
