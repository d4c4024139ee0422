package strategy_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/strategy"
)

// t0 is the time the test candidates' LastAssignedAt values count from.
var t0 = time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)

// never is the LastAssignedAt of a manager who was never assigned.
var never time.Time

// at returns t0 plus m minutes.
func at(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

// cand returns a candidate with capacity 10.
func cand(id bd.ManagerID, open int, last time.Time) strategy.Candidate {
	return strategy.Candidate{Manager: id, Open: open, Capacity: 10, LastAssignedAt: last}
}

func request(cs ...strategy.Candidate) strategy.Request {
	return strategy.Request{
		Dialog:     bd.Dialog{Account: "shop.example.com", ID: 100, Chat: 200},
		Candidates: cs,
	}
}

// pickCase is one table row for a strategy's preference tests.
type pickCase struct {
	name       string
	req        strategy.Request
	want       bd.ManagerID
	wantReason string
}

func runPickCases(t *testing.T, s strategy.Strategy, cases []pickCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Pick(t.Context(), tc.req)
			if err != nil {
				t.Fatalf("Pick: %v", err)
			}
			if got.Manager != tc.want || got.Reason != tc.wantReason {
				t.Errorf("Pick = manager %d (%q), want manager %d (%q)", got.Manager, got.Reason, tc.want, tc.wantReason)
			}
		})
	}
}

// hammer calls s.Pick from many goroutines at once on one shared request
// and checks that every answer equals the answer given alone. Run under
// -race it also catches unsynchronised state.
func hammer(t *testing.T, s strategy.Strategy, req strategy.Request) {
	t.Helper()
	want, wantErr := s.Pick(t.Context(), req)
	const goroutines, picks = 16, 500
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			<-start
			for range picks {
				got, err := s.Pick(t.Context(), req)
				if got != want || (err == nil) != (wantErr == nil) {
					errs <- fmt.Errorf("concurrent Pick = %+v, %v; alone %+v, %v", got, err, want, wantErr)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// hammerRequest is a request of 200 candidates with mixed loads and times.
func hammerRequest() strategy.Request {
	cs := make([]strategy.Candidate, 200)
	for i := range cs {
		last := at(i % 37)
		if i%11 == 0 {
			last = never
		}
		cs[i] = strategy.Candidate{Manager: bd.ManagerID(i + 1), Open: i % 5, Capacity: 5 + i%3, LastAssignedAt: last}
	}
	req := request(cs...)
	req.LastManager = 150
	return req
}

// recorder is a strategy that records the requests it gets and answers
// with answer, or with the first candidate when answer is nil.
type recorder struct {
	mu     sync.Mutex
	calls  []strategy.Request
	answer func(strategy.Request) (strategy.Choice, error)
}

func (r *recorder) Pick(_ context.Context, req strategy.Request) (strategy.Choice, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Keep a copy: the request's slices may not be kept after Pick.
	cp := req
	cp.Candidates = append([]strategy.Candidate(nil), req.Candidates...)
	r.calls = append(r.calls, cp)
	if r.answer != nil {
		return r.answer(req)
	}
	if len(req.Candidates) == 0 {
		return strategy.Choice{}, strategy.ErrNoCandidate
	}
	return strategy.Choice{Manager: req.Candidates[0].Manager, Reason: "first"}, nil
}

func (r *recorder) Calls() []strategy.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]strategy.Request(nil), r.calls...)
}

func ids(cs []strategy.Candidate) []bd.ManagerID {
	out := make([]bd.ManagerID, len(cs))
	for i, c := range cs {
		out[i] = c.Manager
	}
	return out
}
