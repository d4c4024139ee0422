package demo

import (
	"slices"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
)

// stats counts what the distributor and the simulation did. It is safe for
// concurrent use: the distributor's hooks run on its goroutines.
type stats struct {
	mu         sync.Mutex
	opened     int
	closed     int
	assigned   map[bd.Responsible]int
	fromQueue  int
	queued     int
	reassigned int
	replies    int
	errors     int
	errorOps   map[string]int
	waits      []time.Duration
}

func newStats() *stats {
	return &stats{assigned: make(map[bd.Responsible]int), errorOps: make(map[string]int)}
}

// hooks counts the distributor's outcomes.
func (s *stats) hooks() distributor.Hooks {
	return distributor.Hooks{
		Assigned: func(_ bd.AccountID, to bd.Responsible, wait time.Duration, fromQueue bool) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.assigned[to]++
			if fromQueue {
				s.fromQueue++
			}
			s.waits = append(s.waits, max(wait, 0))
		},
		Queued: func(bd.AccountID, bd.Situation) {
			s.mu.Lock()
			s.queued++
			s.mu.Unlock()
		},
		Reassigned: func(bd.AccountID, bd.ManagerID, bd.Responsible) {
			s.mu.Lock()
			s.reassigned++
			s.mu.Unlock()
		},
		Replied: func(bd.AccountID, bd.Situation) {
			s.mu.Lock()
			s.replies++
			s.mu.Unlock()
		},
		Failed: func(_ bd.AccountID, op string, _ error) {
			s.mu.Lock()
			s.errors++
			s.errorOps[op]++
			s.mu.Unlock()
		},
	}
}

func (s *stats) addOpened() {
	s.mu.Lock()
	s.opened++
	s.mu.Unlock()
}

func (s *stats) addClosed() {
	s.mu.Lock()
	s.closed++
	s.mu.Unlock()
}

// snapshot is a copy of the counters.
type snapshot struct {
	opened, closed, assigned, fromQueue, queued, reassigned, replies, errors int
	perResponsible                                                           map[bd.Responsible]int
	errorOps                                                                 map[string]int
	p50, p99                                                                 time.Duration
}

func (s *stats) snapshot() snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := snapshot{
		opened: s.opened, closed: s.closed, fromQueue: s.fromQueue, queued: s.queued,
		reassigned: s.reassigned, replies: s.replies, errors: s.errors,
		perResponsible: make(map[bd.Responsible]int, len(s.assigned)),
		errorOps:       make(map[string]int, len(s.errorOps)),
	}
	for r, n := range s.assigned {
		out.perResponsible[r] = n
		out.assigned += n
	}
	for op, n := range s.errorOps {
		out.errorOps[op] = n
	}
	if len(s.waits) > 0 {
		w := slices.Clone(s.waits)
		slices.Sort(w)
		out.p50 = quantile(w, 0.50)
		out.p99 = quantile(w, 0.99)
	}
	return out
}

// quantile returns the q-quantile of sorted values (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
