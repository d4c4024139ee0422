// Package strategy defines how the distributor picks a manager for a dialog,
// and provides the built-in policies.
//
// A [Strategy] is a pure choice over a snapshot: the distributor has already
// removed every manager that may not take the dialog (not in the channel,
// unavailable, outside working hours, at capacity) and passes the rest as
// [Candidate] values with their current load. The strategy only chooses; the
// store then reserves the slot atomically, so a stale snapshot can never put
// a manager over capacity.
//
// Built-ins: [RoundRobin] (longest since last assignment), [LeastLoaded]
// (fewest open dialogs), [Capped] (a filter in front of another strategy) and
// [Sticky] (the customer's last manager first). Every built-in passes the
// public conformance suite strategy/strategytest, which users can run on
// their own strategies too.
//
// A strategy that picks the first candidate in an order of its own may also
// implement [Ordered]; the distributor then keeps a large pool in an index
// sorted by that order and asks Pick over its head only, so that a decision
// costs about the same over ten managers or ten thousand. RoundRobin,
// LeastLoaded and a Sticky over either do.
package strategy

import (
	"context"
	"errors"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// ErrNoCandidate is returned by Pick when no candidate fits.
var ErrNoCandidate = errors.New("strategy: no candidate")

// Candidate is a manager who may take the dialog.
type Candidate struct {
	Manager bd.ManagerID
	// Open counts the dialogs the manager holds now.
	Open int
	// Capacity is the most open dialogs the manager may hold.
	Capacity int
	// LastAssignedAt is when the manager last received a dialog; zero if never.
	LastAssignedAt time.Time
	// Rank is the manager's place in the order the account's admin set
	// (Settings.Managers): 0 for the first. [StrictOrder] follows it.
	Rank int
}

// Request is what a strategy chooses over. Its slices belong to the caller
// and must not be modified or kept after Pick returns.
type Request struct {
	Dialog bd.Dialog
	// Candidates are the eligible managers, ordered by manager id. Never
	// empty when the distributor calls Pick.
	Candidates []Candidate
	// LastManager is the manager who last had a dialog of this customer, or
	// zero. It may or may not be among the candidates.
	LastManager bd.ManagerID
}

// Choice is a strategy's answer.
type Choice struct {
	Manager bd.ManagerID
	// Reason explains the choice in a few words for the decision trace,
	// e.g. "fewest open dialogs (2)".
	Reason string
}

// Strategy picks one manager among the candidates.
//
// Pick must return a manager that is among req.Candidates, or an error
// wrapping ErrNoCandidate when none fits. It must not modify the request,
// must be safe for concurrent use, must not block on I/O, and must give the
// same answer for the same request unless its documentation names a seeded
// source of randomness.
type Strategy interface {
	Pick(ctx context.Context, req Request) (Choice, error)
}

// Func adapts an ordinary function to the Strategy interface.
type Func func(ctx context.Context, req Request) (Choice, error)

// Pick calls f(ctx, req).
func (f Func) Pick(ctx context.Context, req Request) (Choice, error) { return f(ctx, req) }
