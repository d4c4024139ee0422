package sqlstore

import (
	"context"
	"strconv"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// claim inserts a row unless its primary key exists and reports whether it
// did: the first of any number of concurrent callers, in any process, wins.
func (s *Store) claim(ctx context.Context, query string, args ...any) (bool, error) {
	var n int64
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, query, args...)
		n, err = affected(res, err)
		return err
	})
	return n > 0, err
}

// ClaimReply implements [store.Replies]. The claim is a row keyed by
// (account, dialog, situation); the time is the store's clock.
func (s *Store) ClaimReply(ctx context.Context, account bd.AccountID, dialog bd.DialogID, sit bd.Situation) (bool, error) {
	if err := validReply("claim reply", account, dialog, sit); err != nil {
		return false, err
	}
	ok, err := s.claim(ctx, `INSERT INTO bd_replies (account, dialog, situation, claimed_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account, dialog, situation) DO NOTHING`,
		string(account), int64(dialog), string(sit), s.dialect.timeArg(s.now()))
	return ok, wrap(err, "claim the %s reply of dialog %d", sit, dialog)
}

// ReleaseReply implements [store.Replies].
func (s *Store) ReleaseReply(ctx context.Context, account bd.AccountID, dialog bd.DialogID, sit bd.Situation) error {
	if err := validReply("release reply", account, dialog, sit); err != nil {
		return err
	}
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `DELETE FROM bd_replies WHERE account = $1 AND dialog = $2 AND situation = $3`,
			string(account), int64(dialog), string(sit))
		return err
	})
	return wrap(err, "release the %s reply of dialog %d", sit, dialog)
}

func validReply(op string, account bd.AccountID, dialog bd.DialogID, sit bd.Situation) error {
	if err := validDialog(op, account, dialog); err != nil {
		return err
	}
	if sit == "" {
		return invalid("%s: dialog %d: situation is empty", op, dialog)
	}
	return nil
}

// ClaimEvent implements [store.Events]. The claim is a row keyed by
// (account, key) that remembers at; the first caller's jobs are stored in
// the transaction that inserts it.
func (s *Store) ClaimEvent(ctx context.Context, account bd.AccountID, key string, at time.Time, then ...store.Job) (bool, error) {
	switch {
	case account == "":
		return false, invalid("claim event: account is empty")
	case key == "":
		return false, invalid("claim event: key is empty")
	}
	if err := checkThen("claim event "+strconv.Quote(key), then); err != nil {
		return false, err
	}
	const query = `INSERT INTO bd_events (account, event_key, claimed_at) VALUES ($1, $2, $3)
		ON CONFLICT (account, event_key) DO NOTHING`
	args := []any{string(account), key, s.dialect.timeArg(at)}
	if len(then) == 0 {
		ok, err := s.claim(ctx, query, args...)
		return ok, wrap(err, "claim event %q", key)
	}
	// Most claims that carry work are taken already: every customer message
	// after a dialog's first, every process's copy of an event after the
	// first process's. One read settles those without a write transaction
	// (nor, under SQLite, the writer's lock); a claim taken after the read
	// is still settled by the insert below.
	var taken int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM bd_events WHERE account = $1 AND event_key = $2`, string(account), key).Scan(&taken)
	if err != nil {
		return false, wrap(err, "claim event %q", key)
	}
	if taken > 0 {
		return false, nil
	}
	var first bool
	err = s.change(ctx, then, func(q querier) (bool, error) {
		n, err := affected(q.ExecContext(ctx, query, args...))
		first = n > 0
		return first, err
	})
	if err != nil {
		return false, wrap(err, "claim event %q", key)
	}
	return first, nil
}

// PruneEvents implements [store.Events] for every account at once: it
// deletes the event claims made before the given time (through the index on
// claimed_at), and the dialogs closed before it, their closed marks and
// their reply claims, all in one transaction. Under PostgreSQL that is one
// statement. The count is of event claims only.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int, error) {
	cut := s.dialect.timeArg(before)
	var n int64
	var err error
	if s.dialect == Postgres {
		err = s.write(ctx, func(q querier) error {
			return q.QueryRowContext(ctx, `WITH
				closed AS (DELETE FROM bd_closed WHERE closed_at < $1 RETURNING account, dialog),
				replies AS (DELETE FROM bd_replies r USING closed c WHERE r.account = c.account AND r.dialog = c.dialog),
				events AS (DELETE FROM bd_events WHERE claimed_at < $1 RETURNING 1)
				SELECT count(*) FROM events`, cut).Scan(&n)
		})
	} else {
		err = s.inTx(ctx, func(q querier) error {
			var err error
			if n, err = affected(q.ExecContext(ctx, `DELETE FROM bd_events WHERE claimed_at < $1`, cut)); err != nil {
				return err
			}
			// A row-value IN lets SQLite walk the closed dialogs by time and
			// find their claims by primary key, instead of scanning all claims.
			if _, err := q.ExecContext(ctx, `DELETE FROM bd_replies
				WHERE (account, dialog) IN (SELECT account, dialog FROM bd_closed WHERE closed_at < $1)`, cut); err != nil {
				return err
			}
			_, err = q.ExecContext(ctx, `DELETE FROM bd_closed WHERE closed_at < $1`, cut)
			return err
		})
	}
	if err != nil {
		return 0, wrap(err, "prune events")
	}
	if err := s.pruneJobs(ctx, before); err != nil {
		return 0, wrap(err, "prune finished jobs")
	}
	return int(n), nil
}
