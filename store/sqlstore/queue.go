package sqlstore

import (
	"context"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// Enqueue implements [store.Queue]. A dialog already waiting keeps its
// entry unchanged; a closed dialog is refused with [store.ErrClosed]. Under
// PostgreSQL it is one call of the bd_enqueue function, which holds the
// dialog lock while it checks and inserts, so that a concurrent Close
// cannot leave the entry behind; under SQLite it is one statement.
func (s *Store) Enqueue(ctx context.Context, w store.Waiting, then ...store.Job) (bool, error) {
	d := w.Dialog
	if err := validDialog("enqueue", d.Account, d.ID); err != nil {
		return false, err
	}
	if err := checkThen(fmt.Sprintf("enqueue dialog %d", d.ID), then); err != nil {
		return false, err
	}
	args := []any{
		string(d.Account), int64(d.ID), int64(d.Chat), int64(d.Channel), int64(d.Customer.ID),
		d.Customer.FirstName, d.Customer.LastName, d.Customer.Phone, d.Customer.Email,
		s.dialect.timeArg(d.OpenedAt), string(w.Reason), w.Priority, s.dialect.timeArg(w.Since),
	}
	var added bool
	enqueue := func(q querier) error {
		added = false
		if s.dialect == Postgres {
			var outcome string
			if err := q.QueryRowContext(ctx, `SELECT bd_enqueue($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
				args...).Scan(&outcome); err != nil {
				return err
			}
			switch outcome {
			case "added":
				added = true
			case "waiting":
			case "closed":
				return errClosed(d.ID)
			default:
				return fmt.Errorf("bd_enqueue returned %q", outcome)
			}
			return nil
		}
		n, err := affected(q.ExecContext(ctx, `INSERT INTO bd_queue (account, dialog, chat, channel, customer,
				customer_first_name, customer_last_name, customer_phone, customer_email,
				opened_at, reason, priority, since)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
			WHERE NOT EXISTS (SELECT 1 FROM bd_closed WHERE account = $1 AND dialog = $2)
			ON CONFLICT (account, dialog) DO NOTHING`, args...))
		if err != nil || n > 0 {
			added = n > 0
			return err
		}
		// Not added: waiting already, or closed.
		if closed, err := s.isClosed(ctx, q, d.Account, d.ID); err != nil {
			return err
		} else if closed {
			return errClosed(d.ID)
		}
		return nil
	}
	var err error
	if len(then) == 0 {
		err = s.write(ctx, enqueue)
	} else {
		err = s.change(ctx, then, func(q querier) (bool, error) { return true, enqueue(q) })
	}
	if err != nil {
		return false, wrap(err, "enqueue dialog %d", d.ID)
	}
	return added, nil
}

// Waiting implements [store.Queue]. It reads the queue-order index
// (account, priority DESC, since, dialog) and stops after limit entries. A
// limit of zero returns nothing; a negative limit fails with
// [store.ErrInvalid].
func (s *Store) Waiting(ctx context.Context, account bd.AccountID, limit int) ([]store.Waiting, error) {
	if account == "" {
		return nil, invalid("waiting: account is empty")
	}
	if limit < 0 {
		return nil, invalid("waiting: limit must not be negative, got %d", limit)
	}
	if limit == 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT dialog, chat, channel, customer,
			customer_first_name, customer_last_name, customer_phone, customer_email,
			opened_at, reason, priority, since
		FROM bd_queue WHERE account = $1
		ORDER BY priority DESC, since, dialog
		LIMIT $2`, string(account), limit)
	if err != nil {
		return nil, wrap(err, "read the queue")
	}
	defer rows.Close()
	var out []store.Waiting
	for rows.Next() {
		w := store.Waiting{Dialog: bd.Dialog{Account: account}}
		d := &w.Dialog
		if err := rows.Scan(&d.ID, &d.Chat, &d.Channel, &d.Customer.ID,
			&d.Customer.FirstName, &d.Customer.LastName, &d.Customer.Phone, &d.Customer.Email,
			timeCol{&d.OpenedAt}, &w.Reason, &w.Priority, timeCol{&w.Since}); err != nil {
			return nil, wrap(err, "read the queue")
		}
		out = append(out, w)
	}
	return out, wrap(rows.Err(), "read the queue")
}

// Dequeue implements [store.Queue].
func (s *Store) Dequeue(ctx context.Context, account bd.AccountID, dialog bd.DialogID) error {
	if err := validDialog("dequeue", account, dialog); err != nil {
		return err
	}
	var n int64
	err := s.write(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `DELETE FROM bd_queue WHERE account = $1 AND dialog = $2`, string(account), int64(dialog))
		n, err = affected(res, err)
		return err
	})
	if err != nil {
		return wrap(err, "dequeue dialog %d", dialog)
	}
	if n == 0 {
		return fmt.Errorf("%w: dialog %d is not waiting", store.ErrNotFound, dialog)
	}
	return nil
}

// Waits implements [store.Queue].
func (s *Store) Waits(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bool, error) {
	if err := validDialog("waits", account, dialog); err != nil {
		return false, err
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM bd_queue WHERE account = $1 AND dialog = $2`, string(account), int64(dialog)).Scan(&n)
	if err != nil {
		return false, wrap(err, "whether dialog %d waits", dialog)
	}
	return n > 0, nil
}

// QueueLen implements [store.Queue].
func (s *Store) QueueLen(ctx context.Context, account bd.AccountID) (int, error) {
	if account == "" {
		return 0, invalid("queue length: account is empty")
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM bd_queue WHERE account = $1`, string(account)).Scan(&n)
	return n, wrap(err, "count the queue")
}
