package main

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store"
)

// sampler watches capacity and responsibles while the load runs: from
// each account's sandbox MG (who is responsible for which open dialog) and
// from the store (each manager's load). A manager above capacity in either
// is a violation; a dialog whose responsible changed from one manager (or
// bot) to another is a double assignment, as nobody reassigns in this
// workload.
type sampler struct {
	accounts []*runAccount
	st       store.Store
	capacity int

	mu sync.Mutex
	// maxMG and maxStore are the most managers above capacity seen at
	// once, over every account.
	maxMG, maxStore int
	// maxExcess is the most dialogs one manager held above capacity.
	maxExcess int
	samples   int
	errs      int
	last      map[dialogRef]bd.Responsible
	doubles   map[dialogRef]bool
	loads     map[bd.AccountID][]store.Load
}

func newSampler(accounts []*runAccount, st store.Store, capacity int) *sampler {
	return &sampler{
		accounts: accounts, st: st, capacity: capacity,
		last: map[dialogRef]bd.Responsible{}, doubles: map[dialogRef]bool{}, loads: map[bd.AccountID][]store.Load{},
	}
}

// run samples until ctx ends, every interval, or less often when a sample
// takes long (never spending more than a fifth of the time sampling).
func (s *sampler) run(ctx context.Context, interval time.Duration) {
	for {
		start := time.Now()
		s.sample(ctx)
		wait := max(interval, 5*time.Since(start))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// sample takes one look at every account's MG and the store.
func (s *sampler) sample(ctx context.Context) {
	overMG, overStore, excess, errs := 0, 0, 0, 0
	for _, acc := range s.accounts {
		held := map[bd.ManagerID]int{}
		for _, d := range acc.mg.Dialogs() {
			ref := dialogRef{acc.id, d.ID}
			s.mu.Lock()
			if prev := s.last[ref]; !prev.IsZero() && !d.Responsible.IsZero() && prev != d.Responsible {
				s.doubles[ref] = true
			}
			if !d.Responsible.IsZero() {
				s.last[ref] = d.Responsible
			}
			s.mu.Unlock()
			if m, ok := d.Responsible.Manager(); ok && d.Active {
				held[m]++
			}
		}
		for _, n := range held {
			if n > s.capacity {
				overMG++
				excess = max(excess, n-s.capacity)
			}
		}
		s.mu.Lock()
		buf := s.loads[acc.id]
		s.mu.Unlock()
		loads, err := s.st.Loads(ctx, acc.id, acc.managers, buf)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				errs++
			}
			continue
		}
		s.mu.Lock()
		s.loads[acc.id] = loads
		s.mu.Unlock()
		for _, l := range loads {
			if l.Open > s.capacity {
				overStore++
				excess = max(excess, l.Open-s.capacity)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs += errs
	s.samples++
	s.maxMG = max(s.maxMG, overMG)
	s.maxStore = max(s.maxStore, overStore)
	s.maxExcess = max(s.maxExcess, excess)
}

// endState is the state at the end of a run, after the distributors
// settled.
type endState struct {
	open int
	// stranded are open dialogs with no responsible in MG that do not wait
	// in the store's queue with their reason's reply in MG.
	stranded int
	// noReply are the stranded dialogs that wait in the store's queue but
	// whose reason's reply is not in MG.
	noReply int
	// queued are open dialogs waiting in the store's queue.
	queued int
	// freeWhileQueued is how many dialogs wait although a manager has a
	// free slot: min(queue length, free slots).
	freeWhileQueued int
	// loadsOff is the sum over managers of the difference between their
	// load in the store and the open dialogs MG shows them holding.
	loadsOff int
}

// add adds another account's state to e.
func (e *endState) add(o endState) {
	e.open += o.open
	e.stranded += o.stranded
	e.noReply += o.noReply
	e.queued += o.queued
	e.freeWhileQueued += o.freeWhileQueued
	e.loadsOff += o.loadsOff
}

// inspect compares MG with the store. A dialog waiting in the queue counts
// as stranded until the reply of its reason is in MG's message log.
func inspect(ctx context.Context, m *sandbox.MG, st store.Store, account bd.AccountID, managers []bd.ManagerID, capacity int, rm *replyMatcher) (endState, error) {
	waiting, err := st.Waiting(ctx, account, math.MaxInt32)
	if err != nil {
		return endState{}, err
	}
	reason := make(map[bd.DialogID]bd.Situation, len(waiting))
	for _, w := range waiting {
		reason[w.Dialog.ID] = w.Reason
	}
	dialogs := m.Dialogs()
	landed, _ := botReplies(m, rm, dialogs)
	var es endState
	held := map[bd.ManagerID]int{}
	for _, d := range dialogs {
		if !d.Active {
			continue
		}
		es.open++
		if id, ok := d.Responsible.Manager(); ok {
			held[id]++
		}
		why, queued := reason[d.ID]
		switch {
		case queued:
			es.queued++
			if landed[replyKey{d.ID, why}] == 0 {
				es.stranded++
				es.noReply++
			}
		case d.Responsible.IsZero():
			es.stranded++
		}
	}
	loads, err := st.Loads(ctx, account, managers, nil)
	if err != nil {
		return endState{}, err
	}
	free := 0
	for _, l := range loads {
		free += max(0, capacity-l.Open)
		es.loadsOff += abs(l.Open - held[l.Manager])
	}
	es.freeWhileQueued = min(es.queued, free)
	return es, nil
}

// mismatched counts open dialogs whose responsible in the store is not the
// one MG has.
func mismatched(ctx context.Context, m *sandbox.MG, st store.Store, account bd.AccountID) (int, error) {
	n := 0
	for _, d := range m.Dialogs() {
		if !d.Active {
			continue
		}
		r, err := st.Responsible(ctx, account, d.ID)
		if errors.Is(err, store.ErrNotFound) {
			r, err = bd.Responsible{}, nil
		}
		if err != nil {
			return 0, err
		}
		if r != d.Responsible {
			n++
		}
	}
	return n, nil
}

// percentile returns the p-th percentile (0..100) of sorted ds by the
// nearest-rank method, or 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// spread returns the coefficient of variation (standard deviation over
// mean) of counts, 0 for perfectly even counts or no data.
func spread(counts []int) float64 {
	if len(counts) == 0 {
		return 0
	}
	var sum float64
	for _, c := range counts {
		sum += float64(c)
	}
	mean := sum / float64(len(counts))
	if mean == 0 {
		return 0
	}
	var sq float64
	for _, c := range counts {
		sq += (float64(c) - mean) * (float64(c) - mean)
	}
	return math.Sqrt(sq/float64(len(counts))) / mean
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
