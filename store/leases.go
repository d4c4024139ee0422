package store

import (
	"context"
	"fmt"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// LeaseRound is one round of a member's lease keeping: see [Leases.Lease].
type LeaseRound struct {
	// Member names the process keeping leases; required. It must be unique
	// among the live processes sharing the store, e.g. host, pid and a
	// random suffix.
	Member string
	// Accounts are every account the member's fleet hosts; the share of
	// each live member is computed from their number.
	Accounts []bd.AccountID
	// TTL is how long the member and the leases it holds stay alive after
	// this round without another one, by the store's clock; required.
	TTL time.Duration
	// Release gives up these leases of the member before anything else
	// happens in the round. The member must have stopped the accounts'
	// streams before the round starts: another member may take them as
	// soon as the round commits.
	Release []bd.AccountID
}

// Check returns an error wrapping ErrInvalid that names what is wrong with
// r, or nil.
func (r LeaseRound) Check() error {
	switch {
	case r.Member == "":
		return fmt.Errorf("%w: lease round: member is empty", ErrInvalid)
	case r.TTL <= 0:
		return fmt.Errorf("%w: lease round of %q: TTL must be positive, got %s", ErrInvalid, r.Member, r.TTL)
	}
	for _, a := range r.Accounts {
		if a == "" {
			return fmt.Errorf("%w: lease round of %q: Accounts holds an empty account", ErrInvalid, r.Member)
		}
	}
	for _, a := range r.Release {
		if a == "" {
			return fmt.Errorf("%w: lease round of %q: Release holds an empty account", ErrInvalid, r.Member)
		}
	}
	return nil
}

// LeaseState is what a member holds after a round.
type LeaseState struct {
	// Held are the accounts whose lease the member holds after the round,
	// in byte order: every one it held before (renewed for the round's
	// TTL) but those released, and those it took. It may hold accounts
	// that are no longer in LeaseRound.Accounts; the member should stop
	// and release them.
	Held []bd.AccountID
	// Members counts the live members, this one included.
	Members int
	// Share is the most leases a member should hold:
	// ceil(len(Accounts) / Members). A member holding more stops the
	// streams of the extras and releases them in its next round.
	Share int
}

// Lease is one account's lease as the store keeps it.
type Lease struct {
	Account bd.AccountID
	Holder  string
	// Expires is when the lease lapses unless renewed, by the store's clock.
	Expires time.Time
}

// Leases shares accounts among processes: each account's event stream is
// held by at most one live member at a time, and the accounts are spread
// evenly over the live members.
//
// A member calls Lease every heartbeat (a fraction of the TTL). One round
// renews the member and its leases, forgets members whose TTL lapsed, and
// takes free leases (never held, released, or lapsed) until the member
// holds its share; it never takes a lease another member holds and has
// not let lapse. Expiry is decided by the store's clock (the database's
// now() in PostgreSQL), never by the members' clocks.
//
// The guarantee a member builds on: a lease it holds does not lapse,
// from every other member's view, before the round's start on the
// member's own clock plus the TTL. A member that stops its stream before
// that deadline (less a margin for clock drift) and after every failed
// round never streams at the same time as the member that takes the lease
// next. A member gives a lease up only after stopping its stream, through
// LeaseRound.Release or Leave.
//
// A round that forgets lapsed members also gives back the jobs their
// workers were running (see WorkOptions.Member), where the store can tell
// them: a process that died mid-job delays its jobs by one lease TTL, not
// by the job engine's timeout for stuck jobs.
//
// Implementations are safe for concurrent use, also by several processes
// sharing one database. A store that serves one process (memory, SQLite)
// keeps the same contract among the members within it.
type Leases interface {
	// Lease runs one round for r.Member (see [LeaseRound]) and returns
	// what it holds afterwards. A round that fails changes nothing; the
	// member then holds no more than before, and its leases lapse as their
	// TTL says. An invalid round fails with ErrInvalid.
	Lease(ctx context.Context, r LeaseRound) (LeaseState, error)
	// Leave forgets the member and frees every lease it holds, so that the
	// others take them at their next round. The member must have stopped
	// its streams. Leaving an unknown member is not an error.
	Leave(ctx context.Context, member string) error
	// Holders returns the leases that have not lapsed, ordered by account.
	Holders(ctx context.Context) ([]Lease, error)
}

// LeaseShare returns ceil(accounts / members): the most leases a member
// should hold. With no members it is accounts.
func LeaseShare(accounts, members int) int {
	if members <= 1 {
		return accounts
	}
	return (accounts + members - 1) / members
}
