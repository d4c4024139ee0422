package strategy

import "context"

// RoundRobin picks the candidate who has waited longest since their last
// assignment: the oldest Candidate.LastAssignedAt wins, and a manager who
// was never assigned (zero LastAssignedAt) comes before everyone else. Ties
// go to the lower manager id. Times are compared by their wall clock (a
// monotonic clock reading is ignored), as a shared store keeps them.
//
// RoundRobin keeps no state of its own: the turn is derived from
// LastAssignedAt, which the distributor reads from the store. Several bot
// processes sharing one store therefore take turns fairly between them, and
// the rotation survives restarts.
//
// A RoundRobin is safe for concurrent use; its zero value is ready to use.
// Pick does not allocate and ignores ctx.
type RoundRobin struct{}

var _ Ordered = (*RoundRobin)(nil)

// NewRoundRobin returns a round robin strategy.
func NewRoundRobin() *RoundRobin { return &RoundRobin{} }

// The reasons RoundRobin gives in a Choice.
const (
	reasonRoundRobin      = "longest since last assignment"
	reasonRoundRobinNever = "longest since last assignment (never)"
)

// Pick returns the candidate who has gone longest without an assignment, or
// an error wrapping ErrNoCandidate when req has no candidates.
func (*RoundRobin) Pick(_ context.Context, req Request) (Choice, error) {
	cs := req.Candidates
	if len(cs) == 0 {
		return Choice{}, noCandidate()
	}
	// The times are compared as Unix seconds and nanoseconds, which the
	// compiler inlines, where time.Time.Compare is a call per candidate.
	best := &cs[0]
	bestNever := best.LastAssignedAt.IsZero()
	bestSec, bestNsec := best.LastAssignedAt.Unix(), best.LastAssignedAt.Nanosecond()
	for i := 1; i < len(cs); i++ {
		c := &cs[i]
		if c.LastAssignedAt.IsZero() {
			if !bestNever || c.Manager < best.Manager {
				best, bestNever = c, true
			}
			continue
		}
		if bestNever {
			continue
		}
		sec, nsec := c.LastAssignedAt.Unix(), c.LastAssignedAt.Nanosecond()
		switch {
		case sec < bestSec || sec == bestSec && nsec < bestNsec:
			best, bestSec, bestNsec = c, sec, nsec
		case sec == bestSec && nsec == bestNsec && c.Manager < best.Manager:
			best = c
		}
	}
	reason := reasonRoundRobin
	if bestNever {
		reason = reasonRoundRobinNever
	}
	return Choice{Manager: best.Manager, Reason: reason}, nil
}

// Order returns RoundRobin's order (see [Ordered]): never assigned first,
// then the oldest last assignment, then the lower manager id.
func (*RoundRobin) Order() func(a, b Candidate) int { return compareRoundRobin }
