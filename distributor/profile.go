package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/strategy"
)

const (
	// DefaultProfileTimeout is how long a decision waits for a customer's
	// retailCRM profile before it routes without it (see WithProfiler).
	DefaultProfileTimeout = 2 * time.Second
	// DefaultProfileMaxAge is how long a profile kept in the store is used
	// before it is read again.
	DefaultProfileMaxAge = time.Hour
	// profileReadLimit bounds a read that goes on in the background.
	profileReadLimit = 30 * time.Second
)

// profileConfig is how profiles are read.
type profileConfig struct {
	timeout, maxAge time.Duration
}

// profiles reads customers' profiles once each at a time. It remembers,
// for maxAge, what it read: the profiles, for the customers with no
// binding in the store yet (the store keeps a profile with the customer's
// binding only: a binding of the profile's own would tell the binder the
// customer is linked in retailCRM when they may not be), and the
// customers retailCRM has no card for (a profile of CRMCustomer 0).
type profiles struct {
	group singleflight.Group
	mu    sync.Mutex
	read  map[bd.CustomerID]bd.CustomerProfile
	// reading counts the reads under way.
	reading atomic.Int64
}

// maxRemembered bounds each of the profiles' maps; past it, one starts
// over.
const maxRemembered = 100_000

// The ways a profile was found, as Trace.Profile says them.
const (
	profileCached   = "cached"
	profileRead     = "read"
	profileTimedOut = "timed out"
	profileFailed   = "failed"
	profileNone     = "none"
	profileSkipped  = "skipped"
)

const (
	// profileWaiters is how many reads may be under way for a decision to
	// still wait for its own: about what retailCRM serves in a second.
	profileWaiters = 10
	// profileBacklog bounds the reads under way; past it a decision
	// starts none.
	profileBacklog = 200
)

// readProfile sets tr.profile and tr.Profile for the dialog's customer: the
// profile kept in the store when it is fresh, else one read from retailCRM
// within the timeout. A read that times out goes on in the background
// and keeps its result for the next decisions; this decision goes on
// without it. A failure is logged, never the decision's error: routing
// without the CRM beats not routing.
func (d *Distributor) readProfile(ctx context.Context, snap *snapshot, dl bd.Dialog, tr *Trace) {
	if dl.Customer.ID == 0 {
		tr.Profile = profileNone
		return
	}
	now := d.cfg.now()
	var crm int64
	if bs, ok := d.store.(store.Bindings); ok {
		b, err := bs.Binding(ctx, dl.Account, dl.Customer.ID)
		switch {
		case err == nil:
			crm = b.CRMCustomer
			if !b.Profile.ReadAt.IsZero() && now.Sub(b.Profile.ReadAt) < d.cfg.profile.maxAge {
				tr.profile, tr.Profile = b.Profile, profileCached
				return
			}
		case !errors.Is(err, store.ErrNotFound):
			d.fail(dl.Account, "profile", fmt.Errorf("binding of customer %d: %w", dl.Customer.ID, err))
		}
	}
	if p, ok := d.profiles.remembered(dl.Customer.ID, now, d.cfg.profile.maxAge); ok {
		tr.profile, tr.Profile = p, profileCached
		if p.CRMCustomer == 0 {
			tr.Profile = profileNone
		}
		return
	}
	if tr.DryRun {
		// A dry run stores nothing: it reads the card and forgets it.
		rctx, cancel := context.WithTimeout(ctx, d.cfg.profile.timeout)
		defer cancel()
		p, err := d.cfg.profiler.Profile(rctx, binding.ProfileRequest{Account: dl.Account, Customer: dl.Customer, CRMCustomer: crm})
		tr.profile, tr.Profile = p, profileOutcome(rctx, err)
		return
	}
	// Reads beyond what retailCRM serves at once (10 requests a second
	// per key) queue behind its limit: a decision then goes on at once
	// rather than hold a worker for the whole bound, and past a backlog
	// no read is started at all.
	reading := d.profiles.reading.Load()
	if reading >= profileBacklog {
		tr.Profile = profileSkipped
		return
	}
	key := strconv.FormatInt(int64(dl.Customer.ID), 10)
	ch := d.profiles.group.DoChan(key, func() (any, error) {
		var p bd.CustomerProfile
		var err error
		// The read is not the decision's: it goes on after the decision
		// stopped waiting for it, until the distributor closes.
		done := make(chan struct{})
		d.profiles.reading.Add(1)
		if !d.goBackground(func(base context.Context) {
			defer close(done)
			defer d.profiles.reading.Add(-1)
			rctx, cancel := context.WithTimeout(base, profileReadLimit)
			defer cancel()
			p, err = d.fetchProfile(rctx, dl, crm)
		}) {
			d.profiles.reading.Add(-1)
			return nil, ErrClosed
		}
		<-done
		return p, err
	})
	if reading >= profileWaiters {
		tr.Profile = profileSkipped
		return
	}
	timer := time.NewTimer(d.cfg.profile.timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if tr.Profile = profileOutcome(ctx, r.Err); r.Err == nil {
			tr.profile = r.Val.(bd.CustomerProfile)
		}
	case <-timer.C:
		tr.Profile = profileTimedOut
	case <-ctx.Done():
		tr.Profile = profileTimedOut
	}
}

// profileOutcome says how a read that ended with err went.
func profileOutcome(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return profileRead
	case errors.Is(err, binding.ErrNoMatch):
		return profileNone
	case ctx.Err() != nil:
		return profileTimedOut
	}
	return profileFailed
}

// fetchProfile reads the customer's profile from retailCRM and keeps it
// with the customer's binding; a customer with no card is remembered.
func (d *Distributor) fetchProfile(ctx context.Context, dl bd.Dialog, crm int64) (bd.CustomerProfile, error) {
	p, err := d.cfg.profiler.Profile(ctx, binding.ProfileRequest{Account: dl.Account, Customer: dl.Customer, CRMCustomer: crm})
	if errors.Is(err, binding.ErrNoMatch) {
		d.profiles.remember(dl.Customer.ID, bd.CustomerProfile{ReadAt: d.cfg.now()})
		return p, err
	}
	if err != nil {
		if ctx.Err() == nil { // not the distributor closing
			d.fail(dl.Account, "profile", fmt.Errorf("profile of customer %d: %w", dl.Customer.ID, err))
		}
		return p, err
	}
	if p.ReadAt.IsZero() {
		p.ReadAt = d.cfg.now()
	}
	d.profiles.remember(dl.Customer.ID, p)
	if bs, ok := d.store.(store.Bindings); ok {
		// Kept with the customer's binding, for every process, when the
		// customer is bound to the card it was read from.
		if b, err := bs.Binding(ctx, dl.Account, dl.Customer.ID); err == nil && b.CRMCustomer == p.CRMCustomer {
			b.Profile = p
			if err := bs.SaveBinding(ctx, b); err != nil {
				d.fail(dl.Account, "profile", fmt.Errorf("keep the profile of customer %d: %w", dl.Customer.ID, err))
			}
		}
	}
	d.cfg.logger.Debug("distributor: customer profile read", slog.String("account", string(dl.Account)),
		slog.Int64("customer", int64(dl.Customer.ID)), slog.Int64("manager", int64(p.Manager)))
	return p, nil
}

// remembered returns what was read for the customer less than maxAge
// before now: the profile the store could not keep, or, with CRMCustomer
// 0, that retailCRM has no card for them.
func (ps *profiles) remembered(c bd.CustomerID, now time.Time, maxAge time.Duration) (bd.CustomerProfile, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.read[c]
	if ok && now.Sub(p.ReadAt) >= maxAge {
		delete(ps.read, c)
		return bd.CustomerProfile{}, false
	}
	return p, ok
}

// remember keeps what was read for the customer, forgetting everything
// beyond a bound.
func (ps *profiles) remember(c bd.CustomerID, p bd.CustomerProfile) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.read == nil || len(ps.read) >= maxRemembered {
		ps.read = make(map[bd.CustomerID]bd.CustomerProfile)
	}
	ps.read[c] = p
}

// decidePersonal decides for a dialog whose customer's personal manager is
// m: m takes it when they may (decided, pickManager); otherwise the dialog
// waits for them (decided, wait) until the personal wait is over, when
// decided is false and the channel's rule applies.
func (d *Distributor) decidePersonal(ctx context.Context, snap *snapshot, dl bd.Dialog, m bd.ManagerID, at time.Time, waited time.Duration, tr *Trace) (v verdict, decided bool, err error) {
	tr.Personal = m
	left := snap.settings.PersonalWaitOrDefault() - waited
	p := snap.everyone
	i, in := slices.BinarySearch(p.ids, m)
	var why *Removal
	switch {
	case !slices.Contains(snap.settings.Managers, m):
		why = &Removal{Manager: m, Filter: FilterChannel, Detail: "the personal manager is not in the distribution"}
		left = 0 // nobody to wait for
	case slices.Contains(tr.left, m):
		why = &Removal{Manager: m, Filter: FilterLeft, Detail: "the dialog left its personal manager"}
		left = 0
	case !in:
		for _, r := range p.removed {
			if r.Manager == m {
				why = &r
				break
			}
		}
		if why == nil {
			why = &Removal{Manager: m, Filter: FilterRoster, Detail: "not in the roster"}
		}
	case !snap.settings.Hours.Open(at):
		why = &Removal{Manager: m, Filter: FilterHours, Detail: "the account is closed now"}
	default:
		if shift, ok := snap.settings.Shifts[m]; ok && !shift.Open(at) {
			why = &Removal{Manager: m, Filter: FilterHours, Detail: "outside their shift"}
		}
		for _, r := range snap.settings.Leave[m] {
			if r.Contains(at, snap.settings.Hours.Location()) {
				why = &Removal{Manager: m, Filter: FilterLeave, Detail: fmt.Sprintf("on leave %s to %s", r.From, r.To)}
			}
		}
	}
	if why == nil {
		var one [1]store.Load
		loads, err := d.readLoads(ctx, dl, []bd.ManagerID{m}, one[:0], tr)
		if err != nil {
			return 0, false, err
		}
		l := loads[0]
		if l.Open < p.caps[i] {
			tr.Pool = "personal manager"
			tr.pool = p
			tr.Candidates = []strategy.Candidate{{Manager: m, Open: l.Open, Capacity: p.caps[i], LastAssignedAt: l.LastAssignedAt, Rank: p.ranks[i]}}
			tr.Choice = strategy.Choice{Manager: m, Reason: "the customer's personal manager in retailCRM"}
			// Should they fill up before the reservation, the dialog
			// waits for them what is left of the wait.
			tr.PersonalWait = max(left, 0)
			return pickManager, true, nil
		}
		why = &Removal{Manager: m, Filter: FilterCapacity, Open: l.Open, Capacity: p.caps[i]}
	}
	tr.Removed = append(tr.Removed, *why)
	if left <= 0 {
		return 0, false, nil
	}
	tr.PersonalWait = left
	tr.Pool = "personal manager"
	switch why.Filter {
	case FilterHours, FilterLeave:
		tr.Situation = bd.OutsideWorkingHours
	case FilterOffline, FilterStatus, FilterRoster, FilterInactive:
		tr.Situation = bd.NoManagerOnline
	default:
		tr.Situation = bd.AllManagersBusy
	}
	return wait, true, nil
}

// CardChanged tells the distributor that a retailCRM customer's card
// changed (its personal manager, segments or tags, as retailCRM's customer
// history reports): the profiles read from it are dropped, here and in
// the store (when it is a store.ProfileForgetter), so that the next
// decision for its customers reads the card again.
func (d *Distributor) CardChanged(ctx context.Context, crmCustomer int64) error {
	if crmCustomer <= 0 {
		return fmt.Errorf("%w: card changed: retailCRM customer id must be positive, got %d", ErrBadEvent, crmCustomer)
	}
	d.profiles.forget(crmCustomer)
	if f, ok := d.store.(store.ProfileForgetter); ok {
		if err := f.ForgetProfiles(ctx, d.id, crmCustomer); err != nil {
			return fmt.Errorf("distributor: forget the profiles of retailCRM customer %d: %w", crmCustomer, err)
		}
	}
	return nil
}

// forget drops the profiles read from the retailCRM customer's card.
func (ps *profiles) forget(crmCustomer int64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for c, p := range ps.read {
		if p.CRMCustomer == crmCustomer {
			delete(ps.read, c)
		}
	}
}
