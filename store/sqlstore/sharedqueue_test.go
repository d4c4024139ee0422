package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// TestSharedQueue checks the layout of WithSharedQueue on both dialects:
// one Work of every account does every account's jobs, a Work naming
// accounts is refused, and PendingJobs and DeadJobs still answer per
// account.
func TestSharedQueue(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		open func(t *testing.T) *sqlstore.Store
	}{
		{"SQLite", func(t *testing.T) *sqlstore.Store {
			return open(t, newSQLiteDB(t), sqlstore.SQLite, sqlstore.WithSharedQueue())
		}},
		{"Postgres", func(t *testing.T) *sqlstore.Store {
			return open(t, newPostgresDB(t), sqlstore.Postgres, sqlstore.WithSharedQueue())
		}},
	} {
		t.Run(c.name, func(t *testing.T) { sharedQueue(t, c.open(t)) })
	}
}

func sharedQueue(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	const a, b = bd.AccountID("shop-a"), bd.AccountID("shop-b")
	err := s.Work(ctx, func(context.Context, store.Job) error { return nil }, store.WorkOptions{Accounts: []bd.AccountID{a}})
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Work naming accounts on a shared queue: got %v, want ErrInvalid", err)
	}
	dialog := func(acc bd.AccountID, id bd.DialogID) bd.Dialog {
		return bd.Dialog{Account: acc, ID: id, OpenedAt: at0}
	}
	jobs := []store.Job{
		{Kind: store.JobDistribute, Account: a, Dialog: dialog(a, 1)},
		{Kind: store.JobDistribute, Account: a, Dialog: dialog(a, 2)},
		{Kind: store.JobDistribute, Account: b, Dialog: dialog(b, 1)},
		{Kind: store.JobBind, Account: b, Dialog: dialog(b, 1)}, // fails for good
	}
	if err := s.Submit(ctx, jobs...); err != nil {
		t.Fatal(err)
	}
	for acc, want := range map[bd.AccountID]int{a: 2, b: 2} {
		if n, err := s.PendingJobs(ctx, acc); err != nil || n != want {
			t.Fatalf("PendingJobs(%s) = %d, %v; want %d", acc, n, err, want)
		}
	}
	var mu sync.Mutex
	done := map[string]bool{}
	wctx, stop := context.WithCancel(ctx)
	finished := make(chan error, 1)
	go func() {
		finished <- s.Work(wctx, func(_ context.Context, j store.Job) error {
			if j.Kind == store.JobBind {
				return errors.New("no CRM today")
			}
			mu.Lock()
			done[string(j.Account)+"/"+j.Key()] = true
			mu.Unlock()
			return nil
		}, store.WorkOptions{MaxAttempts: 1, Workers: 4})
	}()
	defer func() {
		stop()
		if err := <-finished; !errors.Is(err, context.Canceled) {
			t.Errorf("Work returned %v, want context.Canceled", err)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		na, erra := s.PendingJobs(ctx, a)
		nb, errb := s.PendingJobs(ctx, b)
		if erra != nil || errb != nil {
			t.Fatal(erra, errb)
		}
		if na == 0 && nb == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still pending after 30s: %s %d, %s %d", a, na, b, nb)
		}
		time.Sleep(10 * time.Millisecond) // polling the store; the outcome is checked below
	}
	mu.Lock()
	for _, k := range []string{"shop-a/distribute:1", "shop-a/distribute:2", "shop-b/distribute:1"} {
		if !done[k] {
			t.Errorf("job %s was not done; done: %v", k, done)
		}
	}
	mu.Unlock()
	deadA, err := s.DeadJobs(ctx, a, 10)
	if err != nil || len(deadA) != 0 {
		t.Errorf("DeadJobs(%s) = %v, %v; want none", a, deadA, err)
	}
	deadB, err := s.DeadJobs(ctx, b, 10)
	if err != nil || len(deadB) != 1 || deadB[0].Kind != store.JobBind || deadB[0].Account != b {
		t.Errorf("DeadJobs(%s) = %+v, %v; want its bind job", b, deadB, err)
	}
}
