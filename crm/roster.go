package crm

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	bd "github.com/botdistributor/botdistributor"
)

// MGUser is a MessageGateway user (Bot API GET /users) as the roster needs
// it. It is a plain struct so that this package does not depend on an MG
// client; the caller copies the fields over.
type MGUser struct {
	// ID is the MG user id (Bot API users.id).
	ID int64
	// Online is is_online: the user is connected now.
	Online bool
	// Available is available: the user is available for communication.
	Available bool
	// Active is is_active: false for deactivated users.
	Active bool
	// Technical is is_technical_account: a system account, never a manager.
	Technical bool
	FirstName string
	LastName  string
}

// NoteReason says why the roster left out or marked a retailCRM user.
type NoteReason string

// The roster notes.
const (
	// NoMGUser: the CRM user has no mgUserId (no access to chats); left out.
	NoMGUser NoteReason = "no_mg_user"
	// TechnicalAccount: the MG user is a technical account; left out.
	TechnicalAccount NoteReason = "technical_account"
	// DuplicateMGUser: another CRM user (with a lower id) already has this
	// mgUserId; left out.
	DuplicateMGUser NoteReason = "duplicate_mg_user"
	// NotInMG: MessageGateway did not list the user; kept with Active and
	// Online false, so never eligible.
	NotInMG NoteReason = "not_in_mg"
	// UnknownStatus: the CRM status is not free, busy, dinner or break (or
	// empty); kept with that status, which is never "free".
	UnknownStatus NoteReason = "unknown_status"
)

// RosterNote is one user the roster left out or marked, and why.
type RosterNote struct {
	// CRMUser is the retailCRM user id.
	CRMUser int
	// Manager is the MG user id; 0 when the user has none.
	Manager bd.ManagerID
	Reason  NoteReason
	// Detail adds the value concerned, e.g. the unknown status.
	Detail string
}

// String implements fmt.Stringer: "crm user 7 (manager 12): unknown_status: vacation".
func (n RosterNote) String() string {
	s := fmt.Sprintf("crm user %d (manager %d): %s", n.CRMUser, n.Manager, n.Reason)
	if n.Detail != "" {
		s += ": " + n.Detail
	}
	return s
}

// Roster is the account's managers, ready for distribution, and notes on
// the users it left out or marked.
type Roster struct {
	// Managers are ordered by ID.
	Managers []bd.Manager
	// Notes are ordered by CRM user id.
	Notes []RosterNote
}

// JoinRoster joins retailCRM users with MessageGateway users on
// users.mgUserId = MG users.id and returns the managers:
//
//   - ID is the MG user id (what dialog assignment takes);
//   - users without mgUserId, MG technical accounts and second users
//     claiming one mgUserId are left out (with a note);
//   - Active is the CRM user's active flag and MG's is_active; a user MG
//     did not list is kept inactive (note NotInMG), so pass every MG user,
//     not only online ones;
//   - Online is MG's is_online and available together: a user MG reports
//     as not available for communication counts as offline;
//   - Status is the CRM status, lower-cased; an unknown or empty one is
//     kept as is (note UnknownStatus) and, never being "free", makes the
//     manager unavailable in every availability mode that reads the status;
//   - names come from retailCRM, or from MG when retailCRM has none.
//
// Which of status and presence make a manager available is the account's
// availability mode (bd.Settings.Availability), applied by the distributor,
// not here. JoinRoster is a pure function.
func JoinRoster(users []User, mg []MGUser) Roster {
	byID := make(map[int64]MGUser, len(mg))
	for _, u := range mg {
		byID[u.ID] = u
	}
	sorted := slices.Clone(users)
	slices.SortStableFunc(sorted, func(a, b User) int { return a.ID - b.ID })

	var r Roster
	seen := make(map[int64]int, len(sorted))
	for _, u := range sorted {
		id := bd.ManagerID(u.MGUserID)
		note := func(reason NoteReason, detail string) {
			r.Notes = append(r.Notes, RosterNote{CRMUser: u.ID, Manager: id, Reason: reason, Detail: detail})
		}
		if u.MGUserID <= 0 {
			note(NoMGUser, "")
			continue
		}
		if first, dup := seen[u.MGUserID]; dup {
			note(DuplicateMGUser, fmt.Sprintf("already used by crm user %d", first))
			continue
		}
		m, inMG := byID[u.MGUserID]
		if inMG && m.Technical {
			note(TechnicalAccount, "")
			continue
		}
		seen[u.MGUserID] = u.ID
		status := strings.ToLower(strings.TrimSpace(u.Status))
		mgr := bd.Manager{
			ID:        id,
			FirstName: u.FirstName,
			LastName:  u.LastName,
			Status:    bd.ManagerStatus(status),
			Online:    inMG && m.Online && m.Available,
			Active:    u.Active && inMG && m.Active,
		}
		if mgr.FirstName == "" && mgr.LastName == "" {
			mgr.FirstName, mgr.LastName = m.FirstName, m.LastName
		}
		if !inMG {
			note(NotInMG, "")
		}
		if !mgr.Status.Valid() {
			note(UnknownStatus, quote(u.Status))
		}
		r.Managers = append(r.Managers, mgr)
	}
	slices.SortFunc(r.Managers, func(a, b bd.Manager) int { return cmp.Compare(a.ID, b.ID) })
	return r
}

// Roster reads the account's managers ([Client.Managers]) and joins them
// with mg, see [JoinRoster].
func (c *Client) Roster(ctx context.Context, mg []MGUser) (Roster, error) {
	users, err := c.Managers(ctx)
	if err != nil {
		return Roster{}, err
	}
	return JoinRoster(users, mg), nil
}
