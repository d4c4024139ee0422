package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

var (
	errNoBinding = fmt.Errorf("%w: memory: the customer has no binding", store.ErrNotFound)
	errNoAccount = fmt.Errorf("%w: memory: no such account", store.ErrNotFound)
)

// Binding implements [store.Bindings]; it fails with [store.ErrNotFound]
// when the customer has no binding, and with [store.ErrInvalid] for an
// empty account or a non-positive customer id.
func (s *Store) Binding(_ context.Context, acc bd.AccountID, c bd.CustomerID) (store.Binding, error) {
	if err := checkCustomer("binding", acc, c); err != nil {
		return store.Binding{}, err
	}
	sh := s.shardOf(acc)
	if sh == nil {
		return store.Binding{}, errNoBinding
	}
	sh.mu.Lock()
	b, ok := sh.bindings[c]
	sh.mu.Unlock()
	if !ok {
		return store.Binding{}, errNoBinding
	}
	b.Profile = cloneProfile(b.Profile)
	return b, nil
}

// SaveBinding implements [store.Bindings]; an empty account or a
// non-positive customer or retailCRM customer id fail with [store.ErrInvalid].
// A binding whose Profile.ReadAt is zero keeps the profile stored before when
// its CRMCustomer is unchanged, and has none when it changed.
func (s *Store) SaveBinding(_ context.Context, b store.Binding) error {
	if err := checkCustomer("save binding", b.Account, b.Customer); err != nil {
		return err
	}
	if b.CRMCustomer <= 0 {
		return invalid("save binding", "retailCRM customer id must be positive, got %d", b.CRMCustomer)
	}
	// The caller keeps its slices: the store holds copies of its own.
	b.Profile = cloneProfile(b.Profile)
	sh := s.shardFor(b.Account)
	sh.mu.Lock()
	if b.Profile.ReadAt.IsZero() {
		b.Profile = bd.CustomerProfile{}
		if old, ok := sh.bindings[b.Customer]; ok && old.CRMCustomer == b.CRMCustomer {
			b.Profile = old.Profile
		}
	}
	sh.bindings[b.Customer] = b
	sh.mu.Unlock()
	return nil
}

// ForgetProfiles implements [store.ProfileForgetter]; an empty account or a
// non-positive retailCRM customer id fail with [store.ErrInvalid].
func (s *Store) ForgetProfiles(_ context.Context, acc bd.AccountID, crmCustomer int64) error {
	if err := checkAccount("forget profiles", acc); err != nil {
		return err
	}
	if crmCustomer <= 0 {
		return invalid("forget profiles", "retailCRM customer id must be positive, got %d", crmCustomer)
	}
	sh := s.shardFor(acc)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for c, b := range sh.bindings {
		if b.Account == acc && b.CRMCustomer == crmCustomer {
			b.Profile = bd.CustomerProfile{}
			sh.bindings[c] = b
		}
	}
	return nil
}

// cloneProfile returns p with slices of its own; empty slices become nil,
// as the SQL store returns them.
func cloneProfile(p bd.CustomerProfile) bd.CustomerProfile {
	p.Segments = cloneStrings(p.Segments)
	p.Tags = cloneStrings(p.Tags)
	return p
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func checkCustomer(op string, acc bd.AccountID, c bd.CustomerID) error {
	if err := checkAccount(op, acc); err != nil {
		return err
	}
	if c <= 0 {
		return invalid(op, "customer id must be positive, got %d", c)
	}
	return nil
}

// SaveAccount implements [store.Accounts], keeping a deep copy of a; an
// empty id fails with [store.ErrInvalid].
func (s *Store) SaveAccount(_ context.Context, a bd.Account) error {
	if err := checkAccount("save account", a.ID); err != nil {
		return err
	}
	a.Settings = a.Settings.Clone()
	s.accountsMu.Lock()
	defer s.accountsMu.Unlock()
	if s.accounts == nil {
		s.accounts = make(map[bd.AccountID]bd.Account)
	}
	s.accounts[a.ID] = a
	return nil
}

// Account implements [store.Accounts], returning a deep copy; it fails with
// [store.ErrNotFound] for an unknown account.
func (s *Store) Account(_ context.Context, id bd.AccountID) (bd.Account, error) {
	if err := checkAccount("account", id); err != nil {
		return bd.Account{}, err
	}
	s.accountsMu.RLock()
	a, ok := s.accounts[id]
	s.accountsMu.RUnlock()
	if !ok {
		return bd.Account{}, errNoAccount
	}
	a.Settings = a.Settings.Clone()
	return a, nil
}

// Accounts implements [store.Accounts], returning deep copies ordered by id
// (byte-wise).
func (s *Store) Accounts(_ context.Context) ([]bd.Account, error) {
	s.accountsMu.RLock()
	out := make([]bd.Account, 0, len(s.accounts))
	for _, a := range s.accounts {
		a.Settings = a.Settings.Clone()
		out = append(out, a)
	}
	s.accountsMu.RUnlock()
	slices.SortFunc(out, func(a, b bd.Account) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// SaveSettings implements [store.Accounts], keeping a deep copy of set; it
// fails with [store.ErrNotFound] for an unknown account.
func (s *Store) SaveSettings(_ context.Context, id bd.AccountID, set bd.Settings) error {
	if err := checkAccount("save settings", id); err != nil {
		return err
	}
	set = set.Clone()
	s.accountsMu.Lock()
	defer s.accountsMu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return errNoAccount
	}
	a.Settings = set
	s.accounts[id] = a
	return nil
}
