package crm_test

import (
	"slices"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/crm"
)

func TestJoinRoster(t *testing.T) {
	users := []crm.User{
		{ID: 9, FirstName: "Zed", Active: true, Status: "free", MGUserID: 90},
		{ID: 1, FirstName: "Ann", LastName: "A", Active: true, Status: "free", MGUserID: 10},
		{ID: 2, FirstName: "Bob", Active: true, Status: "Busy", MGUserID: 20},
		{ID: 3, FirstName: "Tech", Active: true, Status: "free", MGUserID: 30},
		{ID: 4, FirstName: "NoChat", Active: true, Status: "free"},
		{ID: 5, FirstName: "Away", Active: true, Status: "vacation", MGUserID: 50},
		{ID: 6, FirstName: "Twin", Active: true, Status: "free", MGUserID: 10},
		{ID: 7, Active: true, Status: "break", MGUserID: 70},
		{ID: 8, FirstName: "Off", Active: false, Status: "free", MGUserID: 80},
		{ID: 10, FirstName: "Ghost", Active: true, Status: "free", MGUserID: 100},
		{ID: 11, FirstName: "Blank", Active: true, MGUserID: 110},
	}
	mg := []crm.MGUser{
		{ID: 10, Online: true, Available: true, Active: true},
		{ID: 20, Online: true, Available: false, Active: true},
		{ID: 30, Online: true, Available: true, Active: true, Technical: true},
		{ID: 50, Online: true, Available: true, Active: true},
		{ID: 70, Online: true, Available: true, Active: true, FirstName: "Mg", LastName: "Name"},
		{ID: 80, Online: true, Available: true, Active: true},
		{ID: 90, Online: true, Available: true, Active: false},
		{ID: 110, Online: false, Available: true, Active: true},
	}
	r := crm.JoinRoster(users, mg)
	want := []bd.Manager{
		{ID: 10, FirstName: "Ann", LastName: "A", Status: bd.StatusFree, Online: true, Active: true},
		// Online in MG but not available for communication: offline.
		{ID: 20, FirstName: "Bob", Status: bd.StatusBusy, Online: false, Active: true},
		// Unknown status kept as is, never "free".
		{ID: 50, FirstName: "Away", Status: "vacation", Online: true, Active: true},
		// Names from MG when retailCRM has none.
		{ID: 70, FirstName: "Mg", LastName: "Name", Status: bd.StatusBreak, Online: true, Active: true},
		// Inactive in retailCRM.
		{ID: 80, FirstName: "Off", Status: bd.StatusFree, Online: true, Active: false},
		// Inactive in MG.
		{ID: 90, FirstName: "Zed", Status: bd.StatusFree, Online: true, Active: false},
		// Not listed by MG: kept, never eligible.
		{ID: 100, FirstName: "Ghost", Status: bd.StatusFree, Online: false, Active: false},
		{ID: 110, FirstName: "Blank", Status: "", Online: false, Active: true},
	}
	if !slices.Equal(r.Managers, want) {
		t.Fatalf("managers\n got %+v\nwant %+v", r.Managers, want)
	}
	wantNotes := []crm.RosterNote{
		{CRMUser: 3, Manager: 30, Reason: crm.TechnicalAccount},
		{CRMUser: 4, Manager: 0, Reason: crm.NoMGUser},
		{CRMUser: 5, Manager: 50, Reason: crm.UnknownStatus, Detail: `"vacation"`},
		{CRMUser: 6, Manager: 10, Reason: crm.DuplicateMGUser, Detail: "already used by crm user 1"},
		{CRMUser: 10, Manager: 100, Reason: crm.NotInMG},
		{CRMUser: 11, Manager: 110, Reason: crm.UnknownStatus, Detail: `""`},
	}
	if !slices.Equal(r.Notes, wantNotes) {
		t.Fatalf("notes\n got %v\nwant %v", r.Notes, wantNotes)
	}
	if s := wantNotes[2].String(); s != `crm user 5 (manager 50): unknown_status: "vacation"` {
		t.Fatalf("note string %q", s)
	}
	if len(crm.JoinRoster(nil, mg).Managers) != 0 {
		t.Fatal("no users, no managers")
	}
}
