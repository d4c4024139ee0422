package sqlstore

import (
	"context"
	"database/sql"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/lib/pq"

	bd "github.com/botdistributor/botdistributor"
)

// MigrateTo brings the database behind db to schema version v and no
// further, as an earlier version of the package would have left it.
func MigrateTo(ctx context.Context, db *sql.DB, d Dialect, v int) error {
	s, err := newStore(db, d, options{now: time.Now, maxRetries: DefaultMaxRetries})
	if err != nil {
		return err
	}
	return s.migrate(ctx, v)
}

// TunePgx is tunePgx, for tests.
func TunePgx(conn *sql.Conn) error { return tunePgx(conn) }

// TunedWraps counts encodePQArray among the wrap functions of the pgx
// connection behind conn.
func TunedWraps(conn *sql.Conn) int {
	n := 0
	_ = conn.Raw(func(dc any) error {
		c, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return nil
		}
		for _, f := range c.Conn().TypeMap().TryWrapEncodePlanFuncs {
			if reflect.ValueOf(f).Pointer() == encodePQArrayPointer {
				n++
			}
		}
		return nil
	})
	return n
}

// SharedQueue is the queue of every account in a store opened
// WithSharedQueue.
const SharedQueue = sharedQueue

// Wakes reports whether s announces the jobs it commits itself, River's
// insert sending no notification inside s's transactions.
func Wakes(s *Store) bool { return s.wakes }

// TunedPlan reports whether the pgx connection behind conn encodes a
// lib/pq text array through encodePQArray's plan.
func TunedPlan(conn *sql.Conn) bool {
	var tuned bool
	_ = conn.Raw(func(dc any) error {
		c, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return nil
		}
		_, tuned = c.Conn().TypeMap().PlanEncode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, pq.Array([]string{"a"})).(*pqArrayPlan)
		return nil
	})
	return tuned
}

// PromoteDue is promoteDue, for tests, over the account's own queue.
func (s *Store) PromoteDue(ctx context.Context, acc string) error {
	return s.promoteDue(ctx, []string{queueOf(bd.AccountID(acc))})
}

// OnQueuesRead makes the Work calls of s look for other processes' queues
// only every refresh, and call hook once they have read the queues they
// start with.
func OnQueuesRead(s *Store, refresh time.Duration, hook func()) {
	s.refreshEvery, s.queuesRead = refresh, hook
}
