// Package strategytest is a conformance suite for implementations of
// [strategy.Strategy]. Every built-in strategy runs it, and a custom
// strategy can run it from its own tests:
//
//	func TestMyStrategy(t *testing.T) {
//		strategytest.Run(t, func(t *testing.T) strategy.Strategy {
//			return mystrategy.New()
//		})
//	}
//
// The suite checks the contract written on [strategy.Strategy]; it does not
// check which manager a strategy prefers, which is each strategy's own
// business and belongs in its own tests.
package strategytest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/internal/option"
	"github.com/botdistributor/botdistributor/strategy"
)

// Option changes how [Run] checks a strategy; pass options to Run. Run
// fails the test at once on a nil Option.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

type config struct {
	seeded bool
}

// WithSeeded declares that the strategy documents a seeded source of
// randomness, so the same request may get different answers from one
// instance. The Deterministic subtest then checks that two fresh instances
// from newStrategy give the same sequence of answers, and Concurrent checks
// only that every answer is among the candidates. Without it, the strategy
// must give one instance's same request the same answer.
func WithSeeded() Option {
	return optionFunc(func(c *config) error {
		c.seeded = true
		return nil
	})
}

// newConfig applies opts and returns the refusals, joined and prefixed
// with "strategytest: ".
func newConfig(opts []Option) (config, error) {
	var cfg config
	if err := option.Apply(opts, func(o Option) error { return o.apply(&cfg) }); err != nil {
		return config{}, fmt.Errorf("strategytest: %w", err)
	}
	return cfg, nil
}

// seed makes the generated requests the same on every run, so that a
// failure can be reproduced.
const seed = 20240601

// maxReports bounds the failures a subtest reports before it stops, so that
// one defect does not bury the output.
const maxReports = 5

// Run checks that the strategies returned by newStrategy follow the
// [strategy.Strategy] contract. It calls newStrategy once per subtest, with
// that subtest's t. The subtests are:
//
//   - ChoosesACandidate: over many seeded random requests, every choice is
//     among the candidates (also when the customer's last manager is not
//     one of them and when candidates are not ordered by id); an error must
//     wrap strategy.ErrNoCandidate; and the strategy chooses someone at
//     least once.
//   - NoCandidates: a request with nil or empty candidates gets an error
//     wrapping strategy.ErrNoCandidate, whatever its LastManager.
//   - RequestNotModified: Pick writes nothing into the candidates' backing
//     array, including its spare capacity.
//   - Deterministic: the same request twice gets the same choice and reason
//     (see [WithSeeded] for strategies with a seeded random source).
//   - Concurrent: many goroutines calling Pick at once on shared requests
//     get correct answers; run the tests with -race to catch data races.
//   - Order: for a strategy that implements [strategy.Ordered] with a
//     non-nil order (for others it checks nothing), the order is a strict total order over distinct
//     managers, and Pick over the first k candidates in that order (plus
//     the last manager's candidate) chooses as Pick over all of them, for
//     k = 1, 2, 3, 8 — what the distributor relies on when it passes only
//     the head of a large pool's index.
//
// Strategies are not required to watch ctx; the suite passes a live context.
func Run(t *testing.T, newStrategy func(t *testing.T) strategy.Strategy, opts ...Option) {
	t.Helper()
	cfg, err := newConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ChoosesACandidate", func(t *testing.T) { testChoosesACandidate(t, newStrategy(t)) })
	t.Run("NoCandidates", func(t *testing.T) { testNoCandidates(t, newStrategy(t)) })
	t.Run("RequestNotModified", func(t *testing.T) { testRequestNotModified(t, newStrategy(t)) })
	t.Run("Deterministic", func(t *testing.T) {
		if cfg.seeded {
			testSameSequence(t, newStrategy(t), newStrategy(t))
		} else {
			testDeterministic(t, newStrategy(t))
		}
	})
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newStrategy(t), !cfg.seeded) })
	t.Run("Order", func(t *testing.T) { testOrder(t, newStrategy(t)) })
}

// outcome is what one Pick returned, in a form that can be compared.
type outcome struct {
	choice strategy.Choice
	err    error
}

func (o outcome) same(p outcome) bool {
	if (o.err == nil) != (p.err == nil) {
		return false
	}
	if o.err != nil {
		return errors.Is(o.err, strategy.ErrNoCandidate) == errors.Is(p.err, strategy.ErrNoCandidate)
	}
	return o.choice == p.choice
}

func (o outcome) String() string {
	if o.err != nil {
		return "error " + o.err.Error()
	}
	return fmt.Sprintf("manager %d (%q)", o.choice.Manager, o.choice.Reason)
}

func pick(ctx context.Context, s strategy.Strategy, req strategy.Request) outcome {
	c, err := s.Pick(ctx, req)
	return outcome{c, err}
}

// check returns what is wrong with o as an answer to req, or "".
func check(req strategy.Request, o outcome) string {
	if o.err != nil {
		if !errors.Is(o.err, strategy.ErrNoCandidate) {
			return fmt.Sprintf("returned error %q, which does not wrap strategy.ErrNoCandidate", o.err)
		}
		return ""
	}
	for _, c := range req.Candidates {
		if c.Manager == o.choice.Manager {
			return ""
		}
	}
	return fmt.Sprintf("chose manager %d, who is not among the candidates", o.choice.Manager)
}

func testChoosesACandidate(t *testing.T, s strategy.Strategy) {
	r := rand.New(rand.NewPCG(seed, 1))
	const n = 1000
	chosen, reports := 0, 0
	for i := range n {
		req := randomRequest(r)
		o := pick(t.Context(), s, req)
		if msg := check(req, o); msg != "" {
			t.Errorf("request %d: %s\n%s", i, msg, describe(req))
			if reports++; reports == maxReports {
				t.Fatalf("stopping after %d failures", reports)
			}
			continue
		}
		if o.err == nil {
			chosen++
		}
	}
	if chosen == 0 && reports == 0 {
		t.Errorf("returned strategy.ErrNoCandidate for all %d requests with candidates; it never chooses anyone", n)
	}
}

func testOrder(t *testing.T, s strategy.Strategy) {
	o, ok := s.(strategy.Ordered)
	if !ok || o.Order() == nil {
		return // it follows no order: the distributor passes it every candidate
	}
	order := o.Order()
	r := rand.New(rand.NewPCG(seed, 6))
	reports := 0
	report := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if reports++; reports == maxReports {
			t.Fatalf("stopping after %d failures", reports)
		}
	}
	for i := range 1000 {
		req := randomRequest(r)
		cs := req.Candidates
		for a := range cs {
			for b := range cs {
				ab, ba := order(cs[a], cs[b]), order(cs[b], cs[a])
				switch {
				case a == b && ab != 0:
					report("request %d: order(x, x) = %d for %s, want 0", i, ab, candidate(cs[a]))
				case a != b && (ab == 0 || ab > 0 == (ba > 0)):
					report("request %d: order is not a strict total order: order(%s, %s) = %d, reversed %d", i, candidate(cs[a]), candidate(cs[b]), ab, ba)
				}
			}
		}
		all := pick(t.Context(), s, req)
		sorted := slices.SortedFunc(slices.Values(cs), order)
		for _, k := range []int{1, 2, 3, 8} {
			head := slices.Clone(sorted[:min(k, len(sorted))])
			if req.LastManager != 0 && !slices.ContainsFunc(head, func(c strategy.Candidate) bool { return c.Manager == req.LastManager }) {
				if j := slices.IndexFunc(cs, func(c strategy.Candidate) bool { return c.Manager == req.LastManager }); j >= 0 {
					head = append(head, cs[j])
				}
			}
			slices.SortFunc(head, func(a, b strategy.Candidate) int { return int(a.Manager - b.Manager) })
			sub := req
			sub.Candidates = head
			if got := pick(t.Context(), s, sub); !got.same(all) {
				report("request %d: over the first %d candidates in the strategy's order Pick %v, over all of them %v\n%s", i, k, got, all, describe(req))
			}
		}
	}
}

func testNoCandidates(t *testing.T, s strategy.Strategy) {
	cases := []struct {
		name string
		req  strategy.Request
	}{
		{"nil", strategy.Request{}},
		{"empty", strategy.Request{Candidates: []strategy.Candidate{}}},
		{"nil with last manager", strategy.Request{LastManager: 7}},
		{"empty with last manager", strategy.Request{Candidates: []strategy.Candidate{}, LastManager: 7}},
	}
	for _, tc := range cases {
		tc.req.Dialog = bd.Dialog{Account: "shop.example.com", ID: 1, Chat: 1}
		o := pick(t.Context(), s, tc.req)
		switch {
		case o.err == nil:
			t.Errorf("%s candidates: chose manager %d, want an error wrapping strategy.ErrNoCandidate", tc.name, o.choice.Manager)
		case !errors.Is(o.err, strategy.ErrNoCandidate):
			t.Errorf("%s candidates: error %q does not wrap strategy.ErrNoCandidate", tc.name, o.err)
		}
	}
}

func testRequestNotModified(t *testing.T, s strategy.Strategy) {
	r := rand.New(rand.NewPCG(seed, 2))
	reports := 0
	for i := range 200 {
		req := randomRequest(r)
		// Give the slice spare capacity filled with markers, to catch a
		// strategy that appends to the caller's slice.
		n := len(req.Candidates)
		backing := make([]strategy.Candidate, n, n+4)
		copy(backing, req.Candidates)
		spare := backing[n:cap(backing)]
		for j := range spare {
			spare[j] = strategy.Candidate{Manager: bd.ManagerID(-1 - j), Open: -1}
		}
		req.Candidates = backing
		before := slices.Clone(backing[:cap(backing)])

		pick(t.Context(), s, req)

		if after := backing[:cap(backing)]; !slices.Equal(before, after) {
			what := "changed the candidates"
			if slices.Equal(before[:n], after[:n]) {
				what = "wrote past the candidates into the slice's spare capacity"
			}
			t.Errorf("request %d: Pick %s:%s", i, what, diff(before, after, n))
			if reports++; reports == maxReports {
				t.Fatalf("stopping after %d failures", reports)
			}
		}
	}
}

func testDeterministic(t *testing.T, s strategy.Strategy) {
	r := rand.New(rand.NewPCG(seed, 3))
	reports := 0
	for i := range 300 {
		req := randomRequest(r)
		first := pick(t.Context(), s, req)
		// Ask again with an equal request in fresh memory.
		again := req
		again.Candidates = slices.Clone(req.Candidates)
		second := pick(t.Context(), s, again)
		if !first.same(second) {
			t.Errorf("request %d: the same request got %v, then %v\n%s", i, first, second, describe(req))
			if reports++; reports == maxReports {
				t.Fatalf("stopping after %d failures", reports)
			}
		}
	}
}

func testSameSequence(t *testing.T, a, b strategy.Strategy) {
	r := rand.New(rand.NewPCG(seed, 3))
	reports := 0
	for i := range 300 {
		req := randomRequest(r)
		oa, ob := pick(t.Context(), a, req), pick(t.Context(), b, req)
		if !oa.same(ob) {
			t.Errorf("request %d: two fresh instances answered %v and %v\n%s", i, oa, ob, describe(req))
			if reports++; reports == maxReports {
				t.Fatalf("stopping after %d failures", reports)
			}
		}
	}
}

func testConcurrent(t *testing.T, s strategy.Strategy, deterministic bool) {
	r := rand.New(rand.NewPCG(seed, 4))
	reqs := make([]strategy.Request, 32)
	want := make([]outcome, len(reqs))
	for i := range reqs {
		reqs[i] = randomRequest(r)
		if deterministic {
			want[i] = pick(t.Context(), s, reqs[i])
		}
	}
	snapshot := make([][]strategy.Candidate, len(reqs))
	for i, req := range reqs {
		snapshot[i] = slices.Clone(req.Candidates)
	}

	const goroutines, picks = 8, 250
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		reports int
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if reports < maxReports {
			t.Errorf(format, args...)
		}
		reports++
	}
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for k := range picks {
				i := (g*7 + k) % len(reqs)
				o := pick(t.Context(), s, reqs[i])
				if msg := check(reqs[i], o); msg != "" {
					report("goroutine %d, request %d: %s\n%s", g, i, msg, describe(reqs[i]))
				} else if deterministic && !o.same(want[i]) {
					report("goroutine %d, request %d: got %v under concurrent use, %v alone\n%s", g, i, o, want[i], describe(reqs[i]))
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if reports > maxReports {
		t.Errorf("%d more failures not shown", reports-maxReports)
	}
	for i, req := range reqs {
		if !slices.Equal(snapshot[i], req.Candidates) {
			t.Errorf("request %d: the shared request's candidates were changed:%s", i, diff(snapshot[i], req.Candidates, len(req.Candidates)))
		}
	}
}

// base is the time the generated LastAssignedAt values are near.
var base = time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)

// randomRequest returns a request such as the distributor makes: one to
// forty candidates ordered by id with loads below capacity, near-equal
// loads and times so that ties occur, a fair share of managers never
// assigned, and a last manager who is absent, a candidate or someone else.
// One request in ten has its candidates out of order, which the contract
// rules out but a strategy must survive.
func randomRequest(r *rand.Rand) strategy.Request {
	n := 1 + r.IntN(40)
	cs := make([]strategy.Candidate, n)
	id := bd.ManagerID(1 + r.IntN(5))
	for i := range cs {
		capacity := 1 + r.IntN(8)
		// Ranks are places in the admin's order; equal ones occur.
		c := strategy.Candidate{Manager: id, Open: r.IntN(capacity), Capacity: capacity, Rank: r.IntN(n)}
		if r.IntN(10) >= 3 {
			c.LastAssignedAt = base.Add(time.Duration(r.IntN(20)) * time.Minute)
		}
		cs[i] = c
		id += bd.ManagerID(1 + r.IntN(3))
	}
	if r.IntN(10) == 0 {
		r.Shuffle(n, func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	}
	req := strategy.Request{
		Dialog: bd.Dialog{
			Account:  "shop.example.com",
			ID:       bd.DialogID(1 + r.IntN(1_000_000)),
			Chat:     bd.ChatID(1 + r.IntN(1_000_000)),
			Channel:  bd.ChannelID(1 + r.IntN(5)),
			Customer: bd.Customer{ID: bd.CustomerID(1 + r.IntN(1000)), FirstName: "Customer"},
			OpenedAt: base.Add(time.Hour),
		},
		Candidates: cs,
	}
	switch r.IntN(3) {
	case 1:
		req.LastManager = cs[r.IntN(n)].Manager
	case 2:
		req.LastManager = id + bd.ManagerID(r.IntN(5)) // past every candidate
	}
	return req
}

// describe formats a request for a failure message.
func describe(req strategy.Request) string {
	var b strings.Builder
	fmt.Fprintf(&b, "request: dialog %d, last manager %d, %d candidates:", req.Dialog.ID, req.LastManager, len(req.Candidates))
	for _, c := range req.Candidates {
		b.WriteString("\n\t")
		b.WriteString(candidate(c))
	}
	return b.String()
}

// diff lists the positions where before and after differ; positions from n
// on are the slice's spare capacity.
func diff(before, after []strategy.Candidate, n int) string {
	var b strings.Builder
	for i := range before {
		if before[i] == after[i] {
			continue
		}
		where := fmt.Sprintf("candidate [%d]", i)
		if i >= n {
			where = fmt.Sprintf("spare capacity [%d]", i)
		}
		fmt.Fprintf(&b, "\n\t%s was %s\n\t%s  is %s", where, candidate(before[i]), strings.Repeat(" ", len(where)), candidate(after[i]))
	}
	return b.String()
}

func candidate(c strategy.Candidate) string {
	last := "never"
	if !c.LastAssignedAt.IsZero() {
		last = c.LastAssignedAt.Format(time.RFC3339)
	}
	return fmt.Sprintf("manager %d: open %d of %d, last assigned %s", c.Manager, c.Open, c.Capacity, last)
}
