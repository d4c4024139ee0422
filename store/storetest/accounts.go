package storetest

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

func bindingCases() []testCase {
	return []testCase{
		{"RoundTrip", testBindingRoundTrip},
		{"Invalid", testBindingInvalid},
		{"ProfileRoundTrip", testBindingProfileRoundTrip},
		{"ProfileKeptWithoutRead", testBindingProfileKept},
		{"ProfileDroppedOnCRMCustomerChange", testBindingProfileDropped},
		{"ProfileNotShared", testBindingProfileNotShared},
		{"ForgetProfiles", testBindingForgetProfiles},
	}
}

func wantBinding(t *testing.T, s store.Store, want store.Binding) {
	t.Helper()
	got, err := s.Binding(t.Context(), want.Account, want.Customer)
	noErr(t, err, "Binding(%d)", want.Customer)
	if !got.At.Equal(want.At) {
		t.Fatalf("Binding(%d).At = %v, want %v", want.Customer, got.At, want.At)
	}
	if got.Profile.ReadAt.IsZero() != want.Profile.ReadAt.IsZero() || !got.Profile.ReadAt.Equal(want.Profile.ReadAt) {
		t.Fatalf("Binding(%d).Profile.ReadAt = %v, want %v", want.Customer, got.Profile.ReadAt, want.Profile.ReadAt)
	}
	got.At, got.Profile.ReadAt = want.At, want.Profile.ReadAt
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Binding(%d) = %+v, want %+v", want.Customer, got, want)
	}
}

func testBindingRoundTrip(t *testing.T, s store.Store) {
	a1, a2 := newAccount(t), newAccount(t)
	ctx := t.Context()
	_, err := s.Binding(ctx, a1, 7)
	isErr(t, err, store.ErrNotFound, "Binding of a customer never bound")

	b := store.Binding{Account: a1, Customer: 7, CRMCustomer: 9_000_000_001, Rule: "phone", At: at(0)}
	noErr(t, s.SaveBinding(ctx, b), "SaveBinding")
	wantBinding(t, s, b)

	other := store.Binding{Account: a2, Customer: 7, CRMCustomer: 5, Rule: "created", At: at(time.Second)}
	noErr(t, s.SaveBinding(ctx, other), "SaveBinding in another account")

	b2 := store.Binding{Account: a1, Customer: 7, CRMCustomer: 12, Rule: "linked", At: at(time.Minute)}
	noErr(t, s.SaveBinding(ctx, b2), "SaveBinding replacing")
	wantBinding(t, s, b2)
	wantBinding(t, s, other)
	_, err = s.Binding(ctx, a1, 8)
	isErr(t, err, store.ErrNotFound, "Binding of another customer")
}

// profile returns a profile of CRM customer crm read at at(d), with
// segments and tags out of alphabetical order, so that a store that sorts
// them fails.
func profile(crm int64, d time.Duration) bd.CustomerProfile {
	return bd.CustomerProfile{
		CRMCustomer: crm,
		Manager:     bd.ManagerID(4_000_000_007),
		Segments:    []string{"vip", "b2b", "loyal-2025"},
		Tags:        []string{"Опт", "returns", "Early bird"},
		ReadAt:      at(d),
	}
}

func testBindingProfileRoundTrip(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	b := store.Binding{Account: acc, Customer: 21, CRMCustomer: 9_000_000_001, Rule: "phone", At: at(0),
		Profile: profile(9_000_000_001, time.Minute)}
	noErr(t, s.SaveBinding(ctx, b), "SaveBinding with a profile")
	wantBinding(t, s, b)

	// A profile read anew replaces the stored one, also with fewer fields.
	b.Profile = bd.CustomerProfile{CRMCustomer: 9_000_000_001, Tags: []string{"z", "a"}, ReadAt: at(2 * time.Minute)}
	noErr(t, s.SaveBinding(ctx, b), "SaveBinding with a profile read anew")
	wantBinding(t, s, b)

	// A profile with nothing in it but the time it was read is a profile:
	// the customer has no personal manager, segment or tag.
	b.Profile = bd.CustomerProfile{CRMCustomer: 9_000_000_001, ReadAt: at(3 * time.Minute)}
	noErr(t, s.SaveBinding(ctx, b), "SaveBinding with an empty profile")
	wantBinding(t, s, b)

	// Empty slices read back as nil.
	b.Profile = bd.CustomerProfile{CRMCustomer: 9_000_000_001, Segments: []string{}, Tags: []string{}, ReadAt: at(4 * time.Minute)}
	noErr(t, s.SaveBinding(ctx, b), "SaveBinding with empty segments and tags")
	got, err := s.Binding(ctx, acc, 21)
	noErr(t, err, "Binding(21)")
	if got.Profile.Segments != nil || got.Profile.Tags != nil {
		t.Fatalf("Binding(21).Profile segments %#v, tags %#v after saving empty ones, want nil and nil",
			got.Profile.Segments, got.Profile.Tags)
	}

	// A binding saved without a profile has none.
	plain := store.Binding{Account: acc, Customer: 22, CRMCustomer: 5, Rule: "created", At: at(0)}
	noErr(t, s.SaveBinding(ctx, plain), "SaveBinding without a profile")
	wantBinding(t, s, plain)
}

func testBindingProfileKept(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	withProfile := store.Binding{Account: acc, Customer: 31, CRMCustomer: 77, Rule: "phone", At: at(0),
		Profile: profile(77, time.Second)}
	noErr(t, s.SaveBinding(ctx, withProfile), "SaveBinding with a profile")

	// The binder saves the same link again, knowing nothing of profiles.
	again := store.Binding{Account: acc, Customer: 31, CRMCustomer: 77, Rule: "linked", At: at(time.Hour)}
	noErr(t, s.SaveBinding(ctx, again), "SaveBinding of the same CRM customer without a profile")
	want := again
	want.Profile = withProfile.Profile
	wantBinding(t, s, want)

	// Fields of a profile whose ReadAt is zero are not a profile either.
	partial := again
	partial.At = at(2 * time.Hour)
	partial.Profile = bd.CustomerProfile{CRMCustomer: 77, Tags: []string{"stray"}}
	noErr(t, s.SaveBinding(ctx, partial), "SaveBinding with a profile never read")
	want = partial
	want.Profile = withProfile.Profile
	wantBinding(t, s, want)

	// A customer never profiled stays so when bound again.
	bare := store.Binding{Account: acc, Customer: 32, CRMCustomer: 78, Rule: "email", At: at(0)}
	noErr(t, s.SaveBinding(ctx, bare), "SaveBinding without a profile")
	bare.At = at(time.Minute)
	noErr(t, s.SaveBinding(ctx, bare), "SaveBinding again without a profile")
	wantBinding(t, s, bare)
}

func testBindingProfileDropped(t *testing.T, s store.Store) {
	acc, other := newAccount(t), newAccount(t)
	ctx := t.Context()
	first := store.Binding{Account: acc, Customer: 41, CRMCustomer: 100, Rule: "phone", At: at(0),
		Profile: profile(100, time.Second)}
	noErr(t, s.SaveBinding(ctx, first), "SaveBinding with a profile")
	// The same customer id in another account is another customer.
	elsewhere := store.Binding{Account: other, Customer: 41, CRMCustomer: 100, Rule: "phone", At: at(0),
		Profile: profile(100, 2*time.Second)}
	noErr(t, s.SaveBinding(ctx, elsewhere), "SaveBinding in another account")

	// Bound to another CRM customer (customers merged in retailCRM, say):
	// the profile described the old one and goes.
	moved := store.Binding{Account: acc, Customer: 41, CRMCustomer: 101, Rule: "linked", At: at(time.Minute)}
	noErr(t, s.SaveBinding(ctx, moved), "SaveBinding to another CRM customer without a profile")
	wantBinding(t, s, moved)
	wantBinding(t, s, elsewhere)

	// Back to the first CRM customer: the dropped profile does not return.
	back := store.Binding{Account: acc, Customer: 41, CRMCustomer: 100, Rule: "linked", At: at(2 * time.Minute)}
	noErr(t, s.SaveBinding(ctx, back), "SaveBinding back to the first CRM customer")
	wantBinding(t, s, back)

	// Another CRM customer with its profile read: the new profile is kept.
	fresh := store.Binding{Account: acc, Customer: 41, CRMCustomer: 102, Rule: "linked", At: at(3 * time.Minute),
		Profile: profile(102, 3*time.Minute)}
	noErr(t, s.SaveBinding(ctx, fresh), "SaveBinding to another CRM customer with its profile")
	wantBinding(t, s, fresh)
}

func testBindingProfileNotShared(t *testing.T, s store.Store) {
	acc := newAccount(t)
	ctx := t.Context()
	b := store.Binding{Account: acc, Customer: 51, CRMCustomer: 9, Rule: "phone", At: at(0), Profile: profile(9, time.Second)}
	noErr(t, s.SaveBinding(ctx, b), "SaveBinding")
	want := b
	want.Profile = profile(9, time.Second)
	// The caller's slices stay the caller's after the save...
	b.Profile.Segments[0], b.Profile.Tags[0] = "changed", "changed"
	wantBinding(t, s, want)
	// ...and the slices read are the reader's.
	got, err := s.Binding(ctx, acc, 51)
	noErr(t, err, "Binding(51)")
	got.Profile.Segments[1], got.Profile.Tags[1] = "changed", "changed"
	wantBinding(t, s, want)
}

func testBindingInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	isErr(t, s.SaveBinding(ctx, store.Binding{Customer: 1, CRMCustomer: 1, Rule: "phone", At: at(0)}), store.ErrInvalid,
		"SaveBinding with an empty account")
	acc := newAccount(t)
	isErr(t, s.SaveBinding(ctx, store.Binding{Account: acc, CRMCustomer: 1, Rule: "phone", At: at(0)}), store.ErrInvalid,
		"SaveBinding of customer 0")
	isErr(t, s.SaveBinding(ctx, store.Binding{Account: acc, Customer: 2, CRMCustomer: 0, Rule: "phone", At: at(0)}), store.ErrInvalid,
		"SaveBinding to retailCRM customer 0")
	_, err := s.Binding(ctx, acc, 2)
	isErr(t, err, store.ErrNotFound, "Binding after a refused SaveBinding")
	_, err = s.Binding(ctx, acc, 0)
	if err == nil {
		t.Fatal("Binding of customer 0 returned no error")
	}
}

func accountCases() []testCase {
	return []testCase{
		{"RoundTrip", testAccountRoundTrip},
		{"Ordered", testAccountsOrdered},
		{"Replace", testAccountReplace},
		{"SaveSettings", testSaveSettings},
		{"NotShared", testAccountNotShared},
		{"NotFound", testAccountNotFound},
		{"Invalid", testAccountInvalid},
	}
}

// fullSettings sets every field of Settings to something other than its
// zero value.
func fullSettings() bd.Settings {
	var week [7][]bd.Span
	week[time.Monday] = []bd.Span{{Start: 9 * 60, End: 13 * 60}, {Start: 14 * 60, End: 18 * 60}}
	week[time.Tuesday] = []bd.Span{{Start: 0, End: 24 * 60}}
	week[time.Saturday] = []bd.Span{{Start: 10 * 60, End: 15*60 + 30}}
	return bd.Settings{
		Managers:        []bd.ManagerID{30, 10, 20},
		DefaultCapacity: 4,
		Capacity:        map[bd.ManagerID]int{10: 2, 30: 0},
		Strategy:        "least_loaded",
		Availability:    bd.StatusOnly,
		Reassign:        bd.ReassignNew,
		ReassignAfter:   7*time.Minute + 30*time.Second,
		AutoBind:        true,
		AutoCreate:      true,
		Replies: map[bd.Situation]string{
			bd.DialogReceived:      "Здравствуйте, {{.Customer}}! Мы получили ваше сообщение.",
			bd.ManagerAssigned:     "{{.Manager}} will answer you shortly.",
			bd.NoManagerOnline:     "Nobody's online \"right now\" — we'll write back.",
			bd.AllManagersBusy:     "All managers are busy;\nplease wait.",
			bd.OutsideWorkingHours: "We're closed. <b>Hours</b>: 9–18 & Sat 10–15:30",
		},
		Hours: bd.WorkingHours{TimeZone: "Europe/Moscow", Week: week},
		Channels: map[bd.ChannelID]bd.ChannelRule{
			7: {Target: bd.ToBot, Bot: 5},
			8: {Target: bd.ToManagers, Managers: []bd.ManagerID{20, 10}},
			9: {Target: bd.ToManagers},
		},
		DefaultRule: bd.ChannelRule{Target: bd.ToManagers, Managers: []bd.ManagerID{30}},
	}
}

func fullAccount(id bd.AccountID) bd.Account {
	return bd.Account{
		ID:         id,
		Domain:     "https://" + strings.ReplaceAll(string(id), "/", "-") + ".retailcrm.example",
		APIKey:     "crm-key-0123456789abcdef",
		MGEndpoint: "https://mg-s1.retailcrm.example/api/bot/v1",
		MGToken:    "mg-token-fedcba9876543210",
		Settings:   fullSettings(),
	}
}

// normal returns s with empty slices and maps made nil, so that stores that
// do not tell an empty collection from a missing one compare equal.
func normal(s bd.Settings) bd.Settings {
	s = s.Clone()
	if len(s.Managers) == 0 {
		s.Managers = nil
	}
	if len(s.Capacity) == 0 {
		s.Capacity = nil
	}
	if len(s.Replies) == 0 {
		s.Replies = nil
	}
	for d := range s.Hours.Week {
		if len(s.Hours.Week[d]) == 0 {
			s.Hours.Week[d] = nil
		}
	}
	if len(s.Channels) == 0 {
		s.Channels = nil
	}
	for c, r := range s.Channels {
		if len(r.Managers) == 0 {
			r.Managers = nil
			s.Channels[c] = r
		}
	}
	if len(s.DefaultRule.Managers) == 0 {
		s.DefaultRule.Managers = nil
	}
	return s
}

// sameAccount reports how got differs from want, or "" when it does not.
func sameAccount(got, want bd.Account) string {
	switch {
	case got.ID != want.ID:
		return "ID " + string(got.ID) + ", want " + string(want.ID)
	case got.Domain != want.Domain:
		return "Domain " + got.Domain + ", want " + want.Domain
	case got.APIKey.Reveal() != want.APIKey.Reveal():
		return "APIKey does not hold the saved key"
	case got.MGEndpoint != want.MGEndpoint:
		return "MGEndpoint " + got.MGEndpoint + ", want " + want.MGEndpoint
	case got.MGToken.Reveal() != want.MGToken.Reveal():
		return "MGToken does not hold the saved token"
	case !reflect.DeepEqual(normal(got.Settings), normal(want.Settings)):
		return "Settings differ"
	}
	return ""
}

func wantAccount(t *testing.T, s store.Store, want bd.Account) {
	t.Helper()
	got, err := s.Account(t.Context(), want.ID)
	noErr(t, err, "Account(%q)", want.ID)
	if diff := sameAccount(got, want); diff != "" {
		t.Fatalf("Account(%q): %s\ngot settings  %+v\nwant settings %+v", want.ID, diff, got.Settings, want.Settings)
	}
}

func testAccountRoundTrip(t *testing.T, s store.Store) {
	a := fullAccount(newAccount(t))
	noErr(t, s.SaveAccount(t.Context(), a), "SaveAccount")
	wantAccount(t, s, a)

	// A second account with the zero Settings also round-trips.
	b := bd.Account{ID: newAccount(t), Domain: "https://b.retailcrm.example"}
	noErr(t, s.SaveAccount(t.Context(), b), "SaveAccount of an account without settings")
	wantAccount(t, s, b)
	wantAccount(t, s, a)
}

func testAccountsOrdered(t *testing.T, s store.Store) {
	ctx := t.Context()
	prefix := newAccount(t)
	ids := []bd.AccountID{prefix + "-b", prefix + "-c", prefix + "-a", prefix + "-ab"}
	saved := make(map[bd.AccountID]bd.Account)
	for _, id := range ids {
		a := fullAccount(id)
		a.Settings.DefaultCapacity = len(id)
		saved[id] = a
		noErr(t, s.SaveAccount(ctx, a), "SaveAccount(%q)", id)
	}
	all, err := s.Accounts(ctx)
	noErr(t, err, "Accounts")
	// Other accounts may live in a shared store: check order over all and
	// contents over ours.
	var ours []bd.AccountID
	for i, a := range all {
		if i > 0 && all[i-1].ID >= a.ID {
			t.Fatalf("Accounts not strictly ordered by id: %q before %q", all[i-1].ID, a.ID)
		}
		want, ok := saved[a.ID]
		if !ok {
			continue
		}
		ours = append(ours, a.ID)
		if diff := sameAccount(a, want); diff != "" {
			t.Fatalf("Accounts: account %q: %s", a.ID, diff)
		}
	}
	sorted := slices.Sorted(slices.Values(ids))
	if !slices.Equal(ours, sorted) {
		t.Fatalf("Accounts listed ours as %v, want %v", ours, sorted)
	}
}

func testAccountReplace(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := fullAccount(newAccount(t))
	noErr(t, s.SaveAccount(ctx, a), "SaveAccount")
	a.Domain = "https://moved.retailcrm.example"
	a.APIKey = "crm-key-rotated"
	a.MGToken = "mg-token-rotated"
	a.Settings.Managers = []bd.ManagerID{10}
	a.Settings.Capacity = nil
	a.Settings.Channels = nil
	a.Settings.DefaultRule = bd.ChannelRule{Target: bd.ToBot, Bot: 3}
	noErr(t, s.SaveAccount(ctx, a), "SaveAccount replacing")
	wantAccount(t, s, a)
	all, err := s.Accounts(ctx)
	noErr(t, err, "Accounts")
	n := 0
	for _, x := range all {
		if x.ID == a.ID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("Accounts lists the replaced account %d times, want once", n)
	}
}

func testSaveSettings(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := fullAccount(newAccount(t))
	noErr(t, s.SaveAccount(ctx, a), "SaveAccount")

	next := fullSettings()
	next.Managers = []bd.ManagerID{1, 2}
	next.DefaultCapacity = 9
	next.Capacity = map[bd.ManagerID]int{2: 1}
	next.Strategy = "round_robin"
	next.Availability = bd.StatusAndOnline
	next.Reassign = bd.ReassignOff
	next.ReassignAfter = 0
	next.AutoBind, next.AutoCreate = false, false
	next.Replies[bd.AllManagersBusy] = "changed"
	next.Hours = bd.WorkingHours{}
	next.Channels = map[bd.ChannelID]bd.ChannelRule{1: {Target: bd.ToManagers, Managers: []bd.ManagerID{2}}}
	next.DefaultRule = bd.ChannelRule{}
	noErr(t, s.SaveSettings(ctx, a.ID, next), "SaveSettings")

	a.Settings = next
	wantAccount(t, s, a)

	err := s.SaveSettings(ctx, newAccount(t), fullSettings())
	isErr(t, err, store.ErrNotFound, "SaveSettings of an unknown account")
}

func testAccountNotShared(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := fullAccount(newAccount(t))
	keep := fullAccount(a.ID)
	noErr(t, s.SaveAccount(ctx, a), "SaveAccount")
	// Changing what was saved, or what was read, changes nothing stored.
	a.Settings.Managers[0] = 999
	a.Settings.Capacity[10] = 999
	a.Settings.Replies[bd.DialogReceived] = "changed"
	a.Settings.Hours.Week[time.Monday][0].Start = 1
	a.Settings.DefaultRule.Managers[0] = 999
	wantAccount(t, s, keep)

	got, err := s.Account(ctx, a.ID)
	noErr(t, err, "Account")
	mutate(got.Settings)
	all, err := s.Accounts(ctx)
	noErr(t, err, "Accounts")
	for _, x := range all {
		mutate(x.Settings)
	}
	wantAccount(t, s, keep)

	// The same holds for SaveSettings.
	saved := a.Settings.Clone()
	noErr(t, s.SaveSettings(ctx, a.ID, a.Settings), "SaveSettings")
	mutate(a.Settings)
	keep.Settings = saved
	wantAccount(t, s, keep)
}

// mutate changes every collection inside s that it can reach.
func mutate(s bd.Settings) {
	for i := range s.Managers {
		s.Managers[i] = -1
	}
	for k := range s.Capacity {
		s.Capacity[k] = -1
	}
	for k := range s.Replies {
		s.Replies[k] = "mutated"
	}
	for _, d := range s.Hours.Week {
		for i := range d {
			d[i] = bd.Span{Start: -1, End: -1}
		}
	}
	for _, r := range s.Channels {
		for i := range r.Managers {
			r.Managers[i] = -1
		}
	}
	for k := range s.Channels {
		s.Channels[k] = bd.ChannelRule{Target: "mutated"}
	}
	for i := range s.DefaultRule.Managers {
		s.DefaultRule.Managers[i] = -1
	}
}

func testAccountNotFound(t *testing.T, s store.Store) {
	_, err := s.Account(t.Context(), newAccount(t))
	isErr(t, err, store.ErrNotFound, "Account of an unknown id")
}

func testAccountInvalid(t *testing.T, s store.Store) {
	a := fullAccount("")
	isErr(t, s.SaveAccount(t.Context(), a), store.ErrInvalid, "SaveAccount with an empty id")
}

// A changed retailCRM card drops the profiles of every binding to it in
// the account, and only those, for stores that keep profiles and can drop
// them (store.ProfileForgetter).
func testBindingForgetProfiles(t *testing.T, s store.Store) {
	f, ok := s.(store.ProfileForgetter)
	if !ok {
		t.Skip("the store cannot drop profiles (store.ProfileForgetter)")
	}
	acc, other := newAccount(t), newAccount(t)
	ctx := t.Context()
	changed := []store.Binding{
		{Account: acc, Customer: 61, CRMCustomer: 300, Rule: "phone", At: at(0), Profile: profile(300, time.Second)},
		{Account: acc, Customer: 62, CRMCustomer: 300, Rule: "email", At: at(0), Profile: profile(300, time.Second)},
	}
	kept := []store.Binding{
		{Account: acc, Customer: 63, CRMCustomer: 301, Rule: "phone", At: at(0), Profile: profile(301, time.Second)},
		{Account: other, Customer: 61, CRMCustomer: 300, Rule: "phone", At: at(0), Profile: profile(300, time.Second)},
	}
	for _, b := range append(slices.Clone(changed), kept...) {
		noErr(t, s.SaveBinding(ctx, b), "SaveBinding")
	}
	noErr(t, f.ForgetProfiles(ctx, acc, 300), "ForgetProfiles")
	for _, b := range changed {
		b.Profile = bd.CustomerProfile{}
		wantBinding(t, s, b)
	}
	for _, b := range kept {
		wantBinding(t, s, b)
	}
	noErr(t, f.ForgetProfiles(ctx, acc, 999), "ForgetProfiles of a CRM customer nobody is bound to")
	isErr(t, f.ForgetProfiles(ctx, "", 300), store.ErrInvalid, "ForgetProfiles without an account")
	isErr(t, f.ForgetProfiles(ctx, acc, 0), store.ErrInvalid, "ForgetProfiles of CRM customer 0")
}
