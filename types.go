package botdistributor

import (
	"fmt"
	"strconv"
	"time"
)

// AccountID names one connected retailCRM account (usually its domain).
// Every stored record and every decision belongs to exactly one account.
type AccountID string

// DialogID is the MessageGateway id of a dialog.
type DialogID int64

// ChatID is the MessageGateway id of a chat; a chat holds a sequence of dialogs.
type ChatID int64

// ChannelID is the MessageGateway id of a channel (a connected messenger).
type ChannelID int64

// CustomerID is the MessageGateway id of a customer.
type CustomerID int64

// ManagerID is the MessageGateway user id of a manager: the id that
// PATCH /dialogs/{id}/assign takes as user_id.
type ManagerID int64

// BotID is the MessageGateway id of a bot.
type BotID int64

// String implements fmt.Stringer.
func (id DialogID) String() string { return strconv.FormatInt(int64(id), 10) }

// String implements fmt.Stringer.
func (id ManagerID) String() string { return strconv.FormatInt(int64(id), 10) }

// Customer is the person writing in a chat, as MessageGateway knows them.
type Customer struct {
	ID        CustomerID
	FirstName string
	LastName  string
	Phone     string
	Email     string
}

// Name is the customer's display name: first and last name, or whatever of
// them is known.
func (c Customer) Name() string { return joinName(c.FirstName, c.LastName) }

// Dialog is one conversation in a chat, from its opening to its closing.
type Dialog struct {
	Account  AccountID
	ID       DialogID
	Chat     ChatID
	Channel  ChannelID
	Customer Customer
	// OpenedAt is when the dialog opened; the waiting queue is ordered by it.
	OpenedAt time.Time
}

// ManagerStatus is a retailCRM user's work status.
type ManagerStatus string

// The retailCRM user statuses.
const (
	StatusFree   ManagerStatus = "free"
	StatusBusy   ManagerStatus = "busy"
	StatusDinner ManagerStatus = "dinner"
	StatusBreak  ManagerStatus = "break"
)

// Valid reports whether s is one of the retailCRM statuses.
func (s ManagerStatus) Valid() bool {
	switch s {
	case StatusFree, StatusBusy, StatusDinner, StatusBreak:
		return true
	}
	return false
}

// Manager is a person who can be responsible for dialogs: a retailCRM user
// joined with their MessageGateway user.
type Manager struct {
	ID        ManagerID
	FirstName string
	LastName  string
	// Status is the retailCRM work status.
	Status ManagerStatus
	// Online is MessageGateway's is_online: the manager is connected now.
	Online bool
	// Active is false for deactivated users; they are never eligible.
	Active bool
}

// Name is the manager's display name.
func (m Manager) Name() string { return joinName(m.FirstName, m.LastName) }

// Channel is a MessageGateway channel.
type Channel struct {
	ID   ChannelID
	Type string
	Name string
}

// ResponsibleKind tells whether a dialog's responsible is a manager or a bot.
type ResponsibleKind uint8

// The kinds of responsible.
const (
	// Nobody: the dialog has no responsible.
	Nobody ResponsibleKind = iota
	// ManagerResponsible: a manager (an MG user) is responsible.
	ManagerResponsible
	// BotResponsible: a bot is responsible.
	BotResponsible
)

// Responsible is who a dialog is assigned to. The zero value means nobody.
type Responsible struct {
	Kind ResponsibleKind
	// ID is the ManagerID or BotID, by Kind.
	ID int64
}

// ManagerOf returns the Responsible for manager m.
func ManagerOf(m ManagerID) Responsible { return Responsible{Kind: ManagerResponsible, ID: int64(m)} }

// BotOf returns the Responsible for bot b.
func BotOf(b BotID) Responsible { return Responsible{Kind: BotResponsible, ID: int64(b)} }

// IsZero reports whether nobody is responsible.
func (r Responsible) IsZero() bool { return r.Kind == Nobody }

// Manager returns the manager id and true when a manager is responsible.
func (r Responsible) Manager() (ManagerID, bool) {
	return ManagerID(r.ID), r.Kind == ManagerResponsible
}

// Bot returns the bot id and true when a bot is responsible.
func (r Responsible) Bot() (BotID, bool) {
	return BotID(r.ID), r.Kind == BotResponsible
}

// String implements fmt.Stringer: "manager 12", "bot 3" or "nobody".
func (r Responsible) String() string {
	switch r.Kind {
	case ManagerResponsible:
		return fmt.Sprintf("manager %d", r.ID)
	case BotResponsible:
		return fmt.Sprintf("bot %d", r.ID)
	}
	return "nobody"
}

// Situation names a moment at which the customer gets an automatic reply.
type Situation string

// The situations with an automatic reply. Every account must have a text for
// each of them (see [Settings.Validate]).
const (
	// DialogReceived: a new dialog was taken into distribution.
	DialogReceived Situation = "dialog_received"
	// ManagerAssigned: a manager became responsible for the dialog.
	ManagerAssigned Situation = "manager_assigned"
	// NoManagerOnline: no manager of the dialog's channel is available; it waits.
	NoManagerOnline Situation = "no_manager_online"
	// AllManagersBusy: every available manager is at capacity; it waits.
	AllManagersBusy Situation = "all_managers_busy"
	// OutsideWorkingHours: the account is closed now; it waits.
	OutsideWorkingHours Situation = "outside_working_hours"
)

// Situations lists every situation in a stable order.
func Situations() []Situation {
	return []Situation{DialogReceived, ManagerAssigned, NoManagerOnline, AllManagersBusy, OutsideWorkingHours}
}

func joinName(first, last string) string {
	switch {
	case first == "":
		return last
	case last == "":
		return first
	}
	return first + " " + last
}

// CustomerProfile is what retailCRM knows about a customer that routing
// uses: the customer's personal manager (retailCRM's customer.managerId,
// as the MG user id of that CRM user), the segments the customer is in
// (their codes) and the customer's tags.
type CustomerProfile struct {
	// CRMCustomer is the retailCRM customer id the profile was read from.
	CRMCustomer int64 `json:"crm_customer"`
	// Manager is the personal manager; zero for none, or for a CRM user
	// with no MG user.
	Manager  ManagerID `json:"manager,omitempty"`
	Segments []string  `json:"segments,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	// ReadAt is when the profile was read from retailCRM.
	ReadAt time.Time `json:"read_at"`
}
