package strategy

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Capped removes the candidates holding n or more open dialogs and lets
// another strategy choose among the rest. It puts one limit in front of any
// strategy, on top of the per-manager capacities the distributor already
// enforces.
//
// A Capped is safe for concurrent use when its next strategy is. Pick does
// not modify the request: when some candidates must go, the rest are copied
// into a pooled buffer that is handed to next and reused once next returns
// (the [Strategy] contract forbids keeping it).
type Capped struct {
	next Strategy
	n    int
}

var _ Strategy = (*Capped)(nil)

// NewCapped returns a strategy that passes to next only the candidates with
// fewer than n open dialogs. It fails when next is nil or n is less than 1.
func NewCapped(next Strategy, n int) (*Capped, error) {
	if isNil(next) {
		return nil, errors.New("strategy: capped: next strategy is nil")
	}
	if n < 1 {
		return nil, fmt.Errorf("strategy: capped: limit must be at least 1, got %d", n)
	}
	return &Capped{next: next, n: n}, nil
}

// Limit returns n: candidates with n or more open dialogs are removed.
func (s *Capped) Limit() int { return s.n }

// maxPooled bounds the buffers kept for reuse, so that one huge request does
// not pin its memory for the life of the process.
const maxPooled = 1 << 14

var candidatePool = sync.Pool{New: func() any { return new([]Candidate) }}

// Pick removes the candidates at or above the limit and returns next's
// choice among the others. When no candidate remains it returns an error
// wrapping ErrNoCandidate without calling next. If next answers with a
// manager that is not among the remaining candidates, Pick returns an error
// rather than break the limit.
func (s *Capped) Pick(ctx context.Context, req Request) (Choice, error) {
	cs := req.Candidates
	if len(cs) == 0 {
		return Choice{}, noCandidate()
	}
	// Find the first candidate to remove; if there is none, the request
	// goes to next as it is, without a copy.
	first := -1
	for i := range cs {
		if cs[i].Open >= s.n {
			first = i
			break
		}
	}
	if first < 0 {
		return s.choose(ctx, req, cs)
	}

	bufp := candidatePool.Get().(*[]Candidate)
	buf := append((*bufp)[:0], cs[:first]...)
	for i := first + 1; i < len(cs); i++ {
		if cs[i].Open < s.n {
			buf = append(buf, cs[i])
		}
	}
	defer func() {
		if cap(buf) <= maxPooled {
			clear(buf) // drop references held by the candidates' time locations
			*bufp = buf[:0]
			candidatePool.Put(bufp)
		}
	}()
	if len(buf) == 0 {
		return Choice{}, fmt.Errorf("%w: all %d candidates hold %d or more open dialogs", ErrNoCandidate, len(cs), s.n)
	}
	sub := req
	sub.Candidates = buf
	return s.choose(ctx, sub, buf)
}

func (s *Capped) choose(ctx context.Context, req Request, allowed []Candidate) (Choice, error) {
	c, err := s.next.Pick(ctx, req)
	if err != nil {
		return Choice{}, err
	}
	if !contains(allowed, c.Manager) {
		return Choice{}, fmt.Errorf("strategy: capped: next strategy chose manager %d, who is not among the %d candidates below the limit of %d", c.Manager, len(allowed), s.n)
	}
	return c, nil
}
