package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// probeArgs is a job kind only this test inserts, through River itself.
type probeArgs struct{}

func (probeArgs) Kind() string { return "botdistributor_wake_probe" }

// TestPostgresAnnouncesJobsAfterCommit checks that a store with a listener
// announces the jobs it commits with exactly the notification River's own
// insert sends (same channel, same payload), so that every process's River
// workers wake for them although River does not notify inside the store's
// transactions.
func TestPostgresAnnouncesJobsAfterCommit(t *testing.T) {
	t.Parallel()
	dsn := migratedPostgresSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	db := openDB(t, "pgx", dsn)
	st := open(t, db, sqlstore.Postgres, sqlstore.WithPgxListener(pool), sqlstore.WithSharedQueue())
	if !sqlstore.Wakes(st) {
		t.Fatal("a PostgreSQL store with a listener leaves the notification inside its transactions")
	}
	if sqlstore.Wakes(open(t, db, sqlstore.Postgres)) {
		t.Error("a store without a listener announces jobs nobody listens for")
	}

	listen, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer listen.Close(context.Background())
	var schema string
	if err := listen.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	channel := schema + ".river_insert"
	if _, err := listen.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	next := func(what string) *notification {
		t.Helper()
		n, err := listen.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("no notification after %s: %v", what, err)
		}
		return &notification{channel: n.Channel, payload: n.Payload}
	}

	// River's own insert, in a transaction, into the store's queue.
	client, err := river.NewClient(riverdatabasesql.New(db), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.InsertTx(ctx, tx, probeArgs{}, &river.InsertOpts{Queue: sqlstore.SharedQueue}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	want := next("River's insert")

	// The store's: a job stored with a claimed event.
	dl := bd.Dialog{Account: "wake.example", ID: 7, Chat: 3}
	if _, err := st.ClaimEvent(ctx, dl.Account, "opened:7", at0, store.Job{Kind: store.JobDistribute, Account: dl.Account, Dialog: dl}); err != nil {
		t.Fatal(err)
	}
	got := next("the store's commit")
	if *got != *want {
		t.Errorf("the store announced %+v, River announces %+v", *got, *want)
	}
	if want.channel != channel {
		t.Errorf("River notified on %q, want %q", want.channel, channel)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM river_job WHERE queue = $1`, sqlstore.SharedQueue).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d jobs in the queue, want River's probe and the store's distribute job", n)
	}
	// One announcement only: River's insert sent none inside the store's
	// transaction (it would come on the same channel, with the same
	// payload). This ends the listening connection.
	quiet, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	defer stop()
	if extra, err := listen.WaitForNotification(quiet); err == nil {
		t.Errorf("a second notification %q on %q for one commit: River notified inside the store's transaction too", extra.Payload, extra.Channel)
	}
}

// notification is the part of a notification the test compares.
type notification struct{ channel, payload string }
