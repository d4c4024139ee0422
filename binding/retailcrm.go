package binding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/sync/singleflight"

	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/store"
)

// CRM is the part of retailCRM the [RetailCRM] binder uses.
// *crm.Client implements it; its methods must be safe for concurrent use
// and return errors for which crm.Temporary reports passing failures.
type CRM interface {
	FindCustomers(ctx context.Context, f crm.CustomerFilter) ([]crm.Customer, error)
	CreateCustomer(ctx context.Context, c crm.NewCustomer) (int64, error)
	LinkCustomer(ctx context.Context, id int64, site, mgCustomerID string) error
}

var _ CRM = (*crm.Client)(nil)

// RetailCRMOptions tune [NewRetailCRM]. Nil means the defaults.
type RetailCRMOptions struct {
	// Region is the ISO 3166 region phone numbers without a "+" are read
	// in, per account; "" means "RU".
	Region string
	// Site is the store (site) code of created customers; "" leaves the
	// choice to retailCRM.
	Site string
	// Timeout bounds one bind (a few requests under the key's rate limit);
	// 0 means 30 s. A bind cut by it fails with ErrUnavailable.
	Timeout time.Duration
	// Now stamps the stored bindings; nil means time.Now.
	Now func() time.Time
	// Logger receives one debug line per bind and a warning when a store
	// write fails; nil means no logging. Phones and emails are not logged.
	Logger *slog.Logger
}

// RetailCRM is the [Binder] of one retailCRM account. It tries, in order:
//
//  1. [ByLink]: the store's binding record of the customer, then a
//     retailCRM customer whose mgCustomerId is the chat customer's id;
//  2. [ByPhone]: the phone normalised to E.164 (see [NormalizePhone]) and
//     searched with the customers "name" filter, which also matches phones
//     (by the national number's digits; the matching rule is unverified), and
//     kept only if one of the found customer's phones normalises to the
//     same number;
//  3. [ByEmail]: the email, searched with the "email" filter and compared
//     case-insensitively;
//  4. [Created], when the request allows it: a new customer with the
//     chat customer's names, phone (E.164 when valid), email and
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
// mgCustomerId. The shared lookup runs under its own Timeout and is not
// cut short when one caller's context ends; each caller still returns as
// soon as its own context ends.
//
// Errors: ErrNoMatch (wrapped) when nothing matches and req.Create is
// false; ErrUnavailable (wrapped, with the crm error) when retailCRM is
// throttling, failing or unreachable; the crm error (e.g. crm.ErrInvalidKey,
// crm.ErrAccessDenied) for anything that needs a person; an error naming
// the problem for a request without account or customer id.
type RetailCRM struct {
	crm      CRM
	bindings store.Bindings
	region   string
	site     string
	timeout  time.Duration
	now      func() time.Time
	log      *slog.Logger
	group    singleflight.Group
}

var _ Binder = (*RetailCRM)(nil)

// NewRetailCRM returns the binder of the account client talks to, keeping
// bindings in bindings. It fails on a nil client or store and an unknown
// region.
func NewRetailCRM(client CRM, bindings store.Bindings, opts *RetailCRMOptions) (*RetailCRM, error) {
	if client == nil {
		return nil, errors.New("binding: NewRetailCRM: the retailCRM client is nil")
	}
	if bindings == nil {
		return nil, errors.New("binding: NewRetailCRM: the bindings store is nil")
	}
	var o RetailCRMOptions
	if opts != nil {
		o = *opts
	}
	if o.Region == "" {
		o.Region = "RU"
	}
	if !validRegion(o.Region) {
		return nil, fmt.Errorf("binding: NewRetailCRM: unknown phone region %q (want an ISO 3166 code such as \"RU\")", o.Region)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("binding: NewRetailCRM: negative timeout %s", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &RetailCRM{
		crm:      client,
		bindings: bindings,
		region:   strings.ToUpper(o.Region),
		site:     o.Site,
		timeout:  o.Timeout,
		now:      o.Now,
		log:      o.Logger,
	}, nil
}

// Bind finds, links or creates the retailCRM customer of req.Customer; see
// [RetailCRM] for the rules and errors.
func (b *RetailCRM) Bind(ctx context.Context, req Request) (Result, error) {
	switch {
	case req.Account == "":
		return Result{}, errors.New("binding: request has no account")
	case req.Customer.ID <= 0:
		return Result{}, fmt.Errorf("binding: request has no valid customer id (got %d)", req.Customer.ID)
	}
	key := fmt.Sprintf("%s\x00%d\x00%t", req.Account, req.Customer.ID, req.Create)
	ch := b.group.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
		defer cancel()
		return b.bind(fctx, req)
	})
	select {
	case <-ctx.Done():
		return Result{}, fmt.Errorf("binding: customer %d: %w", req.Customer.ID, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return Result{}, r.Err
		}
		return r.Val.(Result), nil
	}
}

func (b *RetailCRM) bind(ctx context.Context, req Request) (Result, error) {
	c := req.Customer
	mgID := strconv.FormatInt(int64(c.ID), 10)
	fail := func(step string, err error) (Result, error) {
		if crm.Temporary(err) || errors.Is(err, context.DeadlineExceeded) {
			return Result{}, fmt.Errorf("binding: customer %d: %s: %w: %w", c.ID, step, ErrUnavailable, err)
		}
		return Result{}, fmt.Errorf("binding: customer %d: %s: %w", c.ID, step, err)
	}

	// 1. Already linked: the store, then retailCRM's mgCustomerId.
	rec, err := b.bindings.Binding(ctx, req.Account, c.ID)
	switch {
	case err == nil:
		return b.done(req, Result{CRMCustomer: rec.CRMCustomer, Rule: ByLink}), nil
	case !errors.Is(err, store.ErrNotFound):
		return Result{}, fmt.Errorf("binding: customer %d: read stored binding: %w", c.ID, err)
	}
	found, err := b.crm.FindCustomers(ctx, crm.CustomerFilter{MGCustomerID: mgID})
	if err != nil {
		return fail("search by link", err)
	}
	if cu, ok := lowest(found, func(cu crm.Customer) bool { return cu.MGCustomerID == mgID }); ok {
		return b.save(ctx, req, Result{CRMCustomer: cu.ID, Rule: ByLink}), nil
	}

	// 2. Phone.
	var e164 string
	if num, err := parsePhone(c.Phone, b.region); err == nil {
		e164 = phonenumbers.Format(num, phonenumbers.E164)
		found, err := b.crm.FindCustomers(ctx, crm.CustomerFilter{Name: phonenumbers.GetNationalSignificantNumber(num)})
		if err != nil {
			return fail("search by phone", err)
		}
		if cu, ok := lowest(found, func(cu crm.Customer) bool { return b.hasPhone(cu, e164) }); ok {
			return b.link(ctx, req, cu, ByPhone)
		}
	}

	// 3. Email.
	email := strings.TrimSpace(c.Email)
	if plausibleEmail(email) {
		found, err := b.crm.FindCustomers(ctx, crm.CustomerFilter{Email: email})
		if err != nil {
			return fail("search by email", err)
		}
		if cu, ok := lowest(found, func(cu crm.Customer) bool { return strings.EqualFold(strings.TrimSpace(cu.Email), email) }); ok {
			return b.link(ctx, req, cu, ByEmail)
		}
	}

	// 4. Create.
	if !req.Create {
		return Result{}, fmt.Errorf("binding: customer %d: %w", c.ID, ErrNoMatch)
	}
	phone := e164
	if phone == "" {
		phone = strings.TrimSpace(c.Phone)
	}
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
	return b.save(ctx, req, Result{CRMCustomer: id, Rule: Created}), nil
}

// link sets mgCustomerId on a customer found by phone or email, unless it
// is already linked to another chat customer, and saves the binding.
func (b *RetailCRM) link(ctx context.Context, req Request, cu crm.Customer, rule Rule) (Result, error) {
	mgID := strconv.FormatInt(int64(req.Customer.ID), 10)
	switch cu.MGCustomerID {
	case mgID:
	case "":
		if err := b.crm.LinkCustomer(ctx, cu.ID, cu.Site, mgID); err != nil {
			if crm.Temporary(err) || errors.Is(err, context.DeadlineExceeded) {
				return Result{}, fmt.Errorf("binding: customer %d: link: %w: %w", req.Customer.ID, ErrUnavailable, err)
			}
			return Result{}, fmt.Errorf("binding: customer %d: link: %w", req.Customer.ID, err)
		}
	default:
		b.log.LogAttrs(ctx, slog.LevelInfo, "binding: crm customer already linked to another chat customer; keeping its link",
			slog.String("account", string(req.Account)), slog.Int64("customer", int64(req.Customer.ID)),
			slog.Int64("crm_customer", cu.ID))
	}
	return b.save(ctx, req, Result{CRMCustomer: cu.ID, Rule: rule}), nil
}

// save records the binding. retailCRM already holds the link (mgCustomerId),
// which later binds find, so a failed store write is logged, not returned.
func (b *RetailCRM) save(ctx context.Context, req Request, r Result) Result {
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

func (b *RetailCRM) done(req Request, r Result) Result {
	b.log.LogAttrs(context.Background(), slog.LevelDebug, "binding: bound",
		slog.String("account", string(req.Account)), slog.Int64("customer", int64(req.Customer.ID)),
		slog.Int64("crm_customer", r.CRMCustomer), slog.String("rule", string(r.Rule)))
	return r
}

// hasPhone reports whether one of the customer's phones normalises to e164.
func (b *RetailCRM) hasPhone(cu crm.Customer, e164 string) bool {
	for _, p := range cu.Phones {
		if n, err := NormalizePhone(p, b.region); err == nil && n == e164 {
			return true
		}
	}
	return false
}

// lowest returns the customer with the lowest id among those that ok accepts.
func lowest(cs []crm.Customer, ok func(crm.Customer) bool) (crm.Customer, bool) {
	cs = slices.DeleteFunc(slices.Clone(cs), func(c crm.Customer) bool { return !ok(c) })
	if len(cs) == 0 {
		return crm.Customer{}, false
	}
	return slices.MinFunc(cs, func(a, b crm.Customer) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	}), true
}

// plausibleEmail is a light check: something@something, no spaces.
func plausibleEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n")
}
