package retailcrm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/crm"
)

// ProfileClient is the part of the retailCRM API a [Profiler] uses.
// *crm.Client implements it; its methods must be safe for concurrent use,
// wait on the key's rate limit, and return errors for which crm.Temporary
// reports passing failures and that wrap crm.ErrNotFound for a customer or
// user that does not exist.
type ProfileClient interface {
	FindCustomers(ctx context.Context, f crm.CustomerFilter) ([]crm.Customer, error)
	CustomerCard(ctx context.Context, id int64) (crm.CustomerCard, error)
	User(ctx context.Context, id int) (crm.User, error)
}

var _ ProfileClient = (*crm.Client)(nil)

// Profiler is the [binding.Profiler] of one retailCRM account: it reads
// what routing uses of a chat customer's retailCRM customer.
//
// The retailCRM customer is req.CRMCustomer when it is set. When it is 0,
// or when that customer no longer exists (merged or deleted in retailCRM),
// the Profiler looks it up as a [Binder] does — by mgCustomerId, then
// phone, then email — but never creates or edits a customer. The profile
// comes from the customer's card (GET /api/v5/customers/{id}): its
// managerId, the codes of its segments and the names of its tags, in
// retailCRM's order. The personal manager is a retailCRM user; the
// Profiler maps it to that user's MG user id (mgUserId, GET
// /api/v5/users/{id}), which is what [bd.CustomerProfile].Manager holds. A
// manager who is not a retailCRM user any more, or has no MG user, gives a
// zero Manager.
//
// The mapping from retailCRM user to MG user is kept in memory, per
// Profiler (so per account), for [WithManagerCacheAge]; concurrent reads
// of one user share one request. A profile costs one card request when the
// customer is known, up to three searches more when it is not, and one
// user request when the manager's mapping is not cached; every request
// goes through the client's rate limit (retailCRM's 10 requests per second
// per key, shared by every client of the key in the process).
//
// Profile is safe for concurrent use. Each call runs under its own timeout
// ([WithTimeout]) as well as ctx.
//
// Errors: [binding.ErrNoMatch] (wrapped) when no retailCRM customer
// matches; [binding.ErrUnavailable] (wrapped, with the crm error) when
// retailCRM is throttling, failing (5xx), unreachable or too slow; the crm
// error (e.g. crm.ErrInvalidKey, crm.ErrAccessDenied) for anything that
// needs a person; an error naming the problem for a request with neither
// a retailCRM customer nor a chat customer id.
type Profiler struct {
	crm        ProfileClient
	region     string
	timeout    time.Duration
	managerAge time.Duration
	now        func() time.Time
	log        *slog.Logger

	group singleflight.Group
	mu    sync.Mutex
	// managers maps retailCRM user ids to what was learnt of their MG user.
	managers map[int]mgUser
}

// mgUser is a retailCRM user's MG user id (0 for none) and when it was read.
type mgUser struct {
	id     bd.ManagerID
	readAt time.Time
}

var _ binding.Profiler = (*Profiler)(nil)

// NewProfiler returns the profiler of the account client talks to, tuned
// by opts (see [ProfilerOption]; none means the defaults). It fails on a
// nil client and on an option's bad argument, naming the option.
func NewProfiler(client ProfileClient, opts ...ProfilerOption) (*Profiler, error) {
	if client == nil {
		return nil, errors.New("retailcrm: NewProfiler: the retailCRM client is nil")
	}
	cfg := profilerConfig{
		region:     DefaultRegion,
		timeout:    DefaultTimeout,
		managerAge: DefaultManagerCacheAge,
		now:        time.Now,
		logger:     slog.New(slog.DiscardHandler),
	}
	if err := applyAll("NewProfiler", opts, func(o ProfilerOption) error { return o.applyProfiler(&cfg) }); err != nil {
		return nil, err
	}
	return &Profiler{
		crm:        client,
		region:     cfg.region,
		timeout:    cfg.timeout,
		managerAge: cfg.managerAge,
		now:        cfg.now,
		log:        cfg.logger,
		managers:   make(map[int]mgUser),
	}, nil
}

// Profile reads the retailCRM profile of req's customer; see [Profiler]
// for the rules and errors. The profile's ReadAt is the Profiler's clock
// when the card was read.
func (p *Profiler) Profile(ctx context.Context, req binding.ProfileRequest) (bd.CustomerProfile, error) {
	switch {
	case req.CRMCustomer < 0:
		return bd.CustomerProfile{}, fmt.Errorf("binding: profile: retailCRM customer id must be positive, got %d", req.CRMCustomer)
	case req.CRMCustomer == 0 && req.Customer.ID <= 0:
		return bd.CustomerProfile{}, fmt.Errorf("binding: profile: request has neither a retailCRM customer nor a valid chat customer id (got %d)", req.Customer.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	card, err := p.card(ctx, req, req.CRMCustomer)
	if req.CRMCustomer != 0 && errors.Is(err, crm.ErrNotFound) && req.Customer.ID > 0 {
		// The bound customer is gone (merged into another, say): find the
		// one the chat customer belongs to now.
		card, err = p.card(ctx, req, 0)
	}
	if err != nil {
		return bd.CustomerProfile{}, err
	}
	manager, err := p.manager(ctx, card.ManagerID)
	if err != nil {
		return bd.CustomerProfile{}, p.fail(req, "read the personal manager", err)
	}
	prof := bd.CustomerProfile{
		CRMCustomer: card.ID,
		Manager:     manager,
		Segments:    card.Segments,
		Tags:        card.Tags,
		ReadAt:      p.now(),
	}
	p.log.LogAttrs(ctx, slog.LevelDebug, "binding: profile read",
		slog.String("account", string(req.Account)), slog.Int64("customer", int64(req.Customer.ID)),
		slog.Int64("crm_customer", prof.CRMCustomer), slog.Int64("manager", int64(prof.Manager)),
		slog.Int("segments", len(prof.Segments)), slog.Int("tags", len(prof.Tags)))
	return prof, nil
}

// card reads the card of retailCRM customer id, or, when id is 0, of the
// customer found for req.Customer.
func (p *Profiler) card(ctx context.Context, req binding.ProfileRequest, id int64) (crm.CustomerCard, error) {
	if id == 0 {
		m, step, err := find(ctx, p.crm, p.region, req.Customer)
		if err != nil {
			return crm.CustomerCard{}, p.fail(req, step, err)
		}
		if m.rule == "" {
			return crm.CustomerCard{}, fmt.Errorf("binding: profile of customer %d: %w", req.Customer.ID, binding.ErrNoMatch)
		}
		id = m.customer.ID
	}
	card, err := p.crm.CustomerCard(ctx, id)
	switch {
	case errors.Is(err, crm.ErrNotFound):
		return crm.CustomerCard{}, fmt.Errorf("binding: profile of customer %d: retailCRM customer %d: %w: %w",
			req.Customer.ID, id, binding.ErrNoMatch, err)
	case err != nil:
		return crm.CustomerCard{}, p.fail(req, "read retailCRM customer "+strconv.FormatInt(id, 10), err)
	}
	return card, nil
}

// manager returns the MG user id of retailCRM user id, from the cache when
// it is young enough; 0 for no user, a deleted one, or one without MG.
func (p *Profiler) manager(ctx context.Context, id int) (bd.ManagerID, error) {
	if id <= 0 {
		return 0, nil
	}
	p.mu.Lock()
	u, ok := p.managers[id]
	p.mu.Unlock()
	if ok && p.now().Sub(u.readAt) < p.managerAge {
		return u.id, nil
	}
	// Concurrent reads of one user share one request, which is not cut
	// short when the caller that started it gives up: the others still
	// wait for it under their own contexts.
	ch := p.group.DoChan(strconv.Itoa(id), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
		defer cancel()
		user, err := p.crm.User(fctx, id)
		var mg bd.ManagerID
		switch {
		case errors.Is(err, crm.ErrNotFound):
		case err != nil:
			return bd.ManagerID(0), err
		default:
			mg = bd.ManagerID(user.MGUserID)
		}
		p.mu.Lock()
		p.managers[id] = mgUser{id: mg, readAt: p.now()}
		p.mu.Unlock()
		return mg, nil
	})
	select {
	case <-ctx.Done():
		return 0, fmt.Errorf("retailCRM user %d: %w", id, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return 0, fmt.Errorf("retailCRM user %d: %w", id, r.Err)
		}
		return r.Val.(bd.ManagerID), nil
	}
}

// fail wraps err of a step, adding binding.ErrUnavailable to passing
// failures and timeouts.
func (p *Profiler) fail(req binding.ProfileRequest, step string, err error) error {
	if crm.Temporary(err) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("binding: profile of customer %d: %s: %w: %w", req.Customer.ID, step, binding.ErrUnavailable, err)
	}
	return fmt.Errorf("binding: profile of customer %d: %s: %w", req.Customer.ID, step, err)
}
