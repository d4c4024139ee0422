package strategy

import "context"

// RoundRobin picks the candidate who has waited longest since their last
// assignment: the oldest Candidate.LastAssignedAt wins, and a manager who
// was never assigned (zero LastAssignedAt) comes before everyone else. Ties
// go to the lower manager id.
//
// RoundRobin keeps no state of its own: the turn is derived from
// LastAssignedAt, which the distributor reads from the store. Several bot
// processes sharing one store therefore take turns fairly between them, and
// the rotation survives restarts.
//
// A RoundRobin is safe for concurrent use; its zero value is ready to use.
// Pick does not allocate and ignores ctx.
type RoundRobin struct{}

var _ Strategy = (*RoundRobin)(nil)

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
	best := &cs[0]
	bestAt, bestNever := best.LastAssignedAt, best.LastAssignedAt.IsZero()
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
		switch c.LastAssignedAt.Compare(bestAt) {
		case -1:
			best, bestAt = c, c.LastAssignedAt
		case 0:
			if c.Manager < best.Manager {
				best = c
			}
		}
	}
	reason := reasonRoundRobin
	if bestNever {
		reason = reasonRoundRobinNever
	}
	return Choice{Manager: best.Manager, Reason: reason}, nil
}
