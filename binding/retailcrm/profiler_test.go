package retailcrm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/binding/retailcrm"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/sandbox"
)

// countingClient counts the user reads of a crm.Client.
type countingClient struct {
	*crm.Client
	users atomic.Int64
}

func (c *countingClient) User(ctx context.Context, id int) (crm.User, error) {
	c.users.Add(1)
	return c.Client.User(ctx, id)
}

// manualClock is a clock a test moves by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type profileEnv struct {
	crm      *sandbox.CRM
	client   *countingClient
	clock    *manualClock
	profiler *retailcrm.Profiler
}

// setupProfiler starts a sandbox CRM without rate limit and a profiler on
// it whose client does not throttle itself, retries three times at once,
// and whose clock moves by hand.
func setupProfiler(t *testing.T, opts ...retailcrm.ProfilerOption) profileEnv {
	t.Helper()
	s, client := sandboxCRM(t)
	cc := &countingClient{Client: client}
	clock := &manualClock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	p, err := retailcrm.NewProfiler(cc, append([]retailcrm.ProfilerOption{retailcrm.WithRegion("RU"), retailcrm.WithClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return profileEnv{crm: s, client: cc, clock: clock, profiler: p}
}

func (e profileEnv) profile(t *testing.T, req binding.ProfileRequest) bd.CustomerProfile {
	t.Helper()
	if req.Account == "" {
		req.Account = account
	}
	got, err := e.profiler.Profile(context.Background(), req)
	if err != nil {
		t.Fatalf("Profile(%+v): %v", req, err)
	}
	return got
}

func wantProfile(t *testing.T, got, want bd.CustomerProfile) {
	t.Helper()
	if got.CRMCustomer != want.CRMCustomer || got.Manager != want.Manager || !slices.Equal(got.Segments, want.Segments) ||
		!slices.Equal(got.Tags, want.Tags) || !got.ReadAt.Equal(want.ReadAt) {
		t.Fatalf("profile = %+v, want %+v", got, want)
	}
}

func TestProfilePersonalManagerSegmentsTags(t *testing.T) {
	e := setupProfiler(t)
	mgr := e.crm.AddUser(sandbox.CRMUser{FirstName: "Mia", Active: true, IsManager: true, MGUserID: 501})
	id := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", ManagerID: mgr, Phones: []string{"8 (916) 123-45-67"},
		Email: "Ann@Example.com", MGCustomerID: "70", Segments: []string{"vip", "b2b"}, Tags: []string{"wholesale", "Early bird"}})
	want := bd.CustomerProfile{CRMCustomer: id, Manager: 501, Segments: []string{"vip", "b2b"},
		Tags: []string{"wholesale", "Early bird"}, ReadAt: e.clock.Now()}

	t.Run("known CRM customer", func(t *testing.T) {
		wantProfile(t, e.profile(t, binding.ProfileRequest{Customer: bd.Customer{ID: 70}, CRMCustomer: id}), want)
	})
	for _, tc := range []struct {
		name string
		c    bd.Customer
	}{
		{"found by link", bd.Customer{ID: 70}},
		{"found by phone", bd.Customer{ID: 71, Phone: "+7 916 123 45 67"}},
		{"found by email", bd.Customer{ID: 72, Email: "ann@example.COM"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProfile(t, e.profile(t, binding.ProfileRequest{Customer: tc.c}), want)
		})
	}
	if e.crm.Created() != 0 || e.crm.CustomerEdits() != 0 {
		t.Fatalf("profiles created %d and edited %d customers, want none", e.crm.Created(), e.crm.CustomerEdits())
	}

	// retailCRM's changes show in the next read.
	other := e.crm.AddUser(sandbox.CRMUser{FirstName: "Oleg", Active: true, IsManager: true, MGUserID: 502})
	for _, err := range []error{e.crm.SetCustomerManager(id, other), e.crm.SetCustomerSegments(id), e.crm.SetCustomerTags(id, "returns")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Add(time.Minute)
	wantProfile(t, e.profile(t, binding.ProfileRequest{CRMCustomer: id}),
		bd.CustomerProfile{CRMCustomer: id, Manager: 502, Tags: []string{"returns"}, ReadAt: e.clock.Now()})
}

func TestProfileWithoutPersonalManager(t *testing.T) {
	e := setupProfiler(t)
	noMG := e.crm.AddUser(sandbox.CRMUser{FirstName: "Back office", Active: true})
	for _, tc := range []struct {
		name    string
		manager int
	}{
		{"no manager", 0},
		{"manager without MG user", noMG},
		{"manager no longer a user", 999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", ManagerID: tc.manager, Tags: []string{"t"}})
			wantProfile(t, e.profile(t, binding.ProfileRequest{CRMCustomer: id}),
				bd.CustomerProfile{CRMCustomer: id, Tags: []string{"t"}, ReadAt: e.clock.Now()})
		})
	}
}

func TestProfileNoMatch(t *testing.T) {
	e := setupProfiler(t)
	e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", Phones: []string{"+79161234567"}, Email: "ann@example.com"})
	for _, tc := range []struct {
		name string
		req  binding.ProfileRequest
	}{
		{"unknown chat customer", binding.ProfileRequest{Customer: bd.Customer{ID: 80, Phone: "+7 903 000 11 22", Email: "bo@example.com"}}},
		{"chat customer without phone or email", binding.ProfileRequest{Customer: bd.Customer{ID: 81}}},
		{"CRM customer gone, chat customer unknown", binding.ProfileRequest{Customer: bd.Customer{ID: 82}, CRMCustomer: 555}},
		{"CRM customer gone, no chat customer", binding.ProfileRequest{CRMCustomer: 555}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.profiler.Profile(context.Background(), tc.req)
			if !errors.Is(err, binding.ErrNoMatch) || errors.Is(err, binding.ErrUnavailable) {
				t.Fatalf("Profile = %+v, %v; want an error wrapping binding.ErrNoMatch only", got, err)
			}
		})
	}
	if e.crm.Created() != 0 || e.crm.CustomerEdits() != 0 {
		t.Fatalf("profiles created %d and edited %d customers, want none", e.crm.Created(), e.crm.CustomerEdits())
	}
}

func TestProfileOfMergedCustomerFollowsTheLink(t *testing.T) {
	e := setupProfiler(t)
	// The binding names customer 555, which retailCRM merged into this one.
	id := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", MGCustomerID: "90", Segments: []string{"vip"}})
	got := e.profile(t, binding.ProfileRequest{Customer: bd.Customer{ID: 90}, CRMCustomer: 555})
	wantProfile(t, got, bd.CustomerProfile{CRMCustomer: id, Segments: []string{"vip"}, ReadAt: e.clock.Now()})
}

func TestProfileUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults sandbox.CRMFaults
		opts   []retailcrm.ProfilerOption
	}{
		{"5xx", sandbox.CRMFaults{ErrorRatio: 1, ErrorStatus: http.StatusInternalServerError}, nil},
		{"502", sandbox.CRMFaults{ErrorRatio: 1, ErrorStatus: http.StatusBadGateway}, nil},
		{"throttled", sandbox.CRMFaults{ErrorRatio: 1, ErrorStatus: http.StatusTooManyRequests}, nil},
		{"unreachable", sandbox.CRMFaults{Down: true}, nil},
		{"too slow", sandbox.CRMFaults{Latency: time.Minute}, []retailcrm.ProfilerOption{retailcrm.WithTimeout(50 * time.Millisecond)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setupProfiler(t, tc.opts...)
			mgr := e.crm.AddUser(sandbox.CRMUser{FirstName: "Mia", Active: true, MGUserID: 501})
			id := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", ManagerID: mgr, MGCustomerID: "70"})
			e.crm.SetFaults(tc.faults)
			for _, req := range []binding.ProfileRequest{{CRMCustomer: id}, {Customer: bd.Customer{ID: 70}}} {
				got, err := e.profiler.Profile(context.Background(), req)
				if !errors.Is(err, binding.ErrUnavailable) || errors.Is(err, binding.ErrNoMatch) {
					t.Fatalf("Profile(%+v) = %+v, %v; want an error wrapping binding.ErrUnavailable", req, got, err)
				}
			}
			// Back up: the profile is read, nothing was cached from the failures.
			e.crm.SetFaults(sandbox.CRMFaults{})
			wantProfile(t, e.profile(t, binding.ProfileRequest{CRMCustomer: id}),
				bd.CustomerProfile{CRMCustomer: id, Manager: 501, ReadAt: e.clock.Now()})
		})
	}
}

// failingUsers fails every user read with err.
type failingUsers struct {
	*crm.Client
	err error
}

func (c failingUsers) User(context.Context, int) (crm.User, error) { return crm.User{}, c.err }

func TestProfilePersonalManagerReadFails(t *testing.T) {
	e := setupProfiler(t)
	mgr := e.crm.AddUser(sandbox.CRMUser{FirstName: "Mia", Active: true, MGUserID: 501})
	id := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", ManagerID: mgr})

	// The card is read, the user read answers 5xx: retailCRM is unavailable.
	p, err := retailcrm.NewProfiler(failingUsers{e.client.Client, &crm.Error{Op: "user get", Kind: crm.ErrUnavailable, Status: 500}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Profile(context.Background(), binding.ProfileRequest{CRMCustomer: id})
	if !errors.Is(err, binding.ErrUnavailable) || !errors.Is(err, crm.ErrUnavailable) {
		t.Fatalf("Profile with the user read failing 5xx: %v; want binding.ErrUnavailable wrapping crm.ErrUnavailable", err)
	}

	// A key that may read customers but not users answers the user read
	// with "Access denied.": a person must fix that, so it is no
	// ErrUnavailable.
	e.crm.SetKey(sandbox.CRMDefaultKey, sandbox.CRMKey{Scopes: []string{"customer_read"}, SiteAccess: "access_full"})
	_, err = e.profiler.Profile(context.Background(), binding.ProfileRequest{CRMCustomer: id})
	if !errors.Is(err, crm.ErrAccessDenied) || errors.Is(err, binding.ErrUnavailable) {
		t.Fatalf("Profile without the users scope: %v; want crm.ErrAccessDenied, not binding.ErrUnavailable", err)
	}
}

func TestProfileWrongKeyIsNotUnavailable(t *testing.T) {
	e := setupProfiler(t)
	id := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann"})
	e.crm.RemoveKey(sandbox.CRMDefaultKey)
	_, err := e.profiler.Profile(context.Background(), binding.ProfileRequest{CRMCustomer: id})
	if !errors.Is(err, crm.ErrInvalidKey) || errors.Is(err, binding.ErrUnavailable) || errors.Is(err, binding.ErrNoMatch) {
		t.Fatalf("Profile with a removed key: %v; want crm.ErrInvalidKey only", err)
	}
	if strings.Contains(err.Error(), sandbox.CRMDefaultKey) {
		t.Fatalf("error %q contains the API key", err)
	}
}

func TestProfilePersonalManagerMappingCached(t *testing.T) {
	e := setupProfiler(t, retailcrm.WithManagerCacheAge(time.Hour))
	mgr := e.crm.AddUser(sandbox.CRMUser{ID: 7, FirstName: "Mia", Active: true, MGUserID: 501})
	a := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Ann", ManagerID: mgr})
	b := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Bo", ManagerID: mgr})

	for _, id := range []int64{a, b, a} {
		if got := e.profile(t, binding.ProfileRequest{CRMCustomer: id}); got.Manager != 501 {
			t.Fatalf("customer %d: manager %d, want 501", id, got.Manager)
		}
	}
	if n := e.client.users.Load(); n != 1 {
		t.Fatalf("three profiles with one personal manager read the user %d times, want once", n)
	}

	// The user gets another MG account: the cached mapping serves until
	// it is an hour old, then the new one is read.
	e.crm.AddUser(sandbox.CRMUser{ID: 7, FirstName: "Mia", Active: true, MGUserID: 601})
	e.clock.Add(time.Hour - time.Second)
	if got := e.profile(t, binding.ProfileRequest{CRMCustomer: a}); got.Manager != 501 || e.client.users.Load() != 1 {
		t.Fatalf("within the cache age: manager %d after %d user reads, want 501 after 1", got.Manager, e.client.users.Load())
	}
	e.clock.Add(time.Second)
	if got := e.profile(t, binding.ProfileRequest{CRMCustomer: b}); got.Manager != 601 || e.client.users.Load() != 2 {
		t.Fatalf("past the cache age: manager %d after %d user reads, want 601 after 2", got.Manager, e.client.users.Load())
	}

	// A user that is gone is remembered as no MG user, too.
	gone := e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "Cy", ManagerID: 999})
	for range 2 {
		if got := e.profile(t, binding.ProfileRequest{CRMCustomer: gone}); got.Manager != 0 {
			t.Fatalf("manager %d for a user that is gone, want 0", got.Manager)
		}
	}
	if n := e.client.users.Load(); n != 3 {
		t.Fatalf("%d user reads after two profiles with a missing user, want 3", n)
	}
}

func TestProfilesConcurrentPersonalManagers(t *testing.T) {
	e := setupProfiler(t)
	var ids []int64
	for i := range 4 {
		mgr := e.crm.AddUser(sandbox.CRMUser{FirstName: "M", Active: true, MGUserID: int64(500 + i)})
		for range 10 {
			ids = append(ids, e.crm.AddCustomer(sandbox.CRMCustomer{FirstName: "C", ManagerID: mgr}))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := e.profiler.Profile(context.Background(), binding.ProfileRequest{Account: account, CRMCustomer: id})
			if want := bd.ManagerID(500 + i/10); err != nil || got.Manager != want || got.CRMCustomer != id {
				errs <- fmt.Errorf("customer %d: %+v, %v; want manager %d", id, got, err, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Each manager is read at least once and, thanks to the cache and the
	// shared reads, far less often than once per profile.
	if n := e.client.users.Load(); n < 4 || n >= int64(len(ids)) {
		t.Fatalf("%d user reads for %d profiles with 4 managers", n, len(ids))
	}
}

// TestProfileBurstWithinRateLimit reads 60 profiles at once — 60 customer
// cards, a lookup by link for half of them, and a personal manager each —
// from a sandbox enforcing retailCRM's 10 requests/s per key, through a
// client with the default limiter. The client's limiter and the sandbox's
// limit run on one virtual clock (which cannot see one profile wait for
// another's shared user read, hence a manager per customer). Not one
// request may be throttled, and the requests must be spread at 10 a
// second.
func TestProfileBurstWithinRateLimit(t *testing.T) {
	clock := newSimClock()
	s, err := sandbox.NewCRM(sandbox.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client, err := crm.New(s.URL(), sandbox.CRMDefaultKey,
		crm.WithLimiters(crm.NewLimiters(crm.DefaultRate, 1)),
		crm.WithClock(clock.Now),
		crm.WithSleep(clock.Sleep),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := retailcrm.NewProfiler(client, retailcrm.WithTimeout(10*time.Minute), retailcrm.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	type want struct {
		crm     int64
		manager bd.ManagerID
	}
	reqs := make(map[binding.ProfileRequest]want, n)
	for i := range n {
		mgID := 2000 + i
		mgr := s.AddUser(sandbox.CRMUser{FirstName: "M", Active: true, MGUserID: int64(700 + i)})
		id := s.AddCustomer(sandbox.CRMCustomer{FirstName: "C", MGCustomerID: strconv.Itoa(mgID), ManagerID: mgr})
		req := binding.ProfileRequest{Account: account, Customer: bd.Customer{ID: bd.CustomerID(mgID)}}
		if i%2 == 0 {
			req.CRMCustomer = id
		}
		reqs[req] = want{id, bd.ManagerID(700 + i)}
	}
	start := clock.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for req, w := range reqs {
		wg.Add(1)
		clock.Go(func() {
			defer wg.Done()
			got, err := p.Profile(context.Background(), req)
			if err != nil || got.CRMCustomer != w.crm || got.Manager != w.manager {
				errs <- fmt.Errorf("%+v: %+v, %v; want customer %d, manager %d", req, got, err, w.crm, w.manager)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	requests, throttled := s.Requests(sandbox.CRMDefaultKey), s.Throttled(sandbox.CRMDefaultKey)
	if throttled != 0 {
		t.Fatalf("%d of %d requests were over retailCRM's rate limit", throttled, requests)
	}
	if min := n + n/2 + n; requests < min {
		t.Fatalf("%d requests for %d profiles, want at least %d", requests, n, min)
	}
	elapsed := clock.Now().Sub(start)
	if want := time.Duration(requests-1) * time.Second / time.Duration(crm.DefaultRate); elapsed < want {
		t.Fatalf("%d requests took %s of retailCRM time, want at least %s", requests, elapsed, want)
	}
	t.Logf("%d profiles: %d requests in %s of retailCRM time", n, requests, elapsed)
}

func TestProfileBadRequest(t *testing.T) {
	e := setupProfiler(t)
	for _, req := range []binding.ProfileRequest{
		{Account: account},
		{Account: account, CRMCustomer: -1, Customer: bd.Customer{ID: 5}},
	} {
		_, err := e.profiler.Profile(context.Background(), req)
		if err == nil || errors.Is(err, binding.ErrNoMatch) || errors.Is(err, binding.ErrUnavailable) {
			t.Fatalf("Profile(%+v): %v; want an error naming the problem", req, err)
		}
	}
	if n := e.crm.Requests(sandbox.CRMDefaultKey); n != 0 {
		t.Fatalf("bad requests sent %d requests to retailCRM", n)
	}
}

func TestNewProfilerRefusesBadArguments(t *testing.T) {
	if _, err := retailcrm.NewProfiler(nil); err == nil || err.Error() != "retailcrm: NewProfiler: the retailCRM client is nil" {
		t.Fatalf("NewProfiler(nil): %v", err)
	}
	client, err := crm.New("https://shop.retailcrm.ru", "key")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opt  retailcrm.ProfilerOption
		want string
	}{
		{"negative cache age", retailcrm.WithManagerCacheAge(-time.Second), "retailcrm: NewProfiler: WithManagerCacheAge: negative duration -1s"},
		{"unknown region", retailcrm.WithRegion("XX"), `retailcrm: NewProfiler: WithRegion: unknown phone region "XX"`},
		{"negative timeout", retailcrm.WithTimeout(-time.Second), "retailcrm: NewProfiler: WithTimeout: negative duration -1s"},
		{"nil option", nil, "retailcrm: NewProfiler: nil option"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := retailcrm.NewProfiler(client, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewProfiler: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	for _, opt := range []retailcrm.ProfilerOption{retailcrm.WithManagerCacheAge(0), retailcrm.WithTimeout(0), retailcrm.WithRegion(""),
		retailcrm.WithClock(nil), retailcrm.WithLogger(nil)} {
		if _, err := retailcrm.NewProfiler(client, opt); err != nil {
			t.Fatalf("NewProfiler with a default argument: %v", err)
		}
	}
}
