package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// testLoadsMany asks for more managers than SQLite admits bound parameters
// in one statement, in a shuffled order with repeats.
func testLoadsMany(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	ctx := t.Context()
	s := open(t, db, d)
	const managers = 40_000
	for m := bd.ManagerID(1); m <= 5; m++ {
		for i := range int(m) {
			err := s.Assign(ctx, store.Assignment{Account: "acc", Dialog: bd.DialogID(int(m)*100 + i), To: bd.ManagerOf(m * 7000), Capacity: 10, At: at0})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	ask := make([]bd.ManagerID, 0, managers+2)
	for m := managers; m >= 1; m-- {
		ask = append(ask, bd.ManagerID(m))
	}
	ask = append(ask, 7000, 14000)
	ls, err := s.Loads(ctx, "acc", ask, nil)
	if err != nil {
		t.Fatalf("Loads of %d managers: %v", len(ask), err)
	}
	if len(ls) != len(ask) {
		t.Fatalf("Loads returned %d loads for %d managers", len(ls), len(ask))
	}
	check := func(ls []store.Load, ask []bd.ManagerID) {
		t.Helper()
		for i, l := range ls {
			want := 0
			if ask[i]%7000 == 0 && ask[i] <= 35000 {
				want = int(ask[i] / 7000)
			}
			if l.Manager != ask[i] || l.Open != want || (want > 0) != l.LastAssignedAt.Equal(at0) {
				t.Fatalf("Loads[%d] = %+v, want manager %d with %d open", i, l, ask[i], want)
			}
		}
	}
	check(ls, ask)

	// The same buffer again, for the managers in the other order: every
	// entry is rewritten, none is left from the first call.
	slices.Reverse(ask)
	again, err := s.Loads(ctx, "acc", ask, ls)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(ask) || &again[0] != &ls[0] {
		t.Fatalf("Loads into a buffer of capacity %d returned %d loads in a new array", cap(ls), len(again))
	}
	check(again, ask)
}

func TestSQLiteLoadsMany(t *testing.T) {
	t.Parallel()
	testLoadsMany(t, sqlstore.SQLite, newSQLiteDB(t))
}
func TestPostgresLoadsMany(t *testing.T) {
	t.Parallel()
	testLoadsMany(t, sqlstore.Postgres, newPostgresDB(t))
}

// testSecrets checks that credentials survive the round trip, sit in their
// own columns and never inside the settings JSON, and stay out of errors.
func testSecrets(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	ctx := t.Context()
	s := open(t, db, d)
	const key, token = "crm-key-5f1c0ffee", "mg-token-9a8b7c6d"
	a := bd.Account{
		ID: "shop", Domain: "https://shop.example", APIKey: key, MGEndpoint: "https://mg.example/api/bot/v1", MGToken: token,
		Settings: bd.Settings{Managers: []bd.ManagerID{1, 2}, DefaultCapacity: 3, Replies: map[bd.Situation]string{bd.DialogReceived: "hi"}},
	}
	if err := s.SaveAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.Account(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if got.APIKey.Reveal() != key || got.MGToken.Reveal() != token {
		t.Fatalf("credentials changed in the round trip: %q, %q", got.APIKey.Reveal(), got.MGToken.Reveal())
	}
	var apiKey, mgToken, settings string
	if err := db.QueryRowContext(ctx, `SELECT api_key, mg_token, CAST(settings AS TEXT) FROM bd_accounts WHERE id = 'shop'`).
		Scan(&apiKey, &mgToken, &settings); err != nil {
		t.Fatal(err)
	}
	if apiKey != key || mgToken != token {
		t.Fatalf("columns hold %q, %q; want the revealed credentials", apiKey, mgToken)
	}
	if strings.Contains(settings, key) || strings.Contains(settings, token) || !strings.Contains(settings, `"default_capacity"`) {
		t.Fatalf("settings column = %s: want the settings JSON without credentials", settings)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	err = s.SaveAccount(canceled, a)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("SaveAccount with a canceled context: error = %v, want context.Canceled", err)
	}
	if msg := err.Error(); strings.Contains(msg, key) || strings.Contains(msg, token) {
		t.Fatalf("error %q carries a credential", msg)
	}
}

func TestSQLiteSecrets(t *testing.T) {
	t.Parallel()
	testSecrets(t, sqlstore.SQLite, newSQLiteDB(t))
}
func TestPostgresSecrets(t *testing.T) {
	t.Parallel()
	testSecrets(t, sqlstore.Postgres, newPostgresDB(t))
}

// testTimes checks that times come back in UTC, cut to microseconds, also
// from another time zone, and that the zero time stays zero.
func testTimes(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	ctx := t.Context()
	s := open(t, db, d)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	in := time.Date(2031, time.July, 9, 23, 59, 59, 123_456_789, zone)
	if err := s.SaveBinding(ctx, store.Binding{Account: "acc", Customer: 1, CRMCustomer: 2, Rule: "phone", At: in}); err != nil {
		t.Fatal(err)
	}
	b, err := s.Binding(ctx, "acc", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := in.UTC().Truncate(time.Microsecond)
	if b.At != want {
		t.Fatalf("Binding.At = %v (%s), want %v in UTC", b.At, b.At.Location(), want)
	}
	if err := s.SaveBinding(ctx, store.Binding{Account: "acc", Customer: 3, CRMCustomer: 4, Rule: "phone"}); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Binding(ctx, "acc", 3); err != nil || !b.At.IsZero() {
		t.Fatalf("Binding with a zero time read back as %v, %v; want the zero time", b.At, err)
	}
}

func TestSQLiteTimes(t *testing.T) {
	t.Parallel()
	testTimes(t, sqlstore.SQLite, newSQLiteDB(t))
}
func TestPostgresTimes(t *testing.T) {
	t.Parallel()
	testTimes(t, sqlstore.Postgres, newPostgresDB(t))
}

// TestSQLiteBusyRetried holds SQLite's write lock from another pool whose
// connections do not wait (busy_timeout 0): the store's writes fail after
// their bounded retries with a wrapped driver error, change nothing, and go
// through once the lock is free.
func TestSQLiteBusyRetried(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := sqliteDSN(t)
	s := open(t, openDB(t, "sqlite", strings.Replace(dsn, "busy_timeout%2810000%29", "busy_timeout%280%29", 1)), sqlstore.SQLite,
		sqlstore.WithMaxRetries(2))
	other := openDB(t, "sqlite", dsn)
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	a := store.Assignment{Account: "acc", Dialog: 1, To: bd.ManagerOf(1), Capacity: 1, At: at0}
	err = s.Assign(ctx, a)
	if err == nil || errors.Is(err, store.ErrCapacity) || errors.Is(err, store.ErrAssigned) {
		t.Fatalf("Assign while another connection holds the write lock: error = %v, want a busy database", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "gave up after 3 attempts") || !strings.Contains(msg, "assign dialog 1") {
		t.Fatalf("error %q does not say what failed and how often it was tried", msg)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Responsible(ctx, "acc", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the failed Assign left a responsible: %v", err)
	}
	if err := s.Assign(ctx, a); err != nil {
		t.Fatalf("Assign once the lock is free: %v", err)
	}
}

// TestReadsRejectEmptyAccount checks that reads name a bad account instead
// of querying for it.
func TestReadsRejectEmptyAccount(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := open(t, newSQLiteDB(t), sqlstore.SQLite)
	calls := map[string]func() error{
		"Responsible": func() error { _, err := s.Responsible(ctx, "", 1); return err },
		"Loads":       func() error { _, err := s.Loads(ctx, "", []bd.ManagerID{1}, nil); return err },
		"DialogsOf":   func() error { _, err := s.DialogsOf(ctx, "", 1); return err },
		"LastManager": func() error { _, err := s.LastManager(ctx, "", 1); return err },
		"Waiting":     func() error { _, err := s.Waiting(ctx, "", 1); return err },
		"QueueLen":    func() error { _, err := s.QueueLen(ctx, ""); return err },
		"Binding":     func() error { _, err := s.Binding(ctx, "", 1); return err },
		"Account":     func() error { _, err := s.Account(ctx, ""); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "account") {
			t.Errorf("%s with an empty account: error = %v, want ErrInvalid naming the account", name, err)
		}
	}
	if _, err := s.Waiting(ctx, "acc", -1); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Waiting with limit -1: error = %v, want ErrInvalid naming the limit", err)
	}
	if _, err := s.Enqueue(ctx, store.Waiting{Dialog: bd.Dialog{Account: "acc", ID: 1}}); err != nil {
		t.Fatal(err)
	}
	if ws, err := s.Waiting(ctx, "acc", 0); err != nil || len(ws) != 0 {
		t.Errorf("Waiting with limit 0 = %v, %v; want nothing", ws, err)
	}
}

// testHugeCapacity checks that a capacity beyond the database's integer
// column means no limit rather than an error.
func testHugeCapacity(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	s := open(t, db, d)
	a := store.Assignment{Account: "acc", Dialog: 1, To: bd.ManagerOf(1), Capacity: math.MaxInt, At: at0}
	if err := s.Assign(t.Context(), a); err != nil {
		t.Fatalf("Assign with capacity math.MaxInt: %v", err)
	}
}

func TestSQLiteHugeCapacity(t *testing.T) {
	t.Parallel()
	testHugeCapacity(t, sqlstore.SQLite, newSQLiteDB(t))
}
func TestPostgresHugeCapacity(t *testing.T) {
	t.Parallel()
	testHugeCapacity(t, sqlstore.Postgres, newPostgresDB(t))
}

// TestSQLiteClock checks that the times the store makes up come from the
// clock given to Open.
func TestSQLiteClock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := emptySQLiteDB(t)
	s := open(t, db, sqlstore.SQLite, sqlstore.WithClock(func() time.Time { return at0 }))
	if _, err := s.ClaimReply(ctx, "acc", 1, bd.DialogReceived); err != nil {
		t.Fatal(err)
	}
	var claimed, applied int64
	if err := db.QueryRowContext(ctx, `SELECT claimed_at FROM bd_replies`).Scan(&claimed); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT applied_at FROM bd_schema_migrations WHERE version = 1`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if claimed != at0.UnixMicro() || applied != at0.UnixMicro() {
		t.Fatalf("claimed_at %d, applied_at %d; want both %d from the clock", claimed, applied, at0.UnixMicro())
	}
}

// testRecordKeepsLastAssignedAt checks that only Assign moves a manager's
// LastAssignedAt: a dialog a person gave them in MessageGateway counts in
// their load but does not make them "recently assigned" for round robin.
func testRecordKeepsLastAssignedAt(t *testing.T, d sqlstore.Dialect, db *sql.DB) {
	ctx := t.Context()
	s := open(t, db, d)
	if err := s.Assign(ctx, store.Assignment{Account: "acc", Dialog: 1, To: bd.ManagerOf(1), Capacity: 5, At: at0}); err != nil {
		t.Fatal(err)
	}
	for dialog, m := range map[bd.DialogID]bd.ManagerID{2: 1, 3: 2} {
		if _, err := s.Record(ctx, store.Assignment{Account: "acc", Dialog: dialog, To: bd.ManagerOf(m), At: at0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := s.Loads(ctx, "acc", []bd.ManagerID{1, 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ls[0].Open != 2 || !ls[0].LastAssignedAt.Equal(at0) {
		t.Errorf("manager 1 after Assign and Record = %+v, want 2 open, last assigned at %v", ls[0], at0)
	}
	if ls[1].Open != 1 || !ls[1].LastAssignedAt.IsZero() {
		t.Errorf("manager 2 after Record only = %+v, want 1 open, never assigned", ls[1])
	}
}

func TestSQLiteRecordKeepsLastAssignedAt(t *testing.T) {
	t.Parallel()
	testRecordKeepsLastAssignedAt(t, sqlstore.SQLite, newSQLiteDB(t))
}

func TestPostgresRecordKeepsLastAssignedAt(t *testing.T) {
	t.Parallel()
	testRecordKeepsLastAssignedAt(t, sqlstore.Postgres, newPostgresDB(t))
}
