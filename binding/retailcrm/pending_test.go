package retailcrm_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/binding/retailcrm"
	"github.com/botdistributor/botdistributor/sandbox"
)

type done struct {
	req binding.Request
	res binding.Result
	err error
}

// runPending starts p.Run and stops it when the test ends.
func runPending(t *testing.T, p *retailcrm.Pending) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

func TestPendingRetriesUntilCRMIsBack(t *testing.T) {
	e := setup(t)
	results := make(chan done, 10)
	p := newPending(t, e.binder, retailcrm.WithBackoff(time.Millisecond, 5*time.Millisecond),
		retailcrm.WithOnDone(func(req binding.Request, res binding.Result, err error) { results <- done{req, res, err} }))
	e.crm.SetFaults(sandbox.CRMFaults{Down: true})
	req := binding.Request{Account: account, Customer: bd.Customer{ID: 21, Email: "new@example.com"}, Create: true}
	if _, err := p.Bind(context.Background(), req); !errors.Is(err, binding.ErrUnavailable) {
		t.Fatalf("error %v", err)
	}
	// A repeated failure keeps one request per customer.
	if _, err := p.Bind(context.Background(), req); !errors.Is(err, binding.ErrUnavailable) || p.Len() != 1 {
		t.Fatalf("error %v, kept %d", err, p.Len())
	}
	if got := p.Requests(); len(got) != 1 || got[0] != req {
		t.Fatalf("kept %+v", got)
	}
	runPending(t, p)
	e.crm.SetFaults(sandbox.CRMFaults{})
	d := <-results
	if d.err != nil || d.res.Rule != binding.Created || d.req != req {
		t.Fatalf("done %+v", d)
	}
	if p.Len() != 0 || e.crm.Created() != 1 {
		t.Fatalf("kept %d, created %d", p.Len(), e.crm.Created())
	}
	if b, ok := e.store.get(21); !ok || b.CRMCustomer != d.res.CRMCustomer {
		t.Fatalf("stored %+v", b)
	}
}

func TestPendingDropsPermanentFailures(t *testing.T) {
	e := setup(t)
	results := make(chan done, 1)
	p := newPending(t, e.binder, retailcrm.WithBackoff(time.Millisecond, 0),
		retailcrm.WithOnDone(func(req binding.Request, res binding.Result, err error) { results <- done{req, res, err} }))
	p.Keep(binding.Request{Account: account, Customer: bd.Customer{ID: 3, Email: "nobody@example.com"}})
	runPending(t, p)
	if d := <-results; !errors.Is(d.err, binding.ErrNoMatch) {
		t.Fatalf("done %+v", d)
	}
	if p.Len() != 0 {
		t.Fatalf("kept %d", p.Len())
	}
}

// flaky fails each customer's first failures binds with ErrUnavailable.
type flaky struct {
	mu       sync.Mutex
	failures int
	calls    map[bd.CustomerID]int
}

func (f *flaky) Bind(_ context.Context, req binding.Request) (binding.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[req.Customer.ID]++
	if f.calls[req.Customer.ID] <= f.failures {
		return binding.Result{}, fmt.Errorf("flaky: %w", binding.ErrUnavailable)
	}
	return binding.Result{CRMCustomer: int64(req.Customer.ID) * 10, Rule: binding.ByEmail}, nil
}

// TestPendingLosesNothing runs on synctest's clock: every customer fails
// three times, so its bind is done after 5 s + 10 s + 15 s (the doubled
// backoff, capped), all of them at the same instant.
func TestPendingLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &flaky{failures: 3, calls: make(map[bd.CustomerID]int)}
		const n = 100
		results := make(chan done, n)
		doneAt := make(chan time.Time, n)
		p := newPending(t, f, retailcrm.WithBackoff(5*time.Second, 15*time.Second),
			retailcrm.WithOnDone(func(req binding.Request, res binding.Result, err error) {
				results <- done{req, res, err}
				doneAt <- time.Now()
			}))
		start := time.Now()
		runPending(t, p)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := p.Bind(context.Background(), binding.Request{Account: account, Customer: bd.Customer{ID: bd.CustomerID(i + 1)}})
				if !errors.Is(err, binding.ErrUnavailable) {
					t.Errorf("first bind of %d: %v", i+1, err)
				}
			}()
		}
		wg.Wait()
		seen := make(map[bd.CustomerID]bool)
		for range n {
			d := <-results
			if d.err != nil || d.res.CRMCustomer != int64(d.req.Customer.ID)*10 || seen[d.req.Customer.ID] {
				t.Fatalf("done %+v (seen before: %v)", d, seen[d.req.Customer.ID])
			}
			seen[d.req.Customer.ID] = true
			if at := (<-doneAt).Sub(start); at != 30*time.Second {
				t.Fatalf("customer %d done after %s, want 5 s + 10 s + 15 s", d.req.Customer.ID, at)
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for id, calls := range f.calls {
			if calls != f.failures+1 {
				t.Fatalf("customer %d bound %d times, want %d", id, calls, f.failures+1)
			}
		}
	})
}

func TestPendingKeepMerges(t *testing.T) {
	f := &flaky{calls: make(map[bd.CustomerID]int)}
	p := newPending(t, f, retailcrm.WithBackoff(time.Hour, 0))
	p.Keep(binding.Request{Account: account, Customer: bd.Customer{ID: 2}, Create: true})
	p.Keep(binding.Request{Account: account, Customer: bd.Customer{ID: 2, Email: "x@y.z"}})
	p.Keep(binding.Request{Account: "a", Customer: bd.Customer{ID: 9}})
	got := p.Requests()
	if len(got) != 2 || got[0].Account != "a" || got[1].Customer.Email != "x@y.z" || !got[1].Create {
		t.Fatalf("kept %+v", got)
	}
	// A successful Bind drops the kept request of that customer.
	if _, err := p.Bind(context.Background(), binding.Request{Account: account, Customer: bd.Customer{ID: 2}}); err != nil {
		t.Fatal(err)
	}
	if got := p.Requests(); len(got) != 1 || got[0].Account != "a" {
		t.Fatalf("kept %+v", got)
	}
}

func TestPendingRunIsExclusive(t *testing.T) {
	results := make(chan done, 1)
	p := newPending(t, &flaky{calls: make(map[bd.CustomerID]int)}, retailcrm.WithBackoff(time.Microsecond, 0),
		retailcrm.WithOnDone(func(req binding.Request, res binding.Result, err error) { results <- done{req, res, err} }))
	runPending(t, p)
	p.Keep(binding.Request{Account: account, Customer: bd.Customer{ID: 1}})
	<-results // the first Run is running
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("second Run returned %v, want a refusal", err)
	}
}

// newPending returns NewPending(binder, opts...), failing the test on an
// error.
func newPending(t *testing.T, binder binding.Binder, opts ...retailcrm.PendingOption) *retailcrm.Pending {
	t.Helper()
	p, err := retailcrm.NewPending(binder, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
