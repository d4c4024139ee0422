package strategy

import (
	"cmp"
	"context"
	"strconv"
)

// StrictOrder picks the candidate the account's admin listed first: the
// lowest [Candidate.Rank], whatever the loads, so that dialogs go down the
// list in the order it was set ("exactly as enqueued"): the first manager
// gets dialogs until they are full or away, then the second, and so on.
// Ties in rank (candidates from a caller that sets none) go to the lower
// manager id. Combined with the account's "unanswered after N minutes"
// forwarding (Settings.ReassignAfter), a dialog the first manager leaves
// unanswered moves on to the next one with room.
//
// A StrictOrder keeps no state and is safe for concurrent use; its zero
// value is ready to use. Pick ignores ctx and does not allocate for the
// first 100 places.
type StrictOrder struct{}

var _ Ordered = (*StrictOrder)(nil)

// NewStrictOrder returns a strict order strategy.
func NewStrictOrder() *StrictOrder { return &StrictOrder{} }

// placeReasons holds the reason texts for the first places.
var placeReasons = func() (r [100]string) {
	for i := range r {
		r[i] = placeReason(i)
	}
	return r
}()

func placeReason(rank int) string {
	return "first in the set order (place " + strconv.Itoa(rank+1) + ")"
}

// Pick returns the candidate with the lowest rank, or an error wrapping
// ErrNoCandidate when req has no candidates.
func (*StrictOrder) Pick(_ context.Context, req Request) (Choice, error) {
	cs := req.Candidates
	if len(cs) == 0 {
		return Choice{}, noCandidate()
	}
	best := &cs[0]
	for i := 1; i < len(cs); i++ {
		if compareStrict(cs[i], *best) < 0 {
			best = &cs[i]
		}
	}
	reason := ""
	if best.Rank >= 0 && best.Rank < len(placeReasons) {
		reason = placeReasons[best.Rank]
	} else {
		reason = placeReason(best.Rank)
	}
	return Choice{Manager: best.Manager, Reason: reason}, nil
}

// Order returns StrictOrder's order (see [Ordered]): lowest rank first,
// then lowest manager id.
func (*StrictOrder) Order() func(a, b Candidate) int { return compareStrict }

func compareStrict(a, b Candidate) int {
	if c := cmp.Compare(a.Rank, b.Rank); c != 0 {
		return c
	}
	return cmp.Compare(a.Manager, b.Manager)
}
