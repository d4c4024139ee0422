package retailcrm_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/binding/retailcrm"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store"
)

const account bd.AccountID = "shop"

// bindings is a store.Bindings in memory that counts writes and can fail.
type bindings struct {
	mu      sync.Mutex
	m       map[bd.CustomerID]store.Binding
	saves   int
	saveErr error
}

func newBindings() *bindings { return &bindings{m: make(map[bd.CustomerID]store.Binding)} }

func (s *bindings) Binding(_ context.Context, a bd.AccountID, c bd.CustomerID) (store.Binding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[c]
	if !ok || b.Account != a {
		return store.Binding{}, store.ErrNotFound
	}
	return b, nil
}

func (s *bindings) SaveBinding(_ context.Context, b store.Binding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saveErr != nil {
		return s.saveErr
	}
	s.saves++
	s.m[b.Customer] = b
	return nil
}

func (s *bindings) get(c bd.CustomerID) (store.Binding, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[c]
	return b, ok
}

type env struct {
	crm    *sandbox.CRM
	client *crm.Client
	store  *bindings
	binder *retailcrm.Binder
}

// sandboxCRM starts a sandbox CRM without rate limit and a client of it
// that does not throttle itself and retries three times at once.
func sandboxCRM(t *testing.T) (*sandbox.CRM, *crm.Client) {
	t.Helper()
	s, err := sandbox.NewCRM(sandbox.WithRateLimit(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	client, err := crm.New(s.URL(), sandbox.CRMDefaultKey,
		crm.WithLimiters(crm.NewLimiters(math.Inf(1), 1)),
		crm.WithMaxAttempts(3),
		crm.WithSleep(func(ctx context.Context, _ time.Duration) error { return ctx.Err() }),
	)
	if err != nil {
		t.Fatal(err)
	}
	return s, client
}

// setup starts a sandbox CRM without rate limit and a binder on it whose
// client does not throttle itself and whose backoff returns at once.
func setup(t *testing.T) env {
	t.Helper()
	s, client := sandboxCRM(t)
	st := newBindings()
	b, err := retailcrm.New(client, st, retailcrm.WithRegion("RU"))
	if err != nil {
		t.Fatal(err)
	}
	return env{crm: s, client: client, store: st, binder: b}
}

func bind(t *testing.T, b binding.Binder, c bd.Customer, create bool) binding.Result {
	t.Helper()
	res, err := b.Bind(context.Background(), binding.Request{Account: account, Customer: c, Create: create})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBindLinkedInStore(t *testing.T) {
	e := setup(t)
	if err := e.store.SaveBinding(context.Background(), store.Binding{Account: account, Customer: 7, CRMCustomer: 42, Rule: "phone"}); err != nil {
		t.Fatal(err)
	}
	res := bind(t, e.binder, bd.Customer{ID: 7, Phone: "+79161234567"}, true)
	if res != (binding.Result{CRMCustomer: 42, Rule: binding.ByLink}) {
		t.Fatalf("result %+v", res)
	}
	if n := e.crm.Requests(sandbox.CRMDefaultKey); n != 0 {
		t.Fatalf("a stored binding cost %d requests", n)
	}
}

func TestBindLinkedInCRM(t *testing.T) {
	e := setup(t)
	e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Other", Phones: []string{"+79161234567"}})
	id := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", MGCustomerID: "7"})
	res := bind(t, e.binder, bd.Customer{ID: 7, Phone: "+79161234567"}, true)
	if res != (binding.Result{CRMCustomer: id, Rule: binding.ByLink}) {
		t.Fatalf("result %+v", res)
	}
	if b, ok := e.store.get(7); !ok || b.CRMCustomer != id || b.Rule != "linked" || b.Account != account || b.At.IsZero() {
		t.Fatalf("stored %+v", b)
	}
	if e.crm.CustomerEdits() != 0 {
		t.Fatal("an already linked customer was edited")
	}
}

func TestBindByPhone(t *testing.T) {
	e := setup(t)
	// The search by digits also returns a customer whose number only
	// contains them; the binder must check the number itself.
	decoy := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Decoy", Phones: []string{"+1 (916) 123-4567"}})
	id := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", Phones: []string{"8 (916) 123-45-67"}})
	later := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann2", Phones: []string{"+7 916 1234567"}})
	for _, phone := range []string{"+7 916 123 45 67", "79161234567"} {
		t.Run(phone, func(t *testing.T) {
			c := bd.Customer{ID: bd.CustomerID(len(phone)), Phone: phone, Email: "ann@example.com"}
			res := bind(t, e.binder, c, true)
			if res != (binding.Result{CRMCustomer: id, Rule: binding.ByPhone}) {
				t.Fatalf("result %+v (decoy %d, later %d)", res, decoy, later)
			}
			if b, ok := e.store.get(c.ID); !ok || b.Rule != "phone" || b.CRMCustomer != id {
				t.Fatalf("stored %+v", b)
			}
		})
	}
	got, _ := e.crm.Customer(id)
	if got.MGCustomerID != strconv.Itoa(len("+7 916 123 45 67")) {
		t.Fatalf("customer not linked: %+v", got)
	}
	if e.crm.Created() != 0 {
		t.Fatal("a customer was created")
	}
}

func TestBindPhoneMismatchFallsThrough(t *testing.T) {
	e := setup(t)
	e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Decoy", Phones: []string{"+1 (916) 123-4567"}})
	_, err := e.binder.Bind(context.Background(), binding.Request{Account: account, Customer: bd.Customer{ID: 3, Phone: "+79161234567"}})
	if !errors.Is(err, binding.ErrNoMatch) {
		t.Fatalf("error %v, want ErrNoMatch", err)
	}
}

func TestBindByEmail(t *testing.T) {
	e := setup(t)
	e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Jo", Email: "joann@example.com"})
	id := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", Email: "Ann@Example.com"})
	res := bind(t, e.binder, bd.Customer{ID: 9, Phone: "+79990001122", Email: " ann@example.COM "}, true)
	if res != (binding.Result{CRMCustomer: id, Rule: binding.ByEmail}) {
		t.Fatalf("result %+v", res)
	}
	if got, _ := e.crm.Customer(id); got.MGCustomerID != "9" {
		t.Fatalf("not linked: %+v", got)
	}
}

func TestBindCreates(t *testing.T) {
	e := setup(t)
	e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Jo", Email: "joann@example.com"})
	c := bd.Customer{ID: 11, FirstName: "Ann", LastName: "Lee", Phone: "8 916 123-45-67", Email: "ann@example.com"}
	res := bind(t, e.binder, c, true)
	if res.Rule != binding.Created || res.CRMCustomer == 0 {
		t.Fatalf("result %+v", res)
	}
	got, _ := e.crm.Customer(res.CRMCustomer)
	if got.MGCustomerID != "11" || got.FirstName != "Ann" || got.LastName != "Lee" || got.Email != "ann@example.com" ||
		!slices.Equal(got.Phones, []string{"+79161234567"}) {
		t.Fatalf("created %+v", got)
	}
	// The next bind finds the record without asking retailCRM.
	before := e.crm.Requests(sandbox.CRMDefaultKey)
	if again := bind(t, e.binder, c, true); again != (binding.Result{CRMCustomer: res.CRMCustomer, Rule: binding.ByLink}) {
		t.Fatalf("second bind %+v", again)
	}
	if e.crm.Requests(sandbox.CRMDefaultKey) != before || e.crm.Created() != 1 {
		t.Fatal("second bind asked retailCRM or created again")
	}
}

func TestBindCreateKeepsUnparsablePhone(t *testing.T) {
	e := setup(t)
	res := bind(t, e.binder, bd.Customer{ID: 12, Phone: "12-34"}, true)
	got, _ := e.crm.Customer(res.CRMCustomer)
	if res.Rule != binding.Created || !slices.Equal(got.Phones, []string{"12-34"}) || got.Email != "" {
		t.Fatalf("%+v %+v", res, got)
	}
}

func TestBindNoMatch(t *testing.T) {
	e := setup(t)
	_, err := e.binder.Bind(context.Background(), binding.Request{Account: account, Customer: bd.Customer{ID: 5, Phone: "+79161234567", Email: "x@y.z"}})
	if !errors.Is(err, binding.ErrNoMatch) || errors.Is(err, binding.ErrUnavailable) {
		t.Fatalf("error %v", err)
	}
	if e.crm.Created() != 0 || len(e.crm.Customers()) != 0 {
		t.Fatal("created without Create")
	}
}

func TestBindKeepsAnotherChatsLink(t *testing.T) {
	e := setup(t)
	id := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", Phones: []string{"+79161234567"}, MGCustomerID: "500"})
	res := bind(t, e.binder, bd.Customer{ID: 6, Phone: "+79161234567"}, false)
	if res != (binding.Result{CRMCustomer: id, Rule: binding.ByPhone}) {
		t.Fatalf("result %+v", res)
	}
	if got, _ := e.crm.Customer(id); got.MGCustomerID != "500" || e.crm.CustomerEdits() != 0 {
		t.Fatalf("link overwritten: %+v", got)
	}
}

func TestBindInvalidRequests(t *testing.T) {
	e := setup(t)
	for _, req := range []binding.Request{
		{Customer: bd.Customer{ID: 1}},
		{Account: account},
		{Account: account, Customer: bd.Customer{ID: -3}},
	} {
		if _, err := e.binder.Bind(context.Background(), req); err == nil {
			t.Errorf("request %+v accepted", req)
		}
	}
	if _, err := retailcrm.New(nil, e.store); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := retailcrm.New(e.client, nil); err == nil {
		t.Error("nil store accepted")
	}
}

func TestBindUnavailable(t *testing.T) {
	cases := []struct {
		name   string
		faults sandbox.CRMFaults
		crmErr error
	}{
		{"server errors", sandbox.CRMFaults{ErrorRatio: 1}, crm.ErrUnavailable},
		{"throttled", sandbox.CRMFaults{ErrorRatio: 1, ErrorStatus: http.StatusServiceUnavailable}, crm.ErrThrottled},
		{"too many requests", sandbox.CRMFaults{ErrorRatio: 1, ErrorStatus: http.StatusTooManyRequests}, crm.ErrThrottled},
		{"down", sandbox.CRMFaults{Down: true}, crm.ErrUnreachable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			e.crm.SetFaults(tc.faults)
			_, err := e.binder.Bind(context.Background(), binding.Request{Account: account, Customer: bd.Customer{ID: 1, Phone: "+79161234567"}, Create: true})
			if !errors.Is(err, binding.ErrUnavailable) || !errors.Is(err, tc.crmErr) {
				t.Fatalf("error %v, want ErrUnavailable and %v", err, tc.crmErr)
			}
		})
	}
}

func TestBindTimeoutIsUnavailable(t *testing.T) {
	e := setup(t)
	e.crm.SetFaults(sandbox.CRMFaults{Latency: time.Minute})
	b, err := retailcrm.New(e.client, e.store, retailcrm.WithTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Bind(context.Background(), binding.Request{Account: account, Customer: bd.Customer{ID: 1, Email: "a@b.c"}})
	if !errors.Is(err, binding.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v", err)
	}
}

func TestBindWrongKeyIsNotUnavailable(t *testing.T) {
	e := setup(t)
	e.crm.RemoveKey(sandbox.CRMDefaultKey)
	_, err := e.binder.Bind(context.Background(), binding.Request{Account: account, Customer: bd.Customer{ID: 1, Email: "a@b.c"}, Create: true})
	if !errors.Is(err, crm.ErrInvalidKey) || errors.Is(err, binding.ErrUnavailable) {
		t.Fatalf("error %v", err)
	}
}

func TestBindCallerContext(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.binder.Bind(ctx, binding.Request{Account: account, Customer: bd.Customer{ID: 1, Email: "a@b.c"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
}

func TestBindStoreWriteFailureStillBinds(t *testing.T) {
	e := setup(t)
	e.store.saveErr = errors.New("disk full")
	res := bind(t, e.binder, bd.Customer{ID: 4, Email: "a@b.c"}, true)
	if res.Rule != binding.Created {
		t.Fatalf("result %+v", res)
	}
	// retailCRM holds the link, so the next bind finds it there.
	if again := bind(t, e.binder, bd.Customer{ID: 4, Email: "a@b.c"}, true); again != (binding.Result{CRMCustomer: res.CRMCustomer, Rule: binding.ByLink}) {
		t.Fatalf("again %+v", again)
	}
	if e.crm.Created() != 1 {
		t.Fatalf("created %d", e.crm.Created())
	}
}

func TestConcurrentBindsCreateOneCustomer(t *testing.T) {
	e := setup(t)
	// Slow answers widen the window in which the binds overlap.
	e.crm.SetFaults(sandbox.CRMFaults{Latency: 20 * time.Millisecond})
	const n = 50
	results := make([]binding.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = e.binder.Bind(context.Background(), binding.Request{
				Account: account, Create: true,
				Customer: bd.Customer{ID: 77, FirstName: "New", Phone: "+79161234567", Email: "new@example.com"},
			})
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("bind %d: %v", i, errs[i])
		}
		if results[i].CRMCustomer != results[0].CRMCustomer {
			t.Fatalf("bind %d got customer %d, bind 0 got %d", i, results[i].CRMCustomer, results[0].CRMCustomer)
		}
	}
	if got := e.crm.Customers(); e.crm.Created() != 1 || len(got) != 1 || got[0].MGCustomerID != "77" {
		t.Fatalf("created %d, customers %+v", e.crm.Created(), got)
	}
}

// TestBurstWithinRateLimit binds 200 distinct customers at once against
// the sandbox's real limit (10 requests/s per key) with the client's
// default limiter: one request each (a lookup by link), about 20 s of
// retailCRM time. The client's limiter and backoff and the sandbox's limit
// run on one virtual clock, so the test takes as long as the requests.
func TestBurstWithinRateLimit(t *testing.T) {
	clock := newSimClock()
	s, err := sandbox.NewCRM(sandbox.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 200
	ids := make(map[bd.CustomerID]int64, n)
	for i := range n {
		ids[bd.CustomerID(1000+i)] = s.AddCustomer(sandbox.CRMCustomer{FirstName: "C", MGCustomerID: strconv.Itoa(1000 + i)})
	}
	// A private registry with the default settings, so no other test
	// shares the bucket.
	client, err := crm.New(s.URL(), sandbox.CRMDefaultKey,
		crm.WithLimiters(crm.NewLimiters(crm.DefaultRate, 1)),
		crm.WithClock(clock.Now),
		crm.WithSleep(clock.Sleep),
	)
	if err != nil {
		t.Fatal(err)
	}
	b, err := retailcrm.New(client, newBindings(), retailcrm.WithTimeout(2*time.Minute), retailcrm.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	start := clock.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for id, want := range ids {
		wg.Add(1)
		clock.Go(func() {
			defer wg.Done()
			res, err := b.Bind(context.Background(), binding.Request{Account: account, Customer: bd.Customer{ID: id}})
			switch {
			case err != nil:
				errs <- err
			case res != (binding.Result{CRMCustomer: want, Rule: binding.ByLink}):
				errs <- fmt.Errorf("customer %d: %+v", id, res)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	requests, throttled := s.Requests(sandbox.CRMDefaultKey), s.Throttled(sandbox.CRMDefaultKey)
	if requests != n+throttled {
		t.Fatalf("%d requests for %d binds and %d throttled answers", requests, n, throttled)
	}
	// The client's limiter spaced the requests: burst 1, then one per 100 ms.
	elapsed := clock.Now().Sub(start)
	if want := time.Duration(n-1) * time.Second / time.Duration(crm.DefaultRate); elapsed < want {
		t.Fatalf("%d binds took %s of retailCRM time, want at least %s", n, elapsed, want)
	}
	t.Logf("%d binds: %d requests, %d answered 503 (each retried), %s of retailCRM time", n, requests, throttled, elapsed)
}

func TestBadOptionIsRefused(t *testing.T) {
	e := setup(t)
	for _, tt := range []struct {
		name string
		opt  retailcrm.Option
		want string
	}{
		{"unknown region", retailcrm.WithRegion("XX"), `retailcrm: New: WithRegion: unknown phone region "XX"`},
		{"negative timeout", retailcrm.WithTimeout(-time.Second), "retailcrm: New: WithTimeout: negative duration -1s"},
		{"nil option", nil, "retailcrm: New: nil option"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := retailcrm.New(e.client, e.store, tt.opt); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("New: %v, want %q", err, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		name string
		opt  retailcrm.PendingOption
		want string
	}{
		{"negative first backoff", retailcrm.WithBackoff(-time.Second, 0), "retailcrm: NewPending: WithBackoff: negative first wait -1s"},
		{"negative max backoff", retailcrm.WithBackoff(0, -time.Second), "retailcrm: NewPending: WithBackoff: negative max wait -1s"},
		{"nil option", nil, "retailcrm: NewPending: nil option"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := retailcrm.NewPending(e.binder, tt.opt); err == nil || err.Error() != tt.want {
				t.Errorf("NewPending: %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := retailcrm.NewPending(nil); err == nil {
		t.Error("nil binder accepted")
	}
	// Nil and zero arguments mean the defaults.
	if _, err := retailcrm.New(e.client, e.store, retailcrm.WithRegion(""), retailcrm.WithTimeout(0),
		retailcrm.WithClock(nil), retailcrm.WithLogger(nil)); err != nil {
		t.Errorf("New with default arguments: %v", err)
	}
	if _, err := retailcrm.NewPending(e.binder, retailcrm.WithBackoff(0, 0), retailcrm.WithOnDone(nil),
		retailcrm.WithClock(nil), retailcrm.WithLogger(nil)); err != nil {
		t.Errorf("NewPending with default arguments: %v", err)
	}
}
