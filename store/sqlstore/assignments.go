package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// Statements shared by both dialects. Placeholders are $n, which SQLite
// reads as numbered parameters too.
const (
	insertResponsible = `INSERT INTO bd_responsibles (account, dialog, kind, responsible, customer, assigned_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (account, dialog) DO NOTHING`

	// takeSlot is the capacity rule: one guarded upsert that counts the
	// dialog only while the manager holds fewer than $4, and otherwise
	// changes no row.
	takeSlot = `INSERT INTO bd_manager_loads AS l (account, manager, open_dialogs, last_assigned_at)
		VALUES ($1, $2, 1, $3)
		ON CONFLICT (account, manager) DO UPDATE
			SET open_dialogs = l.open_dialogs + 1, last_assigned_at = excluded.last_assigned_at
			WHERE l.open_dialogs < $4`

	// addLoad counts a dialog recorded from MessageGateway, without a
	// capacity check. Only Assign moves last_assigned_at: $3 is the zero
	// time, for a manager never assigned before.
	addLoad = `INSERT INTO bd_manager_loads AS l (account, manager, open_dialogs, last_assigned_at)
		VALUES ($1, $2, 1, $3)
		ON CONFLICT (account, manager) DO UPDATE
			SET open_dialogs = l.open_dialogs + 1`

	freeSlot = `UPDATE bd_manager_loads SET open_dialogs = open_dialogs - 1
		WHERE account = $1 AND manager = $2 AND open_dialogs > 0`

	// rememberManager writes nothing when the customer's last manager does
	// not change, as with a customer who keeps coming back to one manager.
	rememberManager = `INSERT INTO bd_last_managers AS c (account, customer, manager)
		VALUES ($1, $2, $3)
		ON CONFLICT (account, customer) DO UPDATE
			SET manager = excluded.manager
			WHERE c.manager <> excluded.manager`
)

// Kinds of responsible as stored in bd_responsibles.kind.
const (
	kindManager = 1
	kindBot     = 2
)

// kindOf returns the stored kind of r; 0 for nobody, which only the From
// of a new assignment passes to bd_assign.
func kindOf(r bd.Responsible) int64 {
	switch r.Kind {
	case bd.ManagerResponsible:
		return kindManager
	case bd.BotResponsible:
		return kindBot
	}
	return 0
}

func responsibleOf(kind, id int64) (bd.Responsible, error) {
	switch kind {
	case kindManager:
		return bd.ManagerOf(bd.ManagerID(id)), nil
	case kindBot:
		return bd.BotOf(bd.BotID(id)), nil
	}
	return bd.Responsible{}, fmt.Errorf("unknown responsible kind %d stored", kind)
}

// validAssignment checks the fields every write of an assignment needs;
// nobodyOK allows a zero a.To (Record).
func validAssignment(op string, a store.Assignment, nobodyOK bool) error {
	if err := validDialog(op, a.Account, a.Dialog); err != nil {
		return err
	}
	switch a.To.Kind {
	case bd.Nobody:
		if !nobodyOK {
			return invalid("%s: dialog %d: responsible is nobody", op, a.Dialog)
		}
	case bd.ManagerResponsible, bd.BotResponsible:
		if a.To.ID <= 0 {
			return invalid("%s: dialog %d: %s: id must be positive", op, a.Dialog, a.To)
		}
	default:
		return invalid("%s: dialog %d: unknown responsible kind %d", op, a.Dialog, a.To.Kind)
	}
	if a.Customer < 0 {
		return invalid("%s: dialog %d: customer id must not be negative, got %d", op, a.Dialog, a.Customer)
	}
	return nil
}

// Assign implements [store.Assignments]. The dialog's row (primary key
// account, dialog) and the manager's guarded load increment are written in
// one transaction; under PostgreSQL it is a single call of the bd_assign
// function, so it costs one round trip. With a.From set it is a move: the
// dialog's row is locked and must name a.From, a.To's load is taken with
// the capacity check and a.From's freed, all in that one transaction. A
// closed dialog fails with [store.ErrClosed]; a.From equal to a.To with
// [store.ErrAssigned].
func (s *Store) Assign(ctx context.Context, a store.Assignment) error {
	if err := validAssignment("assign", a, false); err != nil {
		return err
	}
	if a.To.Kind == bd.ManagerResponsible && a.Capacity < 0 {
		return invalid("assign: dialog %d: capacity must not be negative, got %d", a.Dialog, a.Capacity)
	}
	if err := validFrom("assign", a); err != nil {
		return err
	}
	if err := checkThen(fmt.Sprintf("assign dialog %d", a.Dialog), a.Then); err != nil {
		return err
	}
	// No manager holds 2^31 dialogs: a larger capacity means no limit, and
	// fits the integer column so.
	a.Capacity = min(a.Capacity, math.MaxInt32)
	var err error
	if s.dialect == Postgres {
		assign := func(q querier) error {
			var outcome string
			if err := q.QueryRowContext(ctx, `SELECT bd_assign($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				string(a.Account), int64(a.Dialog), kindOf(a.To), a.To.ID, int64(a.Customer), a.Capacity,
				s.dialect.timeArg(a.At), kindOf(a.From), a.From.ID, !a.NoWait).Scan(&outcome); err != nil {
				return err
			}
			switch outcome {
			case "ok":
				return nil
			case "closed":
				return errClosed(a.Dialog)
			case "assigned":
				return errNotHeld(a)
			case "capacity":
				return errCapacity(a)
			case "busy":
				return fmt.Errorf("%w: dialog %d: another assignment to %s is in progress", store.ErrBusy, a.Dialog, a.To)
			}
			return fmt.Errorf("bd_assign returned %q", outcome)
		}
		if len(a.Then) == 0 {
			err = s.write(ctx, assign)
		} else {
			err = s.changeLast(ctx, a.Account, a.Dialog, a.Then, assign)
		}
	} else {
		err = s.change(ctx, a.Then, func(q querier) (bool, error) {
			if a.From.IsZero() {
				return true, s.assignTx(ctx, q, a)
			}
			return true, s.moveTx(ctx, q, a)
		})
	}
	if a.From.IsZero() {
		return wrap(err, "assign dialog %d to %s", a.Dialog, a.To)
	}
	return wrap(err, "move dialog %d from %s to %s", a.Dialog, a.From, a.To)
}

// Contended implements [store.Contended]: PostgreSQL assignments to one
// manager wait for one another's row locks; SQLite admits one writer at a
// time, so passing a manager over there saves no wait.
func (s *Store) Contended() bool { return s.dialect == Postgres }

// validFrom checks a.From of a move: nobody (a new assignment), or a
// well-formed responsible.
func validFrom(op string, a store.Assignment) error {
	switch a.From.Kind {
	case bd.Nobody:
	case bd.ManagerResponsible, bd.BotResponsible:
		if a.From.ID <= 0 {
			return invalid("%s: dialog %d: From %s: id must be positive", op, a.Dialog, a.From)
		}
	default:
		return invalid("%s: dialog %d: From: unknown responsible kind %d", op, a.Dialog, a.From.Kind)
	}
	return nil
}

// insertOpenResponsible is insertResponsible for a dialog that is not
// closed. SQLite runs it inside the write transaction, where no Close can
// come between the check and the insert.
const insertOpenResponsible = `INSERT INTO bd_responsibles (account, dialog, kind, responsible, customer, assigned_at)
	SELECT $1, $2, $3, $4, $5, $6
	WHERE NOT EXISTS (SELECT 1 FROM bd_closed WHERE account = $1 AND dialog = $2)
	ON CONFLICT (account, dialog) DO NOTHING`

// assignTx is Assign of an unassigned dialog as statements in a SQLite
// transaction.
func (s *Store) assignTx(ctx context.Context, q querier, a store.Assignment) error {
	when := s.dialect.timeArg(a.At)
	res, err := q.ExecContext(ctx, insertOpenResponsible, string(a.Account), int64(a.Dialog), kindOf(a.To), a.To.ID, int64(a.Customer), when)
	if n, err := affected(res, err); err != nil {
		return err
	} else if n == 0 {
		if closed, err := s.isClosed(ctx, q, a.Account, a.Dialog); err != nil {
			return err
		} else if closed {
			return errClosed(a.Dialog)
		}
		return errAssigned(a.Dialog)
	}
	if a.To.Kind != bd.ManagerResponsible {
		return nil
	}
	if a.Capacity < 1 {
		return errCapacity(a)
	}
	res, err = q.ExecContext(ctx, takeSlot, string(a.Account), a.To.ID, when, a.Capacity)
	if n, err := affected(res, err); err != nil {
		return err
	} else if n == 0 {
		return errCapacity(a)
	}
	if a.Customer != 0 {
		if _, err := q.ExecContext(ctx, rememberManager, string(a.Account), int64(a.Customer), a.To.ID); err != nil {
			return err
		}
	}
	return nil
}

// moveTx is Assign with a.From set as statements in a SQLite transaction;
// an error rolls the whole transaction back, so a refused move changes
// nothing.
func (s *Store) moveTx(ctx context.Context, q querier, a store.Assignment) error {
	if closed, err := s.isClosed(ctx, q, a.Account, a.Dialog); err != nil {
		return err
	} else if closed {
		return errClosed(a.Dialog)
	}
	var kind, id int64
	err := q.QueryRowContext(ctx, `SELECT kind, responsible FROM bd_responsibles WHERE account = $1 AND dialog = $2`,
		string(a.Account), int64(a.Dialog)).Scan(&kind, &id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return errNotHeld(a)
	case err != nil:
		return err
	}
	if cur, err := responsibleOf(kind, id); err != nil {
		return err
	} else if cur != a.From || a.From == a.To {
		return errNotHeld(a)
	}
	if a.To.Kind == bd.ManagerResponsible {
		if a.Capacity < 1 {
			return errCapacity(a)
		}
		n, err := affected(q.ExecContext(ctx, takeSlot, string(a.Account), a.To.ID, s.dialect.timeArg(a.At), a.Capacity))
		if err != nil {
			return err
		} else if n == 0 {
			return errCapacity(a)
		}
	}
	if m, ok := a.From.Manager(); ok {
		if _, err := q.ExecContext(ctx, freeSlot, string(a.Account), int64(m)); err != nil {
			return err
		}
	}
	if _, err := q.ExecContext(ctx, `UPDATE bd_responsibles
		SET kind = $3, responsible = $4, customer = CASE WHEN $5 <> 0 THEN $5 ELSE customer END, assigned_at = $6
		WHERE account = $1 AND dialog = $2`,
		string(a.Account), int64(a.Dialog), kindOf(a.To), a.To.ID, int64(a.Customer), s.dialect.timeArg(a.At)); err != nil {
		return err
	}
	if a.To.Kind == bd.ManagerResponsible && a.Customer != 0 {
		if _, err := q.ExecContext(ctx, rememberManager, string(a.Account), int64(a.Customer), a.To.ID); err != nil {
			return err
		}
	}
	return nil
}

// isClosed reports whether the dialog is marked closed. Under PostgreSQL it
// first takes the dialog lock for the rest of the transaction (see the
// bd_lock_dialog function), so that no Close of the dialog can commit
// between the check and the transaction's writes.
func (s *Store) isClosed(ctx context.Context, q querier, account bd.AccountID, dialog bd.DialogID) (bool, error) {
	query := `SELECT EXISTS (SELECT 1 FROM bd_closed WHERE account = $1 AND dialog = $2)`
	if s.dialect == Postgres {
		query = `SELECT bd_lock_dialog($1, $2)`
	}
	var closed bool
	err := q.QueryRowContext(ctx, query, string(account), int64(dialog)).Scan(&closed)
	return closed, err
}

func errClosed(d bd.DialogID) error {
	return fmt.Errorf("%w: dialog %d", store.ErrClosed, d)
}

// errNotHeld is the ErrAssigned of Assign: the dialog is held by someone
// other than a.From (for a new assignment, by anyone).
func errNotHeld(a store.Assignment) error {
	switch {
	case a.From.IsZero():
		return errAssigned(a.Dialog)
	case a.From == a.To:
		return fmt.Errorf("%w: dialog %d cannot move from %s to itself", store.ErrAssigned, a.Dialog, a.To)
	}
	return fmt.Errorf("%w: dialog %d is not held by %s", store.ErrAssigned, a.Dialog, a.From)
}

func errAssigned(d bd.DialogID) error {
	return fmt.Errorf("%w: dialog %d has a responsible", store.ErrAssigned, d)
}

func errCapacity(a store.Assignment) error {
	return fmt.Errorf("%w: %s holds %d or more open dialogs", store.ErrCapacity, a.To, a.Capacity)
}

// affected returns the rows a statement changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Record implements [store.Assignments]. It takes the dialog (under
// PostgreSQL the dialog lock, then its row), refusing a closed dialog with
// [store.ErrClosed], then changes the loads of the previous and the new
// manager in id order, the lock order every write keeps. A manager recorded
// this way becomes the customer's last manager (when a.Customer is set);
// their LastAssignedAt, which only Assign sets, does not change. a.From is
// ignored.
func (s *Store) Record(ctx context.Context, a store.Assignment) (bd.Responsible, error) {
	if err := validAssignment("record", a, true); err != nil {
		return bd.Responsible{}, err
	}
	if err := checkThen(fmt.Sprintf("record dialog %d", a.Dialog), a.Then); err != nil {
		return bd.Responsible{}, err
	}
	var prev bd.Responsible
	err := s.change(ctx, a.Then, func(q querier) (bool, error) {
		var err error
		prev, err = s.recordTx(ctx, q, a)
		return true, err
	})
	if err != nil {
		return bd.Responsible{}, wrap(err, "record dialog %d to %s", a.Dialog, a.To)
	}
	return prev, nil
}

// recordAttempts bounds how often Record looks again for a dialog row that
// a concurrent writer inserted after Record found none. Every writer of
// this version inserts under the dialog lock (or SQLite's write lock), so
// only a writer that does not take it can make Record look again.
const recordAttempts = 3

// recordTx is Record as statements in a transaction: find (and, under
// PostgreSQL, lock) the dialog's row, write the new responsible, then move
// the load.
func (s *Store) recordTx(ctx context.Context, q querier, a store.Assignment) (bd.Responsible, error) {
	if closed, err := s.isClosed(ctx, q, a.Account, a.Dialog); err != nil {
		return bd.Responsible{}, err
	} else if closed {
		return bd.Responsible{}, errClosed(a.Dialog)
	}
	when := s.dialect.timeArg(a.At)
	lock := ""
	if s.dialect == Postgres {
		lock = " FOR UPDATE"
	}
	var prev bd.Responsible
	for attempt := 1; ; attempt++ {
		var kind, id, customer int64
		err := q.QueryRowContext(ctx, `SELECT kind, responsible, customer FROM bd_responsibles
			WHERE account = $1 AND dialog = $2`+lock, string(a.Account), int64(a.Dialog)).Scan(&kind, &id, &customer)
		found := true
		switch {
		case errors.Is(err, sql.ErrNoRows):
			found, err = false, nil
		case err != nil:
			return prev, err
		default:
			if prev, err = responsibleOf(kind, id); err != nil {
				return prev, err
			}
		}
		switch {
		case a.To.IsZero() && !found:
			return prev, nil
		case a.To.IsZero():
			_, err = q.ExecContext(ctx, `DELETE FROM bd_responsibles WHERE account = $1 AND dialog = $2`, string(a.Account), int64(a.Dialog))
		case found && prev == a.To:
			// MessageGateway confirms what the store holds.
		case found:
			if a.Customer != 0 {
				customer = int64(a.Customer)
			}
			_, err = q.ExecContext(ctx, `UPDATE bd_responsibles SET kind = $3, responsible = $4, customer = $5, assigned_at = $6
				WHERE account = $1 AND dialog = $2`, string(a.Account), int64(a.Dialog), kindOf(a.To), a.To.ID, customer, when)
		default:
			var n int64
			n, err = affected(q.ExecContext(ctx, insertResponsible, string(a.Account), int64(a.Dialog), kindOf(a.To), a.To.ID, int64(a.Customer), when))
			if err == nil && n == 0 {
				// A concurrent writer inserted the row after the SELECT
				// found none; under READ COMMITTED the next SELECT sees it.
				if attempt < recordAttempts {
					continue
				}
				return prev, errors.New("dialog row keeps changing under a concurrent writer")
			}
		}
		if err != nil {
			return prev, err
		}
		break
	}
	// Move the load, locking manager rows in ascending id order.
	type change struct {
		manager int64
		add     bool
	}
	var changes []change
	if m, ok := prev.Manager(); ok && prev != a.To {
		changes = append(changes, change{int64(m), false})
	}
	if m, ok := a.To.Manager(); ok && prev != a.To {
		changes = append(changes, change{int64(m), true})
	}
	slices.SortFunc(changes, func(x, y change) int { return cmp.Compare(x.manager, y.manager) })
	for _, c := range changes {
		var err error
		if c.add {
			_, err = q.ExecContext(ctx, addLoad, string(a.Account), c.manager, s.dialect.timeArg(time.Time{}))
		} else {
			_, err = q.ExecContext(ctx, freeSlot, string(a.Account), c.manager)
		}
		if err != nil {
			return prev, err
		}
	}
	if m, ok := a.To.Manager(); ok && a.Customer != 0 {
		if _, err := q.ExecContext(ctx, rememberManager, string(a.Account), int64(a.Customer), int64(m)); err != nil {
			return prev, err
		}
	}
	return prev, nil
}

// Release implements [store.Assignments]: the dialog's row is deleted and
// its manager's load decremented in one transaction; under PostgreSQL it is
// one call of the bd_release function.
func (s *Store) Release(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bd.Responsible, error) {
	if err := validDialog("release", account, dialog); err != nil {
		return bd.Responsible{}, err
	}
	var kind, id int64
	var err error
	if s.dialect == Postgres {
		err = s.write(ctx, func(q querier) error {
			return q.QueryRowContext(ctx, `SELECT released_kind, released_responsible FROM bd_release($1, $2)`,
				string(account), int64(dialog)).Scan(&kind, &id)
		})
	} else {
		err = s.inTx(ctx, func(q querier) error {
			err := q.QueryRowContext(ctx, `DELETE FROM bd_responsibles WHERE account = $1 AND dialog = $2
				RETURNING kind, responsible`, string(account), int64(dialog)).Scan(&kind, &id)
			if err != nil || kind != kindManager {
				return err
			}
			_, err = q.ExecContext(ctx, freeSlot, string(account), id)
			return err
		})
	}
	if errors.Is(err, sql.ErrNoRows) {
		return bd.Responsible{}, fmt.Errorf("%w: dialog %d has no responsible", store.ErrNotFound, dialog)
	}
	if err != nil {
		return bd.Responsible{}, wrap(err, "release dialog %d", dialog)
	}
	r, err := responsibleOf(kind, id)
	return r, wrap(err, "release dialog %d", dialog)
}

// Close implements [store.Assignments]. In one transaction it marks the
// dialog closed in bd_closed (keeping the first close time), deletes its
// responsible's row and frees their load, and deletes its queue entry;
// under PostgreSQL it is one call of the bd_close function, which first
// takes the dialog lock that Assign, Record and Enqueue take as well, so
// none of them can slip a write past a concurrent Close. Closing a closed
// or unknown dialog is not an error.
func (s *Store) Close(ctx context.Context, account bd.AccountID, dialog bd.DialogID, at time.Time, then ...store.Job) (bd.Responsible, error) {
	if err := validDialog("close", account, dialog); err != nil {
		return bd.Responsible{}, err
	}
	if err := checkThen(fmt.Sprintf("close dialog %d", dialog), then); err != nil {
		return bd.Responsible{}, err
	}
	var kind, id int64
	var err error
	if s.dialect == Postgres {
		closeDialog := func(q querier) error {
			kind, id = 0, 0
			err := q.QueryRowContext(ctx, `SELECT closed_kind, closed_responsible FROM bd_close($1, $2, $3)`,
				string(account), int64(dialog), s.dialect.timeArg(at)).Scan(&kind, &id)
			if errors.Is(err, sql.ErrNoRows) {
				return nil // closed, nobody was responsible
			}
			return err
		}
		if len(then) == 0 {
			err = s.write(ctx, closeDialog)
		} else {
			err = s.changeLast(ctx, account, dialog, then, closeDialog)
		}
	} else {
		err = s.change(ctx, then, func(q querier) (bool, error) {
			kind, id = 0, 0
			return true, func() error {
				if _, err := q.ExecContext(ctx, `INSERT INTO bd_closed (account, dialog, closed_at) VALUES ($1, $2, $3)
				ON CONFLICT (account, dialog) DO NOTHING`, string(account), int64(dialog), s.dialect.timeArg(at)); err != nil {
					return err
				}
				err := q.QueryRowContext(ctx, `DELETE FROM bd_responsibles WHERE account = $1 AND dialog = $2
				RETURNING kind, responsible`, string(account), int64(dialog)).Scan(&kind, &id)
				switch {
				case errors.Is(err, sql.ErrNoRows):
				case err != nil:
					return err
				case kind == kindManager:
					if _, err := q.ExecContext(ctx, freeSlot, string(account), id); err != nil {
						return err
					}
				}
				_, err = q.ExecContext(ctx, `DELETE FROM bd_queue WHERE account = $1 AND dialog = $2`, string(account), int64(dialog))
				return err
			}()
		})
	}
	if errors.Is(err, sql.ErrNoRows) || (err == nil && kind == 0) {
		return bd.Responsible{}, nil
	}
	if err != nil {
		return bd.Responsible{}, wrap(err, "close dialog %d", dialog)
	}
	r, err := responsibleOf(kind, id)
	return r, wrap(err, "close dialog %d", dialog)
}

// Responsible implements [store.Assignments].
func (s *Store) Responsible(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bd.Responsible, error) {
	if err := validDialog("responsible", account, dialog); err != nil {
		return bd.Responsible{}, err
	}
	var kind, id int64
	err := s.db.QueryRowContext(ctx, `SELECT kind, responsible FROM bd_responsibles WHERE account = $1 AND dialog = $2`,
		string(account), int64(dialog)).Scan(&kind, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return bd.Responsible{}, fmt.Errorf("%w: dialog %d has no responsible", store.ErrNotFound, dialog)
	}
	if err != nil {
		return bd.Responsible{}, wrap(err, "read the responsible of dialog %d", dialog)
	}
	r, err := responsibleOf(kind, id)
	return r, wrap(err, "read the responsible of dialog %d", dialog)
}

// linearLoads is how many managers Loads matches rows to by scanning the
// list; longer lists go through a map.
const linearLoads = 32

// Loads implements [store.Assignments] with one query however many
// managers are asked for. The result goes into dst when its capacity
// suffices.
func (s *Store) Loads(ctx context.Context, account bd.AccountID, managers []bd.ManagerID, dst []store.Load) ([]store.Load, error) {
	if account == "" {
		return nil, invalid("loads: account is empty")
	}
	r, err := s.readLoads(ctx, account, managers, dst, false, 0)
	return r.Loads, err
}

// ReadDecision implements [store.DecisionReader]: the loads, the queue's
// length and the customer's last manager in one statement.
func (s *Store) ReadDecision(ctx context.Context, account bd.AccountID, managers []bd.ManagerID, customer bd.CustomerID, dst []store.Load) (store.DecisionReads, error) {
	if account == "" {
		return store.DecisionReads{}, invalid("read for a decision: account is empty")
	}
	return s.readLoads(ctx, account, managers, dst, true, customer)
}

// readLoads reads the managers' loads into dst and, with more, the queue's
// length and the customer's last manager in the same statement: rows of
// kind 0 are loads, kind 1 the count, kind 2 the last manager.
func (s *Store) readLoads(ctx context.Context, account bd.AccountID, managers []bd.ManagerID, dst []store.Load, more bool, customer bd.CustomerID) (store.DecisionReads, error) {
	out := dst[:0]
	if cap(out) < len(managers) {
		out = make([]store.Load, len(managers))
	} else {
		out = out[:len(managers)]
	}
	for i, m := range managers {
		out[i] = store.Load{Manager: m}
	}
	r := store.DecisionReads{Loads: out}
	if len(managers) == 0 && !more {
		return r, nil
	}
	ids := make([]int64, len(managers))
	for i, m := range managers {
		ids[i] = int64(m)
	}
	query := `SELECT 0, manager, open_dialogs, last_assigned_at FROM bd_manager_loads
		WHERE account = $1 AND manager IN (SELECT value FROM json_each($2))`
	if s.dialect == Postgres {
		query = `SELECT 0, manager, open_dialogs, last_assigned_at FROM bd_manager_loads
			WHERE account = $1 AND manager = ANY($2)`
	}
	args := []any{string(account), s.dialect.managerSet(ids)}
	if more {
		query += `
		UNION ALL SELECT 1, 0, count(*), NULL FROM bd_queue WHERE account = $1
		UNION ALL SELECT 2, manager, 0, NULL FROM bd_last_managers WHERE account = $1 AND customer = $3`
		args = append(args, int64(customer))
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return store.DecisionReads{}, wrap(err, "read loads")
	}
	defer rows.Close()
	var found map[bd.ManagerID]store.Load
	if len(managers) > linearLoads {
		found = make(map[bd.ManagerID]store.Load)
	}
	for rows.Next() {
		var kind int
		var l store.Load
		if err := rows.Scan(&kind, &l.Manager, &l.Open, timeCol{&l.LastAssignedAt}); err != nil {
			return store.DecisionReads{}, wrap(err, "read loads")
		}
		switch {
		case kind == 1:
			r.Waiting = l.Open
			continue
		case kind == 2:
			if customer != 0 {
				r.LastManager = l.Manager
			}
			continue
		case found != nil:
			found[l.Manager] = l
			continue
		}
		// A manager may be asked for more than once.
		for i, m := range managers {
			if m == l.Manager {
				out[i] = l
			}
		}
	}
	if err := rows.Err(); err != nil {
		return store.DecisionReads{}, wrap(err, "read loads")
	}
	if found != nil {
		for i, m := range managers {
			if l, ok := found[m]; ok {
				out[i] = l
			}
		}
	}
	return r, nil
}

// DialogsOf implements [store.Assignments].
func (s *Store) DialogsOf(ctx context.Context, account bd.AccountID, m bd.ManagerID) ([]bd.DialogID, error) {
	if account == "" {
		return nil, invalid("dialogs of: account is empty")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT dialog FROM bd_responsibles
		WHERE account = $1 AND kind = 1 AND responsible = $2 ORDER BY dialog`, string(account), int64(m))
	if err != nil {
		return nil, wrap(err, "read the dialogs of manager %d", m)
	}
	defer rows.Close()
	var out []bd.DialogID
	for rows.Next() {
		var d bd.DialogID
		if err := rows.Scan(&d); err != nil {
			return nil, wrap(err, "read the dialogs of manager %d", m)
		}
		out = append(out, d)
	}
	return out, wrap(rows.Err(), "read the dialogs of manager %d", m)
}

// LastManager implements [store.Assignments].
func (s *Store) LastManager(ctx context.Context, account bd.AccountID, customer bd.CustomerID) (bd.ManagerID, error) {
	if account == "" {
		return 0, invalid("last manager: account is empty")
	}
	var m bd.ManagerID
	err := s.db.QueryRowContext(ctx, `SELECT manager FROM bd_last_managers WHERE account = $1 AND customer = $2`,
		string(account), int64(customer)).Scan(&m)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: customer %d was never assigned a manager", store.ErrNotFound, customer)
	}
	return m, wrap(err, "read the last manager of customer %d", customer)
}
