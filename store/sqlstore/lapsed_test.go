package sqlstore_test

import (
	"context"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// A process that dies mid-job leaves its job running in River's table. When
// a lease round finds the process's member lapsed, the job goes back to
// every worker at once: another process's worker does it long before
// River's own rescue of stuck jobs (20 s at the earliest) would.
func TestPostgresLapsedMemberJobsGoBack(t *testing.T) {
	t.Parallel()
	dsn := migratedPostgresSchema(t)
	dead, alive := open(t, openDB(t, "pgx", dsn), sqlstore.Postgres), open(t, openDB(t, "pgx", dsn), sqlstore.Postgres)
	ctx := t.Context()
	const acct bd.AccountID = "shop"

	// The first member takes the job and hangs in it, as a process that
	// stopped between fetching and finishing would.
	taken := make(chan struct{}, 1)
	hang := func(ctx context.Context, j store.Job) error {
		taken <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	if _, err := dead.Lease(ctx, store.LeaseRound{Member: "dead", Accounts: []bd.AccountID{acct}, TTL: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	// One worker, busy hanging: the member takes no more jobs, as if dead.
	startWork(t, dead, hang, store.WorkOptions{Accounts: []bd.AccountID{acct}, Member: "dead", Workers: 1})
	if err := dead.Submit(ctx, store.Job{Kind: store.JobDistribute, Account: acct, Dialog: bd.Dialog{ID: 7}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-taken:
	case <-time.After(10 * time.Second):
		t.Fatal("the first worker never took the job")
	}

	done := make(chan bd.DialogID, 1)
	startWork(t, alive, func(_ context.Context, j store.Job) error {
		done <- j.Dialog.ID
		return nil
	}, store.WorkOptions{Accounts: []bd.AccountID{acct}, Member: "alive"})

	// Rounds of the live member; the dead one's lapses after 50 ms.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := alive.Lease(ctx, store.LeaseRound{Member: "alive", Accounts: []bd.AccountID{acct}, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		select {
		case id := <-done:
			if id != 7 {
				t.Fatalf("the live worker ran the job of dialog %d, want 7", id)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead member's job did not go back to the live worker within 10 s")
		}
	}
}
