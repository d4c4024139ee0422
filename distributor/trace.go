package distributor

import (
	"fmt"
	"slices"
	"strings"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/strategy"
)

// Filter names the rule that removed a manager from a decision.
type Filter string

// The filters, in the order they apply.
const (
	// FilterChannel: the channel's rule names other managers.
	FilterChannel Filter = "not_in_channel"
	// FilterRoster: the manager is in the settings but not in the roster.
	FilterRoster Filter = "not_in_roster"
	// FilterInactive: the user is deactivated.
	FilterInactive Filter = "inactive"
	// FilterOffline: the manager is offline in MessageGateway.
	FilterOffline Filter = "offline"
	// FilterStatus: the retailCRM status is not "free".
	FilterStatus Filter = "status"
	// FilterHours: outside working hours.
	FilterHours Filter = "outside_hours"
	// FilterLeave: the manager is on leave today.
	FilterLeave Filter = "on_leave"
	// FilterLeft: the dialog is being reassigned away from this manager.
	FilterLeft Filter = "left"
	// FilterCapacity: the manager holds as many open dialogs as allowed.
	FilterCapacity Filter = "at_capacity"
)

// Removal says why one manager could not take the dialog.
type Removal struct {
	Manager bd.ManagerID
	Filter  Filter
	Detail  string
	// Open and Capacity are the manager's load, for FilterCapacity.
	Open, Capacity int
}

// AtStep returns the rule's step the dialog is at; false for a rule
// without steps.
func (t Trace) AtStep() (bd.Step, bool) {
	if t.Step < 0 || t.Step >= len(t.Rule.Steps) {
		return bd.Step{}, false
	}
	return t.Rule.Steps[t.Step], true
}

// groupName names a step's group in a trace: "" is everyone.
func groupName(g string) string {
	if g == "" {
		return "everyone in the distribution"
	}
	return "group " + g
}

// stepName names a step's managers or bot in a trace.
func stepName(st bd.Step) string {
	if st.Bot != 0 {
		return fmt.Sprintf("bot %d", st.Bot)
	}
	return groupName(st.Group)
}

// thenWho names who a dialog goes to once its personal wait is over.
func (t Trace) thenWho() string {
	if len(t.Rule.Steps) > 0 {
		return stepName(t.Rule.Steps[0])
	}
	return "the channel's rule"
}

// String explains the removal, e.g. "at_capacity (5 of 5 open)".
func (r Removal) String() string {
	if r.Filter == FilterCapacity && r.Detail == "" {
		return fmt.Sprintf("%s (%d of %d open)", r.Filter, r.Open, r.Capacity)
	}
	return fmt.Sprintf("%s (%s)", r.Filter, r.Detail)
}

// Outcome is what a decision did with the dialog.
type Outcome string

// The outcomes.
const (
	// OutcomeAssigned: a manager became responsible.
	OutcomeAssigned Outcome = "assigned"
	// OutcomeBot: the channel's bot became responsible.
	OutcomeBot Outcome = "bot"
	// OutcomeQueued: the dialog waits; Situation says why.
	OutcomeQueued Outcome = "queued"
	// OutcomeReassigned: the dialog moved from Reassigned to Responsible.
	OutcomeReassigned Outcome = "reassigned"
	// OutcomeStays: a reassignment found nobody to take the dialog; it stays
	// with its manager and is tried again on the next sweep.
	OutcomeStays Outcome = "stays"
	// OutcomeClosed: the dialog closed before it could be assigned.
	OutcomeClosed Outcome = "closed"
	// OutcomeAlreadyAssigned: the dialog had a responsible already
	// (e.g. another process assigned it first); nothing was done.
	OutcomeAlreadyAssigned Outcome = "already_assigned"
)

// Trace explains one decision: who was removed by which rule, who remained,
// what the strategy chose and why, and what happened.
type Trace struct {
	Account bd.AccountID
	Dialog  bd.DialogID
	Channel bd.ChannelID
	At      time.Time
	// DryRun is true for traces from Decide, which act on nothing.
	DryRun bool
	// FromQueue is true when the dialog was taken from the waiting queue.
	FromQueue bool
	// Reassigned is the manager the dialog is taken from, for reassignments;
	// Why says what triggered it.
	Reassigned bd.ManagerID
	Why        string
	// Rule is the channel rule that applied; Pool names where it came from.
	Rule bd.ChannelRule
	Pool string
	// Step is the index of the rule's step the dialog is at, for a rule
	// with steps (see bd.ChannelRule.Steps and Trace.AtStep), and
	// NextStepIn how long until the dialog moves to the next step (0 at
	// the last step).
	Step       int
	NextStepIn time.Duration
	// Personal is the customer's personal manager from retailCRM, when
	// Settings.PersonalManager is on and the card names one. PersonalWait
	// is how much longer the dialog waits for them when they cannot take
	// it now (0 once the wait is over: the channel's rule applies).
	// Profile says how the customer's retailCRM card was read: "cached",
	// "read", "timed out" (routed by the rule, the read goes on in the
	// background), "skipped" (retailCRM busy with other reads: routed by
	// the rule at once, the card read in the background while the backlog
	// allows), "failed", "none" (no retailCRM customer matches).
	Personal     bd.ManagerID
	PersonalWait time.Duration
	Profile      string
	// Removed lists the managers who could not take the dialog, by manager id.
	Removed []Removal
	// LastManager is the returning customer's last manager, or zero.
	LastManager bd.ManagerID
	// Priority is the queue priority of a queued dialog: 2 for a priority
	// customer (Settings.PrioritySegments, PriorityTags), plus 1 for a
	// returning one with Settings.ReturningFirst; higher waits ahead.
	Priority int
	// PriorityCustomer is set when the customer's retailCRM profile puts
	// them in a priority segment or gives them a priority tag.
	PriorityCustomer bool
	// Candidates are the managers the strategy chose among. Traces from
	// Decide hold them all; recorded traces (Recent, Hooks.Decision) keep
	// at most the first 16 by manager id and the chosen one. A pool of 64
	// managers or more with a strategy.Ordered strategy is decided over
	// its first 8 managers with room in the strategy's order (and the
	// customer's last manager): then those are the candidates, and
	// Removed lists only the managers read, beside the pool's own
	// removals. (Whenever a dialog waits, every manager was read.)
	Candidates []strategy.Candidate
	// CandidateCount is how many candidates there were.
	CandidateCount int
	// Strategy is the strategy's name in the settings, or "default".
	Strategy string
	// Choice is the strategy's answer, when it was asked.
	Choice strategy.Choice
	// Retries counts candidates lost to concurrent assignments before one
	// was reserved.
	Retries int
	// Passed are candidates the strategy chose while another assignment to
	// them was in flight (in another worker or process): they were passed
	// over for the next choice rather than waited for.
	Passed  []bd.ManagerID
	Outcome Outcome
	// Responsible is who got the dialog (assigned, bot, already assigned).
	Responsible bd.Responsible
	// Situation is the reply situation of a queued dialog.
	Situation bd.Situation

	buf *[]strategy.Candidate // the pooled buffer Candidates lives in
	// pool is the pool the decision drew from; profile the customer's
	// retailCRM profile, when read.
	pool    *pool
	profile bd.CustomerProfile
	// left are the managers a dialog being moved left: a personal manager
	// among them is not waited for.
	left []bd.ManagerID
	// waiting is the account's queue length when waitingRead: read with
	// the loads, where the store can.
	waiting     int
	waitingRead bool
	// greet is set when the dialog is new to distribution: assigned to a
	// manager, it is greeted in the job of the "manager assigned" reply.
	greet bool
	// refused is set when MG refused the assignment and the dialog waits
	// again; slowDown when MG asked for a pause before the next request
	// (a rate limit).
	refused, slowDown bool
	// partial is set when Candidates are the head of the pool's index, not
	// the whole pool (see index); scan asks decide to read the whole pool.
	partial, scan bool
}

// keptCandidates bounds the candidates a recorded trace keeps.
const keptCandidates = 16

// summary returns a copy of t fit to keep: its candidates copied out of the
// pooled buffer into dst (appending), at most keptCandidates of them plus
// the chosen one.
func (t Trace) summary(dst []strategy.Candidate) Trace {
	t.buf = nil
	t.CandidateCount = len(t.Candidates)
	cs := t.Candidates
	if len(cs) > keptCandidates {
		kept := append(dst, cs[:keptCandidates]...)
		if i := slices.IndexFunc(cs, func(c strategy.Candidate) bool { return c.Manager == t.Choice.Manager }); i >= keptCandidates {
			kept = append(kept, cs[i])
		}
		t.Candidates = kept
	} else {
		t.Candidates = append(dst, cs...)
	}
	t.Removed = slices.Clip(t.Removed)
	return t
}

// release returns the trace's candidate buffer to the pool.
func (t *Trace) release() {
	if t.buf != nil {
		clear(*t.buf)
		*t.buf = (*t.buf)[:0]
		candidateBuffers.Put(t.buf)
		t.buf = nil
	}
	t.Candidates = nil
}

// RemovedBy returns the managers removed by filter f.
func (t *Trace) RemovedBy(f Filter) []bd.ManagerID {
	var out []bd.ManagerID
	for _, r := range t.Removed {
		if r.Filter == f {
			out = append(out, r.Manager)
		}
	}
	return out
}

// String explains the decision in a few lines of plain text.
func (t Trace) String() string {
	var b strings.Builder
	mode := ""
	if t.DryRun {
		mode = " (dry run)"
	}
	fmt.Fprintf(&b, "dialog %d of %s on channel %d at %s%s: %s", t.Dialog, t.Account, t.Channel, t.At.Format(time.RFC3339), mode, t.Outcome)
	switch t.Outcome {
	case OutcomeAssigned, OutcomeBot, OutcomeAlreadyAssigned:
		fmt.Fprintf(&b, " to %s", t.Responsible)
	case OutcomeReassigned:
		fmt.Fprintf(&b, " from manager %d to %s (%s)", t.Reassigned, t.Responsible, t.Why)
	case OutcomeStays:
		fmt.Fprintf(&b, " with manager %d: nobody else can take it (%s)", t.Reassigned, t.Why)
	case OutcomeQueued:
		fmt.Fprintf(&b, " (%s)", t.Situation)
	}
	if t.LastManager != 0 {
		fmt.Fprintf(&b, "\n  returning customer, last manager %d", t.LastManager)
	}
	if t.Outcome == OutcomeQueued && t.Priority != 0 {
		fmt.Fprintf(&b, "\n  queue priority %d", t.Priority)
	}
	if t.Personal != 0 {
		switch {
		case t.Choice.Manager == t.Personal:
			fmt.Fprintf(&b, "\n  personal manager %d in retailCRM takes it", t.Personal)
		case t.PersonalWait > 0:
			fmt.Fprintf(&b, "\n  personal manager %d cannot take it now; waiting up to %s more for them, then %s", t.Personal, t.PersonalWait, t.thenWho())
		default:
			fmt.Fprintf(&b, "\n  personal manager %d cannot take it; the channel's rule applies", t.Personal)
		}
	}
	if t.Profile != "" {
		fmt.Fprintf(&b, "\n  retailCRM profile: %s", t.Profile)
	}
	if n := len(t.Rule.Steps); n > 0 && t.Step < n && t.PersonalWait == 0 {
		fmt.Fprintf(&b, "\n  step %d of %d (%s)", t.Step+1, n, stepName(t.Rule.Steps[t.Step]))
		if t.NextStepIn > 0 {
			fmt.Fprintf(&b, ", next step (%s) in %s", stepName(t.Rule.Steps[t.Step+1]), t.NextStepIn)
		}
	}
	if t.Pool != "" {
		fmt.Fprintf(&b, "\n  managers from: %s", t.Pool)
	}
	for _, r := range t.Removed {
		fmt.Fprintf(&b, "\n  removed manager %d: %s", r.Manager, r)
	}
	if len(t.Candidates) > 0 {
		fmt.Fprintf(&b, "\n  candidates:")
		for _, c := range t.Candidates {
			fmt.Fprintf(&b, " %d (%d/%d)", c.Manager, c.Open, c.Capacity)
		}
		if t.CandidateCount > len(t.Candidates) {
			fmt.Fprintf(&b, " and %d more", t.CandidateCount-len(t.Candidates))
		}
	}
	if t.Choice.Manager != 0 {
		fmt.Fprintf(&b, "\n  %s strategy chose manager %d: %s", t.Strategy, t.Choice.Manager, t.Choice.Reason)
	}
	if t.Retries > 0 {
		fmt.Fprintf(&b, "\n  %d candidate(s) filled up concurrently before the slot was reserved", t.Retries)
	}
	if len(t.Passed) > 0 {
		fmt.Fprintf(&b, "\n  passed over %v: another dialog was being assigned to them at that instant", t.Passed)
	}
	return b.String()
}
