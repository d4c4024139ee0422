package sqlstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"slices"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

var _ store.Leases = (*Store)(nil)

// The leases of store.Leases live in bd_lease_members and bd_leases
// (migration 4). A round is one transaction that reads the database's
// clock once (PostgreSQL's now(); SQLite serves one machine, so the
// store's clock stands in for it) and decides every expiry against it.
// Taking a lease is one conditional upsert that overwrites the row only
// while it has lapsed. On PostgreSQL the rounds of all members take turns
// on one transaction-scoped advisory lock per schema: a round locks rows of
// bd_leases and bd_lease_members in an order of its own, so two concurrent
// rounds could deadlock; a round lasts a few milliseconds and a member runs
// one every few seconds, so the turns cost nothing worth the risk. (SQLite
// has one writer at a time anyway.)

// dbNow returns the database's current time: the transaction's now() in
// PostgreSQL, the store's clock in SQLite.
func (s *Store) dbNow(ctx context.Context, q querier) (time.Time, error) {
	if s.dialect != Postgres {
		return s.now().UTC().Truncate(time.Microsecond), nil
	}
	var t time.Time
	err := q.QueryRowContext(ctx, `SELECT now()`).Scan(timeCol{&t})
	return t, err
}

// leaseTurn waits for the turn of the transaction q among the writers of
// the lease tables, on PostgreSQL; it holds until q ends.
func (s *Store) leaseTurn(ctx context.Context, q querier) error {
	if s.dialect != Postgres {
		return nil
	}
	_, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('botdistributor/sqlstore/lease/' || coalesce(current_schema(), '')))`)
	return err
}

// Lease implements [store.Leases].
func (s *Store) Lease(ctx context.Context, r store.LeaseRound) (store.LeaseState, error) {
	if err := r.Check(); err != nil {
		return store.LeaseState{}, err
	}
	var st store.LeaseState
	err := s.inTx(ctx, func(q querier) error {
		st = store.LeaseState{}
		if err := s.leaseTurn(ctx, q); err != nil {
			return err
		}
		now, err := s.dbNow(ctx, q)
		if err != nil {
			return err
		}
		nowArg, until := s.dialect.timeArg(now), s.dialect.timeArg(now.Add(r.TTL))
		if _, err := q.ExecContext(ctx, `INSERT INTO bd_lease_members (member, expires) VALUES ($1, $2)
			ON CONFLICT (member) DO UPDATE SET expires = excluded.expires`, r.Member, until); err != nil {
			return err
		}
		if err := s.forgetLapsed(ctx, q, nowArg); err != nil {
			return err
		}
		for _, a := range r.Release {
			if _, err := q.ExecContext(ctx, `DELETE FROM bd_leases WHERE account = $1 AND holder = $2`, string(a), r.Member); err != nil {
				return err
			}
		}
		if _, err := q.ExecContext(ctx, `UPDATE bd_leases SET expires = $1 WHERE holder = $2`, until, r.Member); err != nil {
			return err
		}
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM bd_lease_members WHERE expires >= $1`, nowArg).Scan(&st.Members); err != nil {
			return err
		}
		st.Share = store.LeaseShare(len(r.Accounts), st.Members)
		taken := make(map[bd.AccountID]bool) // leases someone holds now
		rows, err := q.QueryContext(ctx, `SELECT account, holder, expires FROM bd_leases`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var a, holder string
			var exp time.Time
			if err := rows.Scan(&a, &holder, timeCol{&exp}); err != nil {
				rows.Close()
				return err
			}
			switch {
			case holder == r.Member:
				st.Held = append(st.Held, bd.AccountID(a))
				taken[bd.AccountID(a)] = true
			case !exp.Before(now):
				taken[bd.AccountID(a)] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(st.Held) >= st.Share {
			return nil
		}
		// Members try the free leases in an order of their own, so that
		// concurrent rounds seldom wait on the same rows.
		var free []bd.AccountID
		for _, a := range r.Accounts {
			if !taken[a] {
				taken[a] = true // once, should Accounts repeat it
				free = append(free, a)
			}
		}
		order := func(a bd.AccountID) uint64 {
			h := fnv.New64a()
			h.Write([]byte(r.Member))
			h.Write([]byte{0})
			h.Write([]byte(a))
			return h.Sum64()
		}
		slices.SortFunc(free, func(a, b bd.AccountID) int { return cmp.Compare(order(a), order(b)) })
		for _, a := range free {
			if len(st.Held) >= st.Share {
				break
			}
			n, err := affected(q.ExecContext(ctx, `INSERT INTO bd_leases (account, holder, expires) VALUES ($1, $2, $3)
				ON CONFLICT (account) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
				WHERE bd_leases.expires < $4`, string(a), r.Member, until, nowArg))
			if err != nil {
				return err
			}
			if n > 0 {
				st.Held = append(st.Held, a)
			}
		}
		return nil
	})
	if err != nil {
		return store.LeaseState{}, wrap(err, "lease round of %q", r.Member)
	}
	slices.Sort(st.Held)
	return st, nil
}

// lapsedJobGrace is how long after its attempt began a job of a lapsed
// member is given back (see forgetLapsed): longer than a job's MG round
// trips take on a loaded machine.
const lapsedJobGrace = 3 * time.Second

// forgetLapsed deletes the members whose TTL lapsed and, on PostgreSQL,
// gives the jobs their workers were running (store.WorkOptions.Member) back
// to every worker: their process died, and River's own rescue of stuck
// jobs would wait for them 20 to 50 s more. A job is given back
// lapsedJobGrace after its attempt began, at once when that is past: a
// member that lapsed while alive (cut off from the database, or too
// loaded to renew in time) may still be running it, and the second run,
// which counts as a retry, should find the first one's effects done (a
// reply a retry checks for before sending it again) rather than race it.
// River ignores the first run's outcome once the job is no longer
// running; every job is idempotent.
func (s *Store) forgetLapsed(ctx context.Context, q querier, nowArg any) error {
	rows, err := q.QueryContext(ctx, `DELETE FROM bd_lease_members WHERE expires < $1 RETURNING member`, nowArg)
	if err != nil {
		return err
	}
	var lapsed []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return err
		}
		lapsed = append(lapsed, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil || s.dialect != Postgres {
		return err
	}
	for _, m := range lapsed {
		if _, err := q.ExecContext(ctx, `UPDATE river_job SET state = 'available',
				scheduled_at = greatest(now(), coalesce(attempted_at, now()) + make_interval(secs => $2))
			WHERE state = 'running' AND attempted_by[array_upper(attempted_by, 1)] = $1`, memberClientID(m), lapsedJobGrace.Seconds()); err != nil {
			return err
		}
	}
	return nil
}

// memberClientID is the River client id of the workers of a lease member:
// the member's name, or a digest of it when longer than River allows.
func memberClientID(member string) string {
	if len(member) <= 100 {
		return member
	}
	sum := sha256.Sum256([]byte(member))
	return "member-" + hex.EncodeToString(sum[:])
}

// Leave implements [store.Leases].
func (s *Store) Leave(ctx context.Context, member string) error {
	if member == "" {
		return invalid("leave: member is empty")
	}
	err := s.inTx(ctx, func(q querier) error {
		if err := s.leaseTurn(ctx, q); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM bd_leases WHERE holder = $1`, member); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `DELETE FROM bd_lease_members WHERE member = $1`, member)
		return err
	})
	return wrap(err, "leave as %q", member)
}

// Holders implements [store.Leases].
func (s *Store) Holders(ctx context.Context) ([]store.Lease, error) {
	now, err := s.dbNow(ctx, s.db)
	if err != nil {
		return nil, wrap(err, "read the database clock")
	}
	rows, err := s.db.QueryContext(ctx, `SELECT account, holder, expires FROM bd_leases WHERE expires >= $1`,
		s.dialect.timeArg(now))
	if err != nil {
		return nil, wrap(err, "read the leases")
	}
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		var l store.Lease
		var a string
		if err := rows.Scan(&a, &l.Holder, timeCol{&l.Expires}); err != nil {
			return nil, wrap(err, "read the leases")
		}
		l.Account = bd.AccountID(a)
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b store.Lease) int { return cmp.Compare(a.Account, b.Account) })
	return out, wrap(rows.Err(), "read the leases")
}
