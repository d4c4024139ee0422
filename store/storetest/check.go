package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// noErr stops the test when err is not nil.
func noErr(t *testing.T, err error, call string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", fmt.Sprintf(call, args...), err)
	}
}

// isErr stops the test unless errors.Is(err, want).
func isErr(t *testing.T, err, want error, call string, args ...any) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want one matching %v", fmt.Sprintf(call, args...), err, want)
	}
}

// assign makes a succeed.
func assign(t *testing.T, s store.Store, a store.Assignment) {
	t.Helper()
	noErr(t, s.Assign(t.Context(), a), "Assign(dialog %d to %s, capacity %d)", a.Dialog, a.To, a.Capacity)
}

// loads returns the loads of ms.
func loads(t *testing.T, s store.Store, acc bd.AccountID, ms ...bd.ManagerID) []store.Load {
	t.Helper()
	ls, err := s.Loads(t.Context(), acc, ms, nil)
	noErr(t, err, "Loads(%v)", ms)
	if len(ls) != len(ms) {
		t.Fatalf("Loads(%v) returned %d loads, want %d", ms, len(ls), len(ms))
	}
	return ls
}

// wantOpen checks that manager m holds open dialogs.
func wantOpen(t *testing.T, s store.Store, acc bd.AccountID, m bd.ManagerID, open int) {
	t.Helper()
	l := loads(t, s, acc, m)[0]
	if l.Manager != m || l.Open != open {
		t.Fatalf("Loads(%d) = {Manager: %d, Open: %d}, want {Manager: %d, Open: %d}", m, l.Manager, l.Open, m, open)
	}
}

// dialogsOf returns the dialogs of m.
func dialogsOf(t *testing.T, s store.Store, acc bd.AccountID, m bd.ManagerID) []bd.DialogID {
	t.Helper()
	ds, err := s.DialogsOf(t.Context(), acc, m)
	noErr(t, err, "DialogsOf(%d)", m)
	return ds
}

// wantDialogs checks that m holds exactly want, in ascending order.
func wantDialogs(t *testing.T, s store.Store, acc bd.AccountID, m bd.ManagerID, want ...bd.DialogID) {
	t.Helper()
	if got := dialogsOf(t, s, acc, m); !slices.Equal(got, want) {
		t.Fatalf("DialogsOf(%d) = %v, want %v", m, got, want)
	}
}

// wantResponsible checks the dialog's responsible; a zero want means nobody
// (ErrNotFound).
func wantResponsible(t *testing.T, s store.Store, acc bd.AccountID, d bd.DialogID, want bd.Responsible) {
	t.Helper()
	got, err := s.Responsible(t.Context(), acc, d)
	if want.IsZero() {
		isErr(t, err, store.ErrNotFound, "Responsible(%d) of an unassigned dialog (got %s)", d, got)
		return
	}
	noErr(t, err, "Responsible(%d)", d)
	if got != want {
		t.Fatalf("Responsible(%d) = %s, want %s", d, got, want)
	}
}

// wantLastManager checks LastManager; zero want means ErrNotFound.
func wantLastManager(t *testing.T, s store.Store, acc bd.AccountID, c bd.CustomerID, want bd.ManagerID) {
	t.Helper()
	got, err := s.LastManager(t.Context(), acc, c)
	if want == 0 {
		isErr(t, err, store.ErrNotFound, "LastManager(%d) of a customer never assigned (got %d)", c, got)
		return
	}
	noErr(t, err, "LastManager(%d)", c)
	if got != want {
		t.Fatalf("LastManager(%d) = %d, want %d", c, got, want)
	}
}

// checkConsistent checks, for every manager in ms, that the load equals the
// number of dialogs held, that DialogsOf is strictly ascending, that each of
// those dialogs names the manager as responsible, and that no dialog is held
// by two managers. It returns the total number of dialogs held.
func checkConsistent(t *testing.T, s store.Store, acc bd.AccountID, ms []bd.ManagerID) int {
	t.Helper()
	ls := loads(t, s, acc, ms...)
	holder := make(map[bd.DialogID]bd.ManagerID)
	total := 0
	for i, m := range ms {
		ds := dialogsOf(t, s, acc, m)
		if ls[i].Manager != m {
			t.Fatalf("Loads: entry %d is manager %d, want %d", i, ls[i].Manager, m)
		}
		if ls[i].Open != len(ds) {
			t.Fatalf("manager %d: Loads reports %d open dialogs, DialogsOf lists %d: %v", m, ls[i].Open, len(ds), ds)
		}
		for j, d := range ds {
			if j > 0 && ds[j-1] >= d {
				t.Fatalf("manager %d: DialogsOf not strictly ascending: %v", m, ds)
			}
			if other, ok := holder[d]; ok {
				t.Fatalf("dialog %d is held by manager %d and manager %d", d, other, m)
			}
			holder[d] = m
			wantResponsible(t, s, acc, d, bd.ManagerOf(m))
		}
		total += len(ds)
	}
	return total
}
