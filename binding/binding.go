// Package binding defines how the customer writing in a chat is linked to a
// customer record in retailCRM: the [Binder] interface, its [Request] and
// [Result], and the errors a Binder returns. It imports no implementation;
// the retailCRM binder and its retry queue are in package
// github.com/botdistributor/botdistributor/binding/retailcrm.
package binding

import (
	"context"
	"errors"

	bd "github.com/botdistributor/botdistributor"
)

// ErrUnavailable is returned (wrapped) by Bind when retailCRM is down,
// unreachable, throttling or too slow. The dialog should be distributed
// anyway and the binding retried later, e.g. with retailcrm.Pending.
var ErrUnavailable = errors.New("binding: retailCRM unavailable")

// ErrNoMatch is returned by Bind when no retailCRM customer matches and
// creating one is not enabled.
var ErrNoMatch = errors.New("binding: no matching customer")

// Rule tells how a binding was found.
type Rule string

// The binding rules, in the order a binder tries them.
const (
	ByLink  Rule = "linked"
	ByPhone Rule = "phone"
	ByEmail Rule = "email"
	Created Rule = "created"
)

// Request asks for a customer to be bound.
type Request struct {
	Account  bd.AccountID
	Customer bd.Customer
	// Create allows creating a retailCRM customer when nothing matches.
	Create bool
}

// Result is a binding.
type Result struct {
	CRMCustomer int64
	Rule        Rule
}

// Binder finds (or creates) the retailCRM customer of a chat customer and
// links them.
//
// Bind is safe for concurrent use and may block on I/O; concurrent calls for
// one customer must never create two retailCRM customers. It returns an error
// wrapping ErrNoMatch when nothing matches and req.Create is false.
type Binder interface {
	Bind(ctx context.Context, req Request) (Result, error)
}

// ProfileRequest asks for what retailCRM knows about a chat customer.
type ProfileRequest struct {
	Account  bd.AccountID
	Customer bd.Customer
	// CRMCustomer is the retailCRM customer the chat customer is bound to,
	// when known; zero lets the Profiler find it as a Binder would,
	// without creating one.
	CRMCustomer int64
}

// Profiler reads a chat customer's profile from retailCRM: the personal
// manager, segments and tags routing uses (see bd.CustomerProfile).
//
// Profile is safe for concurrent use and may block on I/O. It returns an
// error wrapping ErrNoMatch when no retailCRM customer matches, and one
// wrapping ErrUnavailable when retailCRM is down, unreachable, throttling
// or too slow.
type Profiler interface {
	Profile(ctx context.Context, req ProfileRequest) (bd.CustomerProfile, error)
}
