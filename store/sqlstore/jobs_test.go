package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// startWork runs s.Work until the test ends and checks that it returns
// context.Canceled then.
func startWork(t *testing.T, s *sqlstore.Store, h store.JobHandler, o store.WorkOptions) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Work(ctx, h, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Work returned %v, want context.Canceled", err)
		}
	})
}

// testTwoStores works one stream of jobs with two stores over two pools,
// as two processes would: every job runs, none twice at once, and a Work of
// every account started on the second store before the first store ever
// stored a job of the account finds that account's queue.
func testTwoStores(t *testing.T, d sqlstore.Dialect, dbA, dbB *sql.DB) {
	ctx := t.Context()
	a, b := open(t, dbA, d), open(t, dbB, d)
	const jobs = 60
	var (
		mu      sync.Mutex
		running = map[int64]bool{}
		ran     = map[bd.DialogID]int{}
		twice   []bd.DialogID
		all     = make(chan struct{}, 4*jobs)
	)
	h := func(ctx context.Context, j store.Job) error {
		mu.Lock()
		if running[j.ID] {
			twice = append(twice, j.Dialog.ID)
		}
		running[j.ID] = true
		mu.Unlock()
		time.Sleep(time.Millisecond) // hold the job a moment
		mu.Lock()
		delete(running, j.ID)
		ran[j.Dialog.ID]++
		mu.Unlock()
		all <- struct{}{}
		return nil
	}
	startWork(t, a, h, store.WorkOptions{Accounts: []bd.AccountID{"shop"}, Workers: 4})
	startWork(t, b, h, store.WorkOptions{Workers: 4}) // every account, none known yet
	for i := range jobs {
		s := a
		if i%2 == 1 {
			s = b
		}
		if err := s.Submit(ctx, store.Job{Kind: store.JobDistribute, Account: "shop", Dialog: bd.Dialog{ID: bd.DialogID(i + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	for range jobs {
		select {
		case <-all:
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d jobs ran within 30s", len(ran), jobs)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(twice) > 0 {
		t.Errorf("jobs of dialogs %v ran twice at once", twice)
	}
	for id := bd.DialogID(1); id <= jobs; id++ {
		if ran[id] != 1 {
			t.Errorf("the job of dialog %d ran %d times, want once", id, ran[id])
		}
	}
	// River records completions in batches, a moment after the handlers
	// return.
	n, err := b.PendingJobs(ctx, "shop")
	for start := time.Now(); err == nil && n > 0 && time.Since(start) < 10*time.Second; {
		time.Sleep(10 * time.Millisecond)
		n, err = b.PendingJobs(ctx, "shop")
	}
	if err != nil || n != 0 {
		t.Errorf("PendingJobs after all ran = %d, %v; want 0", n, err)
	}
}

func TestSQLiteTwoStores(t *testing.T) {
	t.Parallel()
	dsn := migratedSQLiteDSN(t)
	testTwoStores(t, sqlstore.SQLite, openDB(t, "sqlite", dsn), openDB(t, "sqlite", dsn))
}

func TestPostgresTwoStores(t *testing.T) {
	t.Parallel()
	dsn := migratedPostgresSchema(t)
	testTwoStores(t, sqlstore.Postgres, openDB(t, "pgx", dsn), openDB(t, "pgx", dsn))
}

// testJobsRollBack checks that jobs given with a change that fails are not
// stored, nor is the reply claim a reply job would take; and that a batch
// with an invalid job stores nothing.
func testJobsRollBack(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	ctx := t.Context()
	s := open(t, db, d)
	reply := store.Job{Kind: store.JobReply, Account: "acc", Dialog: bd.Dialog{ID: 1}, Situation: bd.ManagerAssigned, Manager: 1}
	if err := s.Assign(ctx, store.Assignment{Account: "acc", Dialog: 1, To: bd.ManagerOf(1), Capacity: 1, At: at0}); err != nil {
		t.Fatal(err)
	}
	err := s.Assign(ctx, store.Assignment{Account: "acc", Dialog: 2, To: bd.ManagerOf(1), Capacity: 1, At: at0,
		Then: []store.Job{reply}})
	if !errors.Is(err, store.ErrCapacity) {
		t.Fatalf("Assign over capacity = %v, want ErrCapacity", err)
	}
	if n, err := s.PendingJobs(ctx, "acc"); err != nil || n != 0 {
		t.Fatalf("PendingJobs after a refused Assign = %d, %v; want 0", n, err)
	}
	if first, err := s.ClaimReply(ctx, "acc", 1, bd.ManagerAssigned); err != nil || !first {
		t.Fatalf("ClaimReply after a refused Assign = %v, %v; the rolled-back reply job left its claim", first, err)
	}
	err = s.Submit(ctx, store.Job{Kind: store.JobBind, Account: "acc", Dialog: bd.Dialog{ID: 3}}, store.Job{Kind: store.JobBind, Account: "acc"})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Submit with a job without dialog = %v, want ErrInvalid", err)
	}
	if _, err := s.Close(ctx, "acc", 4, at0, store.Job{Kind: "nap", Account: "acc", Dialog: bd.Dialog{ID: 4}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Close with a job of unknown kind = %v, want ErrInvalid", err)
	}
	if n, err := s.PendingJobs(ctx, "acc"); err != nil || n != 0 {
		t.Fatalf("PendingJobs after invalid batches = %d, %v; want 0", n, err)
	}
}

func TestSQLiteJobsRollBack(t *testing.T) {
	t.Parallel()
	testJobsRollBack(t, sqlstore.SQLite, newSQLiteDB(t))
}
func TestPostgresJobsRollBack(t *testing.T) {
	t.Parallel()
	testJobsRollBack(t, sqlstore.Postgres, newPostgresDB(t))
}

// testPruneJobs checks that PruneEvents deletes finished jobs finished
// before its cut, and keeps dead letters finished after it.
func testPruneJobs(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	ctx := t.Context()
	s := open(t, db, d)
	done := make(chan struct{}, 2)
	h := func(_ context.Context, j store.Job) error {
		defer func() { done <- struct{}{} }()
		if j.Dialog.ID == 2 {
			return errors.New("boom")
		}
		return nil
	}
	startWork(t, s, h, store.WorkOptions{MaxAttempts: 1})
	if err := s.Submit(ctx,
		store.Job{Kind: store.JobBind, Account: "acc", Dialog: bd.Dialog{ID: 1}},
		store.Job{Kind: store.JobBind, Account: "acc", Dialog: bd.Dialog{ID: 2}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("jobs did not run within 30s")
		}
	}
	var dead []store.DeadJob
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(10 * time.Millisecond) {
		var err error
		if dead, err = s.DeadJobs(ctx, "acc", 10); err != nil {
			t.Fatal(err)
		}
		if len(dead) > 0 {
			break
		}
	}
	if len(dead) != 1 || dead[0].Dialog.ID != 2 || dead[0].Err != "boom" || dead[0].Attempt != 1 {
		t.Fatalf("DeadJobs = %+v, want the job of dialog 2 failed with boom", dead)
	}
	count := func() (n int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM river_job`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := s.PruneEvents(ctx, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d jobs left after pruning what finished an hour ago, want both", n)
	}
	if _, err := s.PruneEvents(ctx, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d jobs left after pruning everything finished, want none", n)
	}
}

func TestSQLitePruneJobs(t *testing.T) {
	t.Parallel()
	testPruneJobs(t, sqlstore.SQLite, newSQLiteDB(t))
}
func TestPostgresPruneJobs(t *testing.T) {
	t.Parallel()
	testPruneJobs(t, sqlstore.Postgres, newPostgresDB(t))
}

// A Work of every account takes up the queue of an account whose first job
// is stored while the Work starts, after it read the queues it knew of:
// the job does not wait for the next look at other processes' queues
// (made an hour away here, so that only the store's own news of the queue
// can bring the job to a worker).
func TestSQLiteWorkTakesAQueueRecordedWhileItStarts(t *testing.T) {
	t.Parallel()
	st := open(t, newSQLiteDB(t), sqlstore.SQLite)
	const late bd.AccountID = "late"
	sqlstore.OnQueuesRead(st, time.Hour, func() {
		if err := st.Submit(context.Background(), store.Job{Kind: store.JobDistribute, Account: late, Dialog: bd.Dialog{ID: 1}}); err != nil {
			t.Errorf("Submit: %v", err)
		}
	})
	ran := make(chan bd.AccountID, 1)
	startWork(t, st, func(_ context.Context, j store.Job) error {
		ran <- j.Account
		return nil
	}, store.WorkOptions{})
	select {
	case acc := <-ran:
		if acc != late {
			t.Fatalf("ran a job of %q, want %q", acc, late)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the job of an account first seen while Work started did not run in 30 s")
	}
}
