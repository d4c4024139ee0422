package sandbox

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// CRMDefaultKey is the API key a [CRM] accepts unless [WithKeys] names
// others; it has every scope and access to all stores.
const CRMDefaultKey = "sandbox-crm-key"

// CRMAllScopes returns the scopes a fully privileged key has in the
// sandbox: the Integration, Customers, Users and Data books sections.
// customer_write and user_read are unverified names (see package crm).
func CRMAllScopes() []string {
	return []string{
		"integration_read", "integration_write",
		"customer_read", "customer_write",
		"user_read",
		"reference_read",
		"order_read",
	}
}

// CRMFullAccess returns a key with [CRMAllScopes] and access to all stores.
func CRMFullAccess() CRMKey {
	return CRMKey{Scopes: CRMAllScopes(), SiteAccess: "access_full"}
}

// CRMKey is what an API key may do in the sandbox.
type CRMKey struct {
	// Scopes are reported by /api/credentials and checked per method: a
	// method whose scope is missing answers 403 "Access denied." (the real
	// answer to a missing scope is unverified).
	Scopes []string
	// SiteAccess is "access_full" or "access_selective".
	SiteAccess string
	// Sites are the store codes a selective key may use; with access_full
	// every store is available and this is ignored.
	Sites []string
}

// CRMSite is a store (site) of the sandbox account.
type CRMSite struct {
	Code          string
	Name          string
	URL           string
	DefaultForCRM bool
}

// crmConfig is the configuration of [NewCRM], set by [CRMOption]s.
type crmConfig struct {
	Keys          map[string]CRMKey
	MGEndpoint    string
	MGToken       string
	RateLimit     float64
	SlidingWindow bool
	// ThrottleStatus answers a request above RateLimit.
	ThrottleStatus int
	NotRetailCRM   bool
	Sites          []CRMSite
	Seed           uint64
	Now            func() time.Time
}

// CRMUser is a retailCRM user (a manager) in the sandbox.
type CRMUser struct {
	// ID is assigned by AddUser when 0.
	ID        int
	FirstName string
	LastName  string
	Email     string
	Active    bool
	IsManager bool
	Online    bool
	// Status is "free", "busy", "dinner" or "break" (anything is stored).
	Status string
	// MGUserID is the user's MessageGateway id; 0 for none.
	MGUserID int64
}

// CRMCustomer is a retailCRM customer in the sandbox.
type CRMCustomer struct {
	// ID is assigned by AddCustomer and by creation when 0.
	ID           int64
	ExternalID   string
	FirstName    string
	LastName     string
	Email        string
	Phones       []string
	Site         string
	MGCustomerID string
	// ManagerID is the customer's personal manager (managerId), a
	// retailCRM user id; 0 for none.
	ManagerID int
	// Segments are the codes of the segments the customer is in, in the
	// order the API lists them.
	Segments []string
	// Tags are the customer's tag names, in the order the API lists them.
	Tags []string
}

// clone returns cu with slices of its own.
func (cu CRMCustomer) clone() CRMCustomer {
	cu.Phones = slices.Clone(cu.Phones)
	cu.Segments = slices.Clone(cu.Segments)
	cu.Tags = slices.Clone(cu.Tags)
	return cu
}

// CRMModule is an integration module as last registered.
type CRMModule struct {
	Code     string
	Name     string
	BaseURL  string
	ClientID string
	Active   bool
	Actions  map[string]string
	// MGBot reports whether integrations.mgBot was present.
	MGBot bool
	// Edits counts the edit calls for this code.
	Edits int
}

// CRMFaults are injected failures; the zero value injects none.
type CRMFaults struct {
	// ErrorRatio is the share (0..1) of API requests answered with
	// ErrorStatus instead of being served.
	ErrorRatio float64
	// ErrorStatus is the injected status; 0 means 500.
	ErrorStatus int
	// Latency delays every answer.
	Latency time.Duration
	// Down closes every connection without an answer, like a host that
	// is unreachable.
	Down bool
}

// CRM is a fake retailCRM account serving an API v5 subset on 127.0.0.1:
// credentials, integration module edit, users (list and one), customers
// (list with filters, one by id or externalId, create, edit) and the sites
// reference. A customer may have a personal manager (managerId), segments
// and tags ([CRM.SetCustomerManager], [CRM.SetCustomerSegments],
// [CRM.SetCustomerTags]), and their changes and customers' creation are
// kept in the customers history ([CRM.CustomerHistory], GET
// /customers/history); a user may have an MG user id (mgUserId). Every
// API request counts against its key's rate limit (see [WithRateLimit]). POST bodies are read as
// api-client-go sends them: form-encoded, one field holding a JSON
// document.
//
// All methods are safe for concurrent use. Close stops the server.
type CRM struct {
	srv   *http.Server
	ln    net.Listener
	url   string
	opts  crmConfig
	mux   *http.ServeMux
	close chan struct{}
	once  sync.Once

	mu         sync.Mutex
	keys       map[string]CRMKey
	users      map[int]CRMUser
	customers  map[int64]CRMCustomer
	modules    map[string]CRMModule
	nextUser   int
	nextCust   int64
	created    int
	requests   map[string]int
	throttled  map[string]int
	injected   int
	faults     CRMFaults
	notCRM     bool
	buckets    map[string]*rate.Limiter
	windows    map[string][]time.Time
	rnd        *rand.Rand
	now        func() time.Time
	sites      []CRMSite
	editsCount int
	// segmentIDs numbers segment codes in the order they first appear, as
	// the ids of the segment objects the API lists.
	segmentIDs map[string]int
	// history is the customers' history, oldest first.
	history []CRMCustomerChange
}

// NewCRM starts a fake retailCRM account on 127.0.0.1 with a free port,
// configured by options (see [CRMOption]). Without options it is a working
// account with [CRMDefaultKey], one store and retailCRM's 10 requests/s
// limit. An option's bad argument is refused with an error naming the
// option.
func NewCRM(options ...CRMOption) (*CRM, error) {
	cfg := crmConfig{
		RateLimit:      10,
		ThrottleStatus: http.StatusServiceUnavailable,
		MGEndpoint:     "http://127.0.0.1:1",
		MGToken:        "sandbox-mg-bot-token",
		Now:            time.Now,
	}
	if err := applyAll("crm", options, func(o CRMOption) error { return o.applyCRM(&cfg) }); err != nil {
		return nil, err
	}
	opts := cfg
	keys := make(map[string]CRMKey, len(opts.Keys))
	for k, v := range opts.Keys {
		keys[k] = crmCloneKey(v)
	}
	if len(keys) == 0 {
		keys[CRMDefaultKey] = CRMFullAccess()
	}
	sites := slices.Clone(opts.Sites)
	if len(sites) == 0 {
		sites = []CRMSite{{Code: "sandbox", Name: "Sandbox store", URL: "https://sandbox.example", DefaultForCRM: true}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox: crm: listen: %w", err)
	}
	c := &CRM{
		ln:        ln,
		url:       "http://" + ln.Addr().String(),
		opts:      opts,
		close:     make(chan struct{}),
		keys:      keys,
		users:     make(map[int]CRMUser),
		customers: make(map[int64]CRMCustomer),
		modules:   make(map[string]CRMModule),
		requests:  make(map[string]int),
		throttled: make(map[string]int),
		buckets:   make(map[string]*rate.Limiter),
		windows:   make(map[string][]time.Time),
		rnd:       rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		now:       opts.Now,
		sites:     sites,
		notCRM:    opts.NotRetailCRM,

		segmentIDs: make(map[string]int),
	}
	c.mux = c.routes()
	c.srv = &http.Server{Handler: http.HandlerFunc(c.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go c.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Close
	return c, nil
}

// URL returns the account's address, e.g. "http://127.0.0.1:41234"; give
// it to a client as the domain.
func (c *CRM) URL() string { return c.url }

// Close stops the server, cutting requests in progress (injected latency
// included). It is safe to call more than once.
func (c *CRM) Close() error {
	var err error
	c.once.Do(func() {
		close(c.close)
		err = c.srv.Close()
	})
	return err
}

// AddUser adds a retailCRM user and returns its id (u.ID, or the next free
// one when u.ID is 0). An existing user with that id is replaced.
func (c *CRM) AddUser(u CRMUser) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u.ID == 0 {
		c.nextUser++
		for c.users[c.nextUser].ID != 0 {
			c.nextUser++
		}
		u.ID = c.nextUser
	}
	c.users[u.ID] = u
	return u.ID
}

// SetStatus sets a user's work status ("free", "busy", "dinner", "break").
func (c *CRM) SetStatus(id int, status string) error {
	return c.updateUser(id, func(u *CRMUser) { u.Status = status })
}

// SetUserActive activates or deactivates a user.
func (c *CRM) SetUserActive(id int, active bool) error {
	return c.updateUser(id, func(u *CRMUser) { u.Active = active })
}

func (c *CRM) updateUser(id int, f func(*CRMUser)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.users[id]
	if !ok {
		return fmt.Errorf("sandbox: crm: no user %d", id)
	}
	f(&u)
	c.users[id] = u
	return nil
}

// Users returns the users ordered by id.
func (c *CRM) Users() []CRMUser {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]CRMUser, 0, len(c.users))
	for _, u := range c.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b CRMUser) int { return a.ID - b.ID })
	return out
}

// AddCustomer adds a customer directly (it does not count as created) and
// returns its id. An empty Site means the default store.
func (c *CRM) AddCustomer(cu CRMCustomer) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.insertCustomer(cu)
}

func (c *CRM) insertCustomer(cu CRMCustomer) int64 {
	if cu.ID == 0 {
		c.nextCust++
		for c.customers[c.nextCust].ID != 0 {
			c.nextCust++
		}
		cu.ID = c.nextCust
	}
	if cu.Site == "" {
		cu.Site = c.defaultSite()
	}
	c.customers[cu.ID] = cu.clone()
	c.numberSegments(cu.Segments)
	c.record(cu, "id", true, nil, cu.ID)
	return cu.ID
}

// numberSegments gives new segment codes their ids; the caller holds c.mu.
func (c *CRM) numberSegments(codes []string) {
	for _, code := range codes {
		if _, ok := c.segmentIDs[code]; !ok {
			c.segmentIDs[code] = len(c.segmentIDs) + 1
		}
	}
}

func (c *CRM) defaultSite() string {
	for _, s := range c.sites {
		if s.DefaultForCRM {
			return s.Code
		}
	}
	return c.sites[0].Code
}

// Customers returns every customer ordered by id.
func (c *CRM) Customers() []CRMCustomer {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]CRMCustomer, 0, len(c.customers))
	for _, cu := range c.customers {
		out = append(out, cu.clone())
	}
	slices.SortFunc(out, func(a, b CRMCustomer) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Customer returns the customer with the given id.
func (c *CRM) Customer(id int64) (CRMCustomer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cu, ok := c.customers[id]
	return cu.clone(), ok
}

// SetCustomerManager makes the user with id user the customer's personal
// manager (managerId); 0 removes it. The user need not exist, as a
// deleted user's id may stay on a customer. A change adds a history
// record of field "manager".
func (c *CRM) SetCustomerManager(customer int64, user int) error {
	return c.updateCustomer(customer, func(cu *CRMCustomer) (string, any, any) {
		old := cu.ManagerID
		if old == user {
			return "", nil, nil
		}
		cu.ManagerID = user
		return crmHistoryManager, crmManagerValue(old), crmManagerValue(user)
	})
}

// SetCustomerSegments replaces the codes of the segments the customer is
// in; none leaves it in no segment. A change adds a history record of
// field "segments".
func (c *CRM) SetCustomerSegments(customer int64, codes ...string) error {
	return c.updateCustomer(customer, func(cu *CRMCustomer) (string, any, any) {
		old := cu.Segments
		if slices.Equal(old, codes) {
			return "", nil, nil
		}
		cu.Segments = slices.Clone(codes)
		return crmHistorySegments, crmNonNil(old), crmNonNil(slices.Clone(codes))
	})
}

// SetCustomerTags replaces the customer's tags; none removes them all. A
// change adds a history record of field "tags".
func (c *CRM) SetCustomerTags(customer int64, tags ...string) error {
	return c.updateCustomer(customer, func(cu *CRMCustomer) (string, any, any) {
		old := cu.Tags
		if slices.Equal(old, tags) {
			return "", nil, nil
		}
		cu.Tags = slices.Clone(tags)
		return crmHistoryTags, crmNonNil(old), crmNonNil(slices.Clone(tags))
	})
}

// updateCustomer applies f to a customer; f returns the history field it
// changed with the old and the new value, or "" when it changed nothing.
func (c *CRM) updateCustomer(id int64, f func(*CRMCustomer) (field string, was, now any)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cu, ok := c.customers[id]
	if !ok {
		return fmt.Errorf("sandbox: crm: no customer %d", id)
	}
	field, was, now := f(&cu)
	c.customers[id] = cu
	c.numberSegments(cu.Segments)
	if field != "" {
		c.record(cu, field, false, was, now)
	}
	return nil
}

// Created returns how many customers were created through the API.
func (c *CRM) Created() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// CustomerEdits returns how many customer edits succeeded through the API.
func (c *CRM) CustomerEdits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.editsCount
}

// Requests returns how many API requests carried the key, throttled ones
// included.
func (c *CRM) Requests(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[key]
}

// Throttled returns how many requests with the key were answered 503
// because they exceeded the rate limit.
func (c *CRM) Throttled(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.throttled[key]
}

// Injected returns how many requests were answered with an injected error.
func (c *CRM) Injected() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.injected
}

// Module returns the integration module registered under code.
func (c *CRM) Module(code string) (CRMModule, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.modules[code]
	return m, ok
}

// SetKey adds or replaces an accepted API key.
func (c *CRM) SetKey(key string, k CRMKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys[key] = crmCloneKey(k)
}

// RemoveKey stops accepting an API key.
func (c *CRM) RemoveKey(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.keys, key)
}

// SetFaults replaces the injected faults.
func (c *CRM) SetFaults(f CRMFaults) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = f
}

// SetNotRetailCRM switches HTML answers for everything on or off.
func (c *CRM) SetNotRetailCRM(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notCRM = on
}

// allow applies the per-key rate limit; the caller holds c.mu.
func (c *CRM) allow(key string) bool {
	if c.opts.RateLimit < 0 {
		return true
	}
	now := c.now()
	if c.opts.SlidingWindow {
		limit := max(1, int(c.opts.RateLimit))
		w := c.windows[key]
		cut := 0
		for cut < len(w) && now.Sub(w[cut]) >= time.Second {
			cut++
		}
		w = w[cut:]
		if len(w) >= limit {
			c.windows[key] = w
			return false
		}
		c.windows[key] = append(w, now)
		return true
	}
	b, ok := c.buckets[key]
	if !ok {
		burst := max(1, int(c.opts.RateLimit))
		b = rate.NewLimiter(rate.Limit(c.opts.RateLimit), burst)
		c.buckets[key] = b
	}
	return b.AllowN(now, 1)
}

func crmCloneKey(k CRMKey) CRMKey {
	k.Scopes = slices.Clone(k.Scopes)
	k.Sites = slices.Clone(k.Sites)
	return k
}

func (k CRMKey) has(scope string) bool { return slices.Contains(k.Scopes, scope) }

// siteAllowed reports whether the key may use the store.
func (k CRMKey) siteAllowed(site string) bool {
	return k.SiteAccess == "access_full" || slices.Contains(k.Sites, site)
}

func crmDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
