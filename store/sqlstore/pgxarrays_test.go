package sqlstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// TestPostgresTunedArraysRoundTrip sends the lib/pq array values River's
// database/sql driver uses through a connection tunePgx changed, and reads
// back exactly what lib/pq's own text encoding would have sent.
func TestPostgresTunedArraysRoundTrip(t *testing.T) {
	t.Parallel()
	db := newPostgresDB(t)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := sqlstore.TunePgx(conn); err != nil {
		t.Fatalf("tunePgx: %v", err)
	}
	if err := sqlstore.TunePgx(conn); err != nil { // a second time is a no-op
		t.Fatalf("tunePgx again: %v", err)
	}
	if n := sqlstore.TunedWraps(conn); n != 1 {
		t.Fatalf("encodePQArray registered %d times, want 1", n)
	}
	if !sqlstore.TunedPlan(conn) {
		t.Fatal("a lib/pq text array is still encoded through its driver.Valuer, not encodePQArray's plan")
	}

	var text string
	if err := conn.QueryRowContext(ctx, `SELECT ($1::text[])::text`, pq.Array([]string{"a", `b "c"`, ""})).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if want := `{a,"b \"c\"",""}`; text != want {
		t.Errorf("text[] = %s, want %s", text, want)
	}
	if err := conn.QueryRowContext(ctx, `SELECT ($1::bigint[])::text`, pq.Array([]int64{1, -2, 1 << 40})).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if want := `{1,-2,1099511627776}`; text != want {
		t.Errorf("bigint[] = %s, want %s", text, want)
	}
	if err := conn.QueryRowContext(ctx, `SELECT ($1::bytea[])::text`, pq.Array([][]byte{{0xde, 0xad}, nil})).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if want := `{"\\xdead",NULL}`; text != want {
		t.Errorf("bytea[] = %s, want %s", text, want)
	}
	at := time.Date(2026, 11, 30, 12, 0, 0, 123456000, time.UTC)
	var raw string
	if err := conn.QueryRowContext(ctx, `SELECT (($1::timestamptz[])[1] AT TIME ZONE 'UTC')::text`, pq.Array([]time.Time{at})).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if want := "2026-11-30 12:00:00.123456"; raw != want {
		t.Errorf("timestamptz[] = %s, want %s", raw, want)
	}
	var isNull bool
	if err := conn.QueryRowContext(ctx, `SELECT $1::text[] IS NULL`, pq.Array([]string(nil))).Scan(&isNull); err != nil {
		t.Fatal(err)
	}
	if !isNull {
		t.Error("a nil slice was not sent as NULL")
	}
	var n []int64
	if err := conn.QueryRowContext(ctx, `SELECT ARRAY[3, 1, 2]::bigint[]`).Scan(pq.Array(&n)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n, []int64{3, 1, 2}) {
		t.Errorf("scanned %v", n)
	}
}
