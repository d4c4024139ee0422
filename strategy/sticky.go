package strategy

import (
	"context"
	"errors"
)

// Sticky gives a returning customer the manager they had last time, when
// that manager is among the candidates (that is, eligible now); otherwise it
// lets another strategy choose.
//
// A Sticky is safe for concurrent use when its next strategy is.
type Sticky struct {
	next Strategy
}

var _ Ordered = (*Sticky)(nil)

// NewSticky returns a strategy that prefers req.LastManager and falls back
// to next. It fails when next is nil.
func NewSticky(next Strategy) (*Sticky, error) {
	if isNil(next) {
		return nil, errors.New("strategy: sticky: next strategy is nil")
	}
	return &Sticky{next: next}, nil
}

// reasonSticky is the reason Sticky gives when it keeps the last manager.
const reasonSticky = "returning customer's last manager"

// Pick returns req.LastManager when it is among the candidates, else next's
// choice. It returns an error wrapping ErrNoCandidate when req has no
// candidates.
func (s *Sticky) Pick(ctx context.Context, req Request) (Choice, error) {
	if len(req.Candidates) == 0 {
		return Choice{}, noCandidate()
	}
	if req.LastManager != 0 && contains(req.Candidates, req.LastManager) {
		return Choice{Manager: req.LastManager, Reason: reasonSticky}, nil
	}
	return s.next.Pick(ctx, req)
}

// Order returns the order of the next strategy when it is [Ordered], else
// nil: Sticky's own preference, the last manager, is one the distributor
// always passes along with the first candidates.
func (s *Sticky) Order() func(a, b Candidate) int {
	if o, ok := s.next.(Ordered); ok {
		return o.Order()
	}
	return nil
}
