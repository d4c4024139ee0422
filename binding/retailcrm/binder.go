package retailcrm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/sync/singleflight"

	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/store"
)

// Client is the part of the retailCRM API a [Binder] uses.
// *crm.Client implements it; its methods must be safe for concurrent use
// and return errors for which crm.Temporary reports passing failures.
type Client interface {
	FindCustomers(ctx context.Context, f crm.CustomerFilter) ([]crm.Customer, error)
	CreateCustomer(ctx context.Context, c crm.NewCustomer) (int64, error)
	LinkCustomer(ctx context.Context, id int64, site, mgCustomerID string) error
}

var _ Client = (*crm.Client)(nil)

// Binder is the [binding.Binder] of one retailCRM account. It tries, in
// order:
//
//  1. [binding.ByLink]: the store's binding record of the customer, then a
//     retailCRM customer whose mgCustomerId is the chat customer's id;
//  2. [binding.ByPhone]: the phone normalised to E.164 (see
//     [NormalizePhone]) and searched with the customers "name" filter,
//     which also matches phones (by the national number's digits; the
//     matching rule is unverified), and kept only if one of the found
//     customer's phones normalises to the same number;
//  3. [binding.ByEmail]: the email, searched with the "email" filter and
//     compared case-insensitively;
//  4. [binding.Created], when the request allows it: a new customer with
//     the chat customer's names, phone (E.164 when valid), email and
//     mgCustomerId.
//
// A customer found by phone or email is linked by setting its mgCustomerId
// (an edit whose effect is unverified against a live account); one already
// linked to another chat customer keeps that link and is bound in the
// store only. When several customers match, the lowest id wins. Every
// binding is saved in the store; the store record makes later binds of the
// customer cost no request.
//
// Bind is safe for concurrent use. Concurrent binds of one customer in one
// process share a single lookup (singleflight per account, customer and
// Create flag), so they create at most one retailCRM customer; a bind that
// comes later finds the store record, or the created customer by its
// mgCustomerId. The shared lookup runs under its own timeout (see [WithTimeout]) and is not
// cut short when one caller's context ends; each caller still returns as
// soon as its own context ends.
//
// Errors: [binding.ErrNoMatch] (wrapped) when nothing matches and
// req.Create is false; [binding.ErrUnavailable] (wrapped, with the crm
// error) when retailCRM is throttling, failing or unreachable; the crm
// error (e.g. crm.ErrInvalidKey, crm.ErrAccessDenied) for anything that
// needs a person; an error naming the problem for a request without
// account or customer id.
type Binder struct {
	crm      Client
	bindings store.Bindings
	region   string
	site     string
	timeout  time.Duration
	now      func() time.Time
	log      *slog.Logger
	group    singleflight.Group
}

var _ binding.Binder = (*Binder)(nil)

// New returns the binder of the account client talks to, keeping bindings
// in bindings, tuned by opts (see [Option]; none means the defaults). It
// fails on a nil client or store and on an option's bad argument, naming
// the option.
func New(client Client, bindings store.Bindings, opts ...Option) (*Binder, error) {
	if client == nil {
		return nil, errors.New("retailcrm: New: the retailCRM client is nil")
	}
	if bindings == nil {
		return nil, errors.New("retailcrm: New: the bindings store is nil")
	}
	cfg := config{
		region:  DefaultRegion,
		timeout: DefaultTimeout,
		now:     time.Now,
		logger:  slog.New(slog.DiscardHandler),
	}
	if err := applyAll("New", opts, func(o Option) error { return o.apply(&cfg) }); err != nil {
		return nil, err
	}
	return &Binder{
		crm:      client,
		bindings: bindings,
		region:   cfg.region,
		site:     cfg.site,
		timeout:  cfg.timeout,
		now:      cfg.now,
		log:      cfg.logger,
	}, nil
}

// Bind finds, links or creates the retailCRM customer of req.Customer; see
// [Binder] for the rules and errors.
func (b *Binder) Bind(ctx context.Context, req binding.Request) (binding.Result, error) {
	switch {
	case req.Account == "":
		return binding.Result{}, errors.New("binding: request has no account")
	case req.Customer.ID <= 0:
		return binding.Result{}, fmt.Errorf("binding: request has no valid customer id (got %d)", req.Customer.ID)
	}
	if err := ctx.Err(); err != nil {
		// Done already: no work is started (the select below could pick a
		// result that arrived as fast as the cancellation).
		return binding.Result{}, fmt.Errorf("binding: customer %d: %w", req.Customer.ID, err)
	}
	key := fmt.Sprintf("%s\x00%d\x00%t", req.Account, req.Customer.ID, req.Create)
	ch := b.group.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
		defer cancel()
		return b.bind(fctx, req)
	})
	select {
	case <-ctx.Done():
		return binding.Result{}, fmt.Errorf("binding: customer %d: %w", req.Customer.ID, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return binding.Result{}, r.Err
		}
		return r.Val.(binding.Result), nil
	}
}

func (b *Binder) bind(ctx context.Context, req binding.Request) (binding.Result, error) {
	c := req.Customer
	mgID := strconv.FormatInt(int64(c.ID), 10)
	fail := func(step string, err error) (binding.Result, error) {
		if crm.Temporary(err) || errors.Is(err, context.DeadlineExceeded) {
			return binding.Result{}, fmt.Errorf("binding: customer %d: %s: %w: %w", c.ID, step, binding.ErrUnavailable, err)
		}
		return binding.Result{}, fmt.Errorf("binding: customer %d: %s: %w", c.ID, step, err)
	}

	// 1. Already linked: the store, then retailCRM's mgCustomerId.
	rec, err := b.bindings.Binding(ctx, req.Account, c.ID)
	switch {
	case err == nil:
		return b.done(req, binding.Result{CRMCustomer: rec.CRMCustomer, Rule: binding.ByLink}), nil
	case !errors.Is(err, store.ErrNotFound):
		return binding.Result{}, fmt.Errorf("binding: customer %d: read stored binding: %w", c.ID, err)
	}
	m, step, err := find(ctx, b.crm, b.region, c)
	switch {
	case err != nil:
		return fail(step, err)
	case m.rule == binding.ByLink:
		return b.save(ctx, req, binding.Result{CRMCustomer: m.customer.ID, Rule: binding.ByLink}), nil
	case m.rule != "":
		return b.link(ctx, req, m.customer, m.rule)
	}

	// 4. Create.
	if !req.Create {
		return binding.Result{}, fmt.Errorf("binding: customer %d: %w", c.ID, binding.ErrNoMatch)
	}
	phone := strings.TrimSpace(c.Phone)
	if num, err := parsePhone(c.Phone, b.region); err == nil {
		phone = phonenumbers.Format(num, phonenumbers.E164)
	}
	email := strings.TrimSpace(c.Email)
	if !plausibleEmail(email) {
		email = ""
	}
	id, err := b.crm.CreateCustomer(ctx, crm.NewCustomer{
		MGCustomerID: mgID,
		FirstName:    c.FirstName,
		LastName:     c.LastName,
		Phone:        phone,
		Email:        email,
		Site:         b.site,
	})
	if err != nil {
		return fail("create", err)
	}
	return b.save(ctx, req, binding.Result{CRMCustomer: id, Rule: binding.Created}), nil
}

// link sets mgCustomerId on a customer found by phone or email, unless it
// is already linked to another chat customer, and saves the binding.
func (b *Binder) link(ctx context.Context, req binding.Request, cu crm.Customer, rule binding.Rule) (binding.Result, error) {
	mgID := strconv.FormatInt(int64(req.Customer.ID), 10)
	switch cu.MGCustomerID {
	case mgID:
	case "":
		if err := b.crm.LinkCustomer(ctx, cu.ID, cu.Site, mgID); err != nil {
			if crm.Temporary(err) || errors.Is(err, context.DeadlineExceeded) {
				return binding.Result{}, fmt.Errorf("binding: customer %d: link: %w: %w", req.Customer.ID, binding.ErrUnavailable, err)
			}
			return binding.Result{}, fmt.Errorf("binding: customer %d: link: %w", req.Customer.ID, err)
		}
	default:
		b.log.LogAttrs(ctx, slog.LevelInfo, "binding: crm customer already linked to another chat customer; keeping its link",
			slog.String("account", string(req.Account)), slog.Int64("customer", int64(req.Customer.ID)),
			slog.Int64("crm_customer", cu.ID))
	}
	return b.save(ctx, req, binding.Result{CRMCustomer: cu.ID, Rule: rule}), nil
}

// save records the binding. retailCRM already holds the link (mgCustomerId),
// which later binds find, so a failed store write is logged, not returned.
func (b *Binder) save(ctx context.Context, req binding.Request, r binding.Result) binding.Result {
	err := b.bindings.SaveBinding(ctx, store.Binding{
		Account:     req.Account,
		Customer:    req.Customer.ID,
		CRMCustomer: r.CRMCustomer,
		Rule:        string(r.Rule),
		At:          b.now(),
	})
	if err != nil {
		b.log.LogAttrs(ctx, slog.LevelWarn, "binding: saving the binding failed",
			slog.String("account", string(req.Account)), slog.Int64("customer", int64(req.Customer.ID)),
			slog.String("error", err.Error()))
	}
	return b.done(req, r)
}

func (b *Binder) done(req binding.Request, r binding.Result) binding.Result {
	b.log.LogAttrs(context.Background(), slog.LevelDebug, "binding: bound",
		slog.String("account", string(req.Account)), slog.Int64("customer", int64(req.Customer.ID)),
		slog.Int64("crm_customer", r.CRMCustomer), slog.String("rule", string(r.Rule)))
	return r
}
