package bot

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
)

// crmUser is what the roster takes from a retailCRM user.
type crmUser struct {
	status    bd.ManagerStatus
	active    bool
	firstName string
	lastName  string
}

// roster joins what MessageGateway says about each manager (presence,
// activity, names; through the mgsource.Source) with what retailCRM says
// (work status, activity; polled), and feeds the joined managers to the
// distributor. It sits between the Source and the distributor: [roster.target]
// wraps the Target the fleet gives each holding period of the account.
//
// The join follows crm.JoinRoster: a manager is the MG user whose id is a
// retailCRM user's mgUserId; their status is the CRM status (an unknown
// status counts as busy: never free); they are active only when both sides
// say so. Once retailCRM has answered, an MG user no CRM manager points at
// is kept inactive (never eligible). Until then everyone is free, as
// mgsource assumes.
//
// roster is safe for concurrent use. Changes reach the distributor under
// one mutex, so the last state sent is always the last state known, even
// when an MG presence event and a CRM status change cross.
type roster struct {
	account bd.AccountID

	mu     sync.Mutex
	mg     map[bd.ManagerID]bd.Manager // as MG reports them
	joined map[bd.ManagerID]bd.Manager // as last given to the distributor
	crm    map[bd.ManagerID]crmUser    // by MG user id
	known  bool                        // retailCRM has answered once
}

func newRoster(account bd.AccountID) *roster {
	return &roster{
		account: account,
		mg:      make(map[bd.ManagerID]bd.Manager),
		joined:  make(map[bd.ManagerID]bd.Manager),
		crm:     make(map[bd.ManagerID]crmUser),
	}
}

// target returns the Target the Source feeds: t (the distributor, as the
// fleet gives it), with every manager joined with retailCRM on the way.
func (r *roster) target(t mgsource.Target) mgsource.Target {
	return rosterTarget{r: r, Target: t}
}

// rosterTarget is a roster in front of one Target; resyncs pass through.
type rosterTarget struct {
	r *roster
	mgsource.Target
}

var _ mgsource.Target = rosterTarget{}

func (rt rosterTarget) Handle(ctx context.Context, ev distributor.Event) error {
	return rt.r.handle(ctx, rt.Target, ev)
}

func (rt rosterTarget) SetRoster(ctx context.Context, managers []bd.Manager) error {
	return rt.r.setRoster(ctx, rt.Target, managers)
}

// join returns m (as MG reports it) joined with retailCRM. Call with r.mu held.
func (r *roster) join(m bd.Manager) bd.Manager {
	if !r.known {
		if m.Status == "" || !m.Status.Valid() {
			m.Status = bd.StatusFree
		}
		return m
	}
	u, ok := r.crm[m.ID]
	if !ok {
		m.Active = false
		m.Status = bd.StatusBusy
		return m
	}
	m.Status = u.status
	m.Active = m.Active && u.active
	if u.firstName != "" || u.lastName != "" {
		m.FirstName, m.LastName = u.firstName, u.lastName
	}
	return m
}

// status gives mgsource the CRM status of a manager.
func (r *roster) status(id bd.ManagerID) (bd.ManagerStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.crm[id]
	return u.status, ok
}

// handle passes an event to t, joining a ManagerChanged event's manager
// with retailCRM first.
func (r *roster) handle(ctx context.Context, t mgsource.Target, ev distributor.Event) error {
	if ev.Kind != distributor.ManagerChanged {
		return t.Handle(ctx, ev)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mg[ev.Manager.ID] = ev.Manager
	ev.Manager = r.join(ev.Manager)
	r.joined[ev.Manager.ID] = ev.Manager
	return t.Handle(ctx, ev)
}

// setRoster replaces the MG users and gives the joined roster to t.
func (r *roster) setRoster(ctx context.Context, t mgsource.Target, managers []bd.Manager) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.mg)
	clear(r.joined)
	out := make([]bd.Manager, 0, len(managers))
	for _, m := range managers {
		r.mg[m.ID] = m
		j := r.join(m)
		r.joined[m.ID] = j
		out = append(out, j)
	}
	return t.SetRoster(ctx, out)
}

// setCRM takes the retailCRM managers just read and tells t about every
// manager whose joined state changed.
func (r *roster) setCRM(ctx context.Context, t mgsource.Target, users []crm.User) error {
	next := crmUsers(users)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.crm, r.known = next, true
	var changed []bd.Manager
	for id, m := range r.mg {
		j := r.join(m)
		if j != r.joined[id] {
			r.joined[id] = j
			changed = append(changed, j)
		}
	}
	slices.SortFunc(changed, func(a, b bd.Manager) int { return cmp.Compare(a.ID, b.ID) })
	var first error
	for _, m := range changed {
		if err := t.Handle(ctx, distributor.Event{Kind: distributor.ManagerChanged, Account: r.account, Manager: m}); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// noteCRM keeps retailCRM's managers for the next join, telling nobody: a
// roster set right after joins them.
func (r *roster) noteCRM(users []crm.User) {
	next := crmUsers(users)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.crm, r.known = next, true
}

// crmUsers indexes retailCRM's managers by their MG user id.
func crmUsers(users []crm.User) map[bd.ManagerID]crmUser {
	next := make(map[bd.ManagerID]crmUser, len(users))
	for _, u := range users {
		if u.MGUserID <= 0 {
			continue
		}
		id := bd.ManagerID(u.MGUserID)
		if _, dup := next[id]; dup {
			continue // crm.JoinRoster keeps the first (lowest id); Managers lists in id order
		}
		st := bd.ManagerStatus(strings.ToLower(strings.TrimSpace(u.Status)))
		if !st.Valid() {
			st = bd.StatusBusy
		}
		next[id] = crmUser{status: st, active: u.Active, firstName: u.FirstName, lastName: u.LastName}
	}
	return next
}

// managers returns the joined roster ordered by id.
func (r *roster) managers() []bd.Manager {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]bd.Manager, 0, len(r.joined))
	for _, m := range r.joined {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b bd.Manager) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
