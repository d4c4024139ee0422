package strategy

import (
	"context"
	"strconv"
)

// LeastLoaded picks the candidate holding the fewest open dialogs. Ties go
// to the one who has waited longest since their last assignment (never
// assigned first, as in [RoundRobin]), then to the lower manager id.
//
// Like RoundRobin it keeps no state: the loads come from the store in the
// request, so several processes sharing a store agree on who is least
// loaded.
//
// A LeastLoaded is safe for concurrent use; its zero value is ready to use.
// Pick ignores ctx and does not allocate unless the winner holds more than
// 99 open dialogs (the reason text is then formatted).
type LeastLoaded struct{}

var _ Ordered = (*LeastLoaded)(nil)

// NewLeastLoaded returns a least loaded strategy.
func NewLeastLoaded() *LeastLoaded { return &LeastLoaded{} }

// fewestReasons holds the reason texts for the common loads, so that Pick
// need not build a string.
var fewestReasons = func() (r [100]string) {
	for i := range r {
		r[i] = fewestReason(i)
	}
	return r
}()

func fewestReason(open int) string {
	return "fewest open dialogs (" + strconv.Itoa(open) + ")"
}

// Pick returns the candidate with the fewest open dialogs, or an error
// wrapping ErrNoCandidate when req has no candidates.
func (*LeastLoaded) Pick(_ context.Context, req Request) (Choice, error) {
	cs := req.Candidates
	if len(cs) == 0 {
		return Choice{}, noCandidate()
	}
	best := &cs[0]
	for i := 1; i < len(cs); i++ {
		if compareLeastLoaded(cs[i], *best) < 0 {
			best = &cs[i]
		}
	}
	var reason string
	if best.Open >= 0 && best.Open < len(fewestReasons) {
		reason = fewestReasons[best.Open]
	} else {
		reason = fewestReason(best.Open)
	}
	return Choice{Manager: best.Manager, Reason: reason}, nil
}

// Order returns LeastLoaded's order (see [Ordered]): fewest open dialogs
// first, then as [RoundRobin].
func (*LeastLoaded) Order() func(a, b Candidate) int { return compareLeastLoaded }
