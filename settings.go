package botdistributor

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/botdistributor/botdistributor/internal/replytext"
)

// AvailabilityMode says which signals make a manager available.
type AvailabilityMode string

// The availability modes of the original module.
const (
	// StatusAndOnline: the retailCRM status is "free" and the manager is online in MG.
	StatusAndOnline AvailabilityMode = "status_and_online"
	// StatusOnly: the retailCRM status is "free"; MG presence is ignored.
	StatusOnly AvailabilityMode = "status"
	// OnlineOnly: the manager is online in MG; the retailCRM status is ignored.
	OnlineOnly AvailabilityMode = "online"
)

// ReassignMode says which dialogs move away from a manager who stops being available.
type ReassignMode string

// The reassignment modes.
const (
	// ReassignOff keeps dialogs with their manager.
	ReassignOff ReassignMode = "off"
	// ReassignUncompleted moves every dialog whose last message is the customer's.
	ReassignUncompleted ReassignMode = "all_uncompleted"
	// ReassignNew moves only dialogs nobody has answered yet.
	ReassignNew ReassignMode = "only_new"
)

// Target is where a channel's dialogs go.
type Target string

// The channel rule targets.
const (
	// ToManagers distributes among managers.
	ToManagers Target = "managers"
	// ToBot hands every dialog to one bot.
	ToBot Target = "bot"
)

// ChannelRule says who receives the dialogs of a channel.
type ChannelRule struct {
	Target Target `json:"target"`
	// Managers narrows a ToManagers rule to these managers; empty means all
	// managers of the account's distribution.
	Managers []ManagerID `json:"managers,omitempty"`
	// Bot receives every dialog of a ToBot rule; it must have MG's
	// "responsible" role.
	Bot BotID `json:"bot,omitempty"`
	// Steps, when set, make a ToManagers rule escalate: a dialog is offered
	// to the first step's managers; when it has waited the step's Wait it
	// moves to the next step, and so on; the last step holds it until
	// someone takes it. Capacity, availability and working hours apply at
	// every step. A rule with steps takes no Managers of its own.
	Steps []Step `json:"steps,omitempty"`
}

// Step is one stage of an escalating channel rule.
type Step struct {
	// Group names the managers of the step, one of Settings.Groups; empty
	// means every manager of the distribution.
	Group string `json:"group,omitempty"`
	// Bot, when set, hands the dialog to this bot (which must have MG's
	// "responsible" role) instead of a group. A bot takes every dialog, so
	// a bot step is the last one.
	Bot BotID `json:"bot,omitempty"`
	// Wait is how long a dialog stays at this step while nobody of it can
	// take it; required (positive) for every step but the last, whose wait
	// never ends.
	Wait time.Duration `json:"wait,omitempty"`
}

// StepAt returns the index of the step a dialog that has waited waited is
// at: the first step whose waits, added up, exceed waited; the last step
// when they never do. It is 0 for a rule without steps.
func (r ChannelRule) StepAt(waited time.Duration) int {
	var sum time.Duration
	for i, st := range r.Steps {
		if i == len(r.Steps)-1 {
			return i
		}
		sum += st.Wait
		if waited < sum {
			return i
		}
	}
	return 0
}

// StepEnds returns how long after the start of a dialog's wait step i
// ends; false for the last step, which never ends.
func (r ChannelRule) StepEnds(i int) (time.Duration, bool) {
	if i < 0 || i >= len(r.Steps)-1 {
		return 0, false
	}
	var sum time.Duration
	for _, st := range r.Steps[:i+1] {
		sum += st.Wait
	}
	return sum, true
}

// Span is a time range within one day, in minutes after midnight: [Start, End).
type Span struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// WorkingHours is a weekly schedule in a time zone, with holidays. A zero
// WorkingHours means always open.
type WorkingHours struct {
	// TimeZone is an IANA name such as "Europe/Moscow"; empty means UTC.
	TimeZone string `json:"time_zone,omitempty"`
	// Week holds the open spans of each day, indexed by time.Weekday.
	// When every day is empty the schedule is always open (holidays aside).
	Week [7][]Span `json:"week,omitempty"`
	// Holidays are dates ("2006-01-02", in TimeZone) closed all day.
	Holidays []string `json:"holidays,omitempty"`
}

// IsZero reports whether the schedule has no spans and no holidays.
func (h WorkingHours) IsZero() bool { return h.Always() && len(h.Holidays) == 0 }

// Always reports whether the schedule has no spans at all (open every day,
// all day, holidays aside).
func (h WorkingHours) Always() bool {
	for _, d := range h.Week {
		if len(d) > 0 {
			return false
		}
	}
	return true
}

// Open reports whether t falls within the schedule. An unknown time zone is
// treated as UTC; [Settings.Validate] rejects it before it gets here.
func (h WorkingHours) Open(t time.Time) bool {
	if h.IsZero() {
		return true
	}
	t = t.In(location(h.TimeZone))
	if len(h.Holidays) > 0 && slices.Contains(h.Holidays, t.Format(time.DateOnly)) {
		return false
	}
	if h.Always() {
		return true
	}
	minute := t.Hour()*60 + t.Minute()
	for _, s := range h.Week[t.Weekday()] {
		if minute >= s.Start && minute < s.End {
			return true
		}
	}
	return false
}

// locations caches time zones by name: loading one reads the zone database.
var locations sync.Map // string -> *time.Location

func location(name string) *time.Location {
	if name == "" || name == "UTC" {
		return time.UTC
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	locations.Store(name, l)
	return l
}

func (h WorkingHours) validate(field string, add func(field, format string, args ...any)) {
	if h.TimeZone != "" {
		if _, err := time.LoadLocation(h.TimeZone); err != nil {
			add(field+".time_zone", "unknown time zone %q", h.TimeZone)
		}
	}
	for day, spans := range h.Week {
		for _, sp := range spans {
			if sp.Start < 0 || sp.End > 24*60 || sp.Start >= sp.End {
				add(field+"."+strings.ToLower(time.Weekday(day).String()), "span %d-%d must satisfy 0 <= start < end <= 1440", sp.Start, sp.End)
			}
		}
	}
	for _, d := range h.Holidays {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			add(field+".holidays", "%q is not a date like 2006-01-02", d)
		}
	}
}

func (h WorkingHours) clone() WorkingHours {
	for d := range h.Week {
		h.Week[d] = slices.Clone(h.Week[d])
	}
	h.Holidays = slices.Clone(h.Holidays)
	return h
}

// DateRange is a range of whole days, both ends included, as "2006-01-02"
// dates in the account's time zone.
type DateRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Contains reports whether the day of t (in loc) is within the range.
func (r DateRange) Contains(t time.Time, loc *time.Location) bool {
	day := t.In(loc).Format(time.DateOnly)
	return r.From <= day && day <= r.To
}

// Settings is everything an account configures. Settings are validated as a
// whole with [Settings.Validate]; a store keeps the last valid value.
type Settings struct {
	// Active switches the account's distribution on. An account that is not
	// active is not distributed: its events are accepted and nothing is
	// lost, but no dialog is assigned or moved and no reply is sent; the
	// dialogs that open meanwhile wait and are distributed once it is on.
	// The zero value is off, so that nothing happens before an account's
	// settings are saved on purpose.
	Active bool `json:"active"`
	// Managers take part in the distribution. Empty means nobody: dialogs wait.
	Managers []ManagerID `json:"managers"`
	// DefaultCapacity is the most open dialogs a manager may hold.
	DefaultCapacity int `json:"default_capacity"`
	// Capacity overrides DefaultCapacity per manager.
	Capacity map[ManagerID]int `json:"capacity,omitempty"`
	// Strategy names the strategy that picks among eligible managers; empty
	// means the distributor's default.
	Strategy string `json:"strategy,omitempty"`
	// Availability says which signals make a manager available.
	Availability AvailabilityMode `json:"availability"`
	// Reassign says which dialogs move when a manager stops being available.
	Reassign ReassignMode `json:"reassign"`
	// ReassignAfter, when positive, also moves a dialog nobody answered
	// within this long.
	ReassignAfter time.Duration `json:"reassign_after,omitempty"`
	// AutoBind links the customer to an existing retailCRM customer.
	AutoBind bool `json:"auto_bind"`
	// AutoCreate creates a retailCRM customer when none matches.
	AutoCreate bool `json:"auto_create"`
	// Replies holds the text sent in each situation; all are required.
	// Texts may use the placeholders {customer}, {customer_first_name},
	// {manager} and {manager_first_name}, and a part in square brackets is
	// left out when its placeholder has no value (see reply.Vars); a text
	// that cannot be rendered is refused. Texts in the earlier
	// text/template form ({{.Manager}}) are still accepted and rendered.
	// A replier that renders texts its own way checks them itself
	// (reply.TextChecker, used by distributor.CheckSettings).
	Replies map[Situation]string `json:"replies"`
	// Hours is the account's working schedule.
	Hours WorkingHours `json:"hours"`
	// Shifts are managers' own schedules: outside their shift a manager
	// takes no new dialogs. A manager without a shift follows Hours.
	Shifts map[ManagerID]WorkingHours `json:"shifts,omitempty"`
	// Leave lists days a manager is away (vacation, sick leave): no new
	// dialogs then. Dates are in the account's time zone.
	Leave map[ManagerID][]DateRange `json:"leave,omitempty"`
	// Sticky sends a returning customer to their last manager when that
	// manager may take the dialog; otherwise the strategy decides.
	Sticky bool `json:"sticky,omitempty"`
	// ReturningFirst puts returning customers ahead of new ones in the
	// waiting queue (oldest first within each group).
	ReturningFirst bool `json:"returning_first,omitempty"`
	// PresenceGrace is how long a manager may be unavailable (an offline
	// flap, a short break) before their dialogs are reassigned.
	PresenceGrace time.Duration `json:"presence_grace,omitempty"`
	// Channels holds per-channel rules; a channel without one uses DefaultRule.
	Channels map[ChannelID]ChannelRule `json:"channels,omitempty"`
	// DefaultRule applies to channels without a rule of their own. The zero
	// value means managers.
	DefaultRule ChannelRule `json:"default_rule"`
	// Groups are named groups of managers of the distribution, which the
	// steps of channel rules draw from (e.g. "sales": [7, 9]).
	Groups map[string][]ManagerID `json:"groups,omitempty"`
	// PersonalManager sends the dialog of a customer whose retailCRM card
	// names a manager to that manager when they may take it; otherwise the
	// dialog waits for them at most PersonalWait and then follows the
	// channel's rule.
	PersonalManager bool `json:"personal_manager,omitempty"`
	// PersonalWait is the longest a dialog waits for its personal manager;
	// zero means DefaultPersonalWait.
	PersonalWait time.Duration `json:"personal_wait,omitempty"`
	// PrioritySegments and PriorityTags put the customers in one of these
	// retailCRM segments (by code) or with one of these tags ahead of the
	// others in the queue (oldest first within each group; returning
	// customers ahead of new ones within each, with ReturningFirst).
	PrioritySegments []string `json:"priority_segments,omitempty"`
	PriorityTags     []string `json:"priority_tags,omitempty"`
	// WaitAlert, when positive, raises an alert when the longest wait of
	// the account's queue exceeds it: once per breach, in the log, the
	// metrics and, when AlertWebhook is set, as a signed POST to it.
	WaitAlert time.Duration `json:"wait_alert,omitempty"`
	// AlertWebhook is the http(s) URL an alert is posted to.
	AlertWebhook string `json:"alert_webhook,omitempty"`
	// AlertSecret signs the webhook's body (HMAC-SHA256, hex, in the
	// X-Botdistributor-Signature header); required with AlertWebhook.
	AlertSecret string `json:"alert_secret,omitempty"`
}

// DefaultPersonalWait is how long a dialog waits for its personal manager
// when Settings.PersonalWait is zero.
const DefaultPersonalWait = 2 * time.Minute

// PersonalWaitOrDefault returns PersonalWait, or DefaultPersonalWait when it is zero.
func (s *Settings) PersonalWaitOrDefault() time.Duration {
	if s.PersonalWait > 0 {
		return s.PersonalWait
	}
	return DefaultPersonalWait
}

// UsesProfiles reports whether routing needs customers' retailCRM
// profiles: a personal manager or priority segments or tags are set.
func (s *Settings) UsesProfiles() bool {
	return s.PersonalManager || len(s.PrioritySegments) > 0 || len(s.PriorityTags) > 0
}

// Priority returns the queue priority of a customer in the given retailCRM
// segments and with the given tags: 1 when one of them is among
// PrioritySegments or PriorityTags, else 0.
func (s *Settings) Priority(segments, tags []string) int {
	for _, x := range segments {
		if slices.Contains(s.PrioritySegments, x) {
			return 1
		}
	}
	for _, x := range tags {
		if slices.Contains(s.PriorityTags, x) {
			return 1
		}
	}
	return 0
}

// UnmarshalJSON implements json.Unmarshaler. Settings stored before the
// field Active existed were in force, so a value without "active" is
// active: upgrading never switches an account off. Settings marshaled now
// always carry "active".
func (s *Settings) UnmarshalJSON(b []byte) error {
	type plain Settings // without this method
	p := plain{Active: true}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = Settings(p)
	return nil
}

// CapacityOf returns the most open dialogs manager m may hold.
func (s *Settings) CapacityOf(m ManagerID) int {
	if c, ok := s.Capacity[m]; ok {
		return c
	}
	return s.DefaultCapacity
}

// RuleFor returns the rule of channel c.
func (s *Settings) RuleFor(c ChannelID) ChannelRule {
	if r, ok := s.Channels[c]; ok {
		return r
	}
	return s.DefaultRule
}

// Problem is one thing wrong with a Settings value.
type Problem struct {
	// Field names the setting, e.g. "replies.no_manager_online" or "channels.7.bot".
	Field   string
	Message string
}

// SettingsError lists everything wrong with a Settings value at once.
type SettingsError struct {
	Problems []Problem
}

// Error implements error: "settings: replies.x: is empty; default_capacity: ...".
func (e *SettingsError) Error() string {
	var b strings.Builder
	b.WriteString("settings: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Field)
		b.WriteString(": ")
		b.WriteString(p.Message)
	}
	return b.String()
}

// EmptyReplies returns the situations whose reply text is missing.
func (e *SettingsError) EmptyReplies() []Situation {
	var out []Situation
	for _, p := range e.Problems {
		if s, ok := strings.CutPrefix(p.Field, "replies."); ok && p.Message == "is empty" {
			out = append(out, Situation(s))
		}
	}
	return out
}

// Validate checks the settings as a whole and returns a *SettingsError naming
// every problem, or nil. Empty reply texts are each named, and so is every
// text that cannot be rendered by the built-in template replier (an unknown
// placeholder, an unclosed brace, a text that renders to nothing), with
// what is wrong. It is ValidateWith(nil).
func (s *Settings) Validate() error { return s.ValidateWith(nil) }

// ValidateWith is [Settings.Validate] with checkText in place of the
// built-in check of each reply text (the placeholders of package reply's
// template replier): every non-empty text of a known situation goes
// through checkText, and an error it returns becomes the Problem of that
// text's field ("replies.<situation>") with the error's text as Message.
// Empty texts and unknown situations are named as by Validate, without
// calling checkText. A nil checkText means the built-in check.
//
// distributor.CheckSettings calls it with the CheckText of a Replier that
// implements reply.TextChecker.
func (s *Settings) ValidateWith(checkText func(sit Situation, text string) error) error {
	if checkText == nil {
		checkText = func(_ Situation, text string) error { return replytext.Validate(text) }
	}
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	for _, sit := range Situations() {
		switch text := s.Replies[sit]; {
		case strings.TrimSpace(text) == "":
			add("replies."+string(sit), "is empty")
		default:
			if err := checkText(sit, text); err != nil {
				ps = append(ps, Problem{Field: "replies." + string(sit), Message: err.Error()})
			}
		}
	}
	for sit := range s.Replies {
		if !slices.Contains(Situations(), sit) {
			add("replies."+string(sit), "is not a known situation")
		}
	}
	if s.DefaultCapacity < 1 {
		add("default_capacity", "must be at least 1, got %d", s.DefaultCapacity)
	}
	seen := make(map[ManagerID]bool, len(s.Managers))
	for _, m := range s.Managers {
		if m <= 0 {
			add("managers", "manager id must be positive, got %d", m)
		}
		if seen[m] {
			add("managers", "manager %d is listed twice", m)
		}
		seen[m] = true
	}
	for _, m := range slices.Sorted(maps.Keys(s.Capacity)) {
		if c := s.Capacity[m]; c < 0 {
			add(fmt.Sprintf("capacity.%d", m), "must not be negative, got %d", c)
		}
		if !seen[m] {
			add(fmt.Sprintf("capacity.%d", m), "manager %d is not in the distribution", m)
		}
	}
	switch s.Availability {
	case StatusAndOnline, StatusOnly, OnlineOnly:
	default:
		add("availability", "unknown mode %q (want %q, %q or %q)", s.Availability, StatusAndOnline, StatusOnly, OnlineOnly)
	}
	switch s.Reassign {
	case ReassignOff, ReassignUncompleted, ReassignNew:
	default:
		add("reassign", "unknown mode %q (want %q, %q or %q)", s.Reassign, ReassignOff, ReassignUncompleted, ReassignNew)
	}
	if s.ReassignAfter < 0 {
		add("reassign_after", "must not be negative, got %s", s.ReassignAfter)
	}
	if s.AutoCreate && !s.AutoBind {
		add("auto_create", "needs auto_bind: a customer is only created when binding finds none")
	}
	s.Hours.validate("hours", add)
	for _, m := range slices.Sorted(maps.Keys(s.Shifts)) {
		if !seen[m] {
			add(fmt.Sprintf("shifts.%d", m), "manager %d is not in the distribution", m)
		}
		s.Shifts[m].validate(fmt.Sprintf("shifts.%d", m), add)
	}
	for _, m := range slices.Sorted(maps.Keys(s.Leave)) {
		field := fmt.Sprintf("leave.%d", m)
		if !seen[m] {
			add(field, "manager %d is not in the distribution", m)
		}
		for _, r := range s.Leave[m] {
			from, err1 := time.Parse(time.DateOnly, r.From)
			to, err2 := time.Parse(time.DateOnly, r.To)
			switch {
			case err1 != nil || err2 != nil:
				add(field, "range %q to %q must be dates like 2006-01-02", r.From, r.To)
			case to.Before(from):
				add(field, "range %s to %s ends before it starts", r.From, r.To)
			}
		}
	}
	if s.PresenceGrace < 0 {
		add("presence_grace", "must not be negative, got %s", s.PresenceGrace)
	}
	checkRule := func(field string, r ChannelRule) {
		switch r.Target {
		case ToManagers, "":
			if r.Bot != 0 {
				add(field+".bot", "a managers rule takes no bot")
			}
			for _, m := range r.Managers {
				if !seen[m] {
					add(field+".managers", "manager %d is not in the distribution", m)
				}
			}
			if len(r.Steps) > 0 && len(r.Managers) > 0 {
				add(field+".managers", "a rule with steps takes its managers from the steps' groups")
			}
			for i, st := range r.Steps {
				sf := fmt.Sprintf("%s.steps.%d", field, i)
				if _, ok := s.Groups[st.Group]; st.Group != "" && !ok {
					add(sf+".group", "unknown group %q", st.Group)
				}
				switch {
				case st.Bot < 0:
					add(sf+".bot", "bot id must be positive, got %d", st.Bot)
				case st.Bot > 0 && st.Group != "":
					add(sf+".bot", "a step goes to a group or to a bot, not both")
				case st.Bot > 0 && i < len(r.Steps)-1:
					add(sf+".bot", "a bot step must be the last: the bot takes every dialog")
				}
				switch {
				case st.Wait < 0:
					add(sf+".wait", "must not be negative, got %s", st.Wait)
				case st.Wait == 0 && i < len(r.Steps)-1:
					add(sf+".wait", "every step but the last needs a wait")
				}
			}
		case ToBot:
			if r.Bot <= 0 {
				add(field+".bot", "a bot rule needs a bot")
			}
			if len(r.Managers) > 0 {
				add(field+".managers", "a bot rule takes no managers")
			}
			if len(r.Steps) > 0 {
				add(field+".steps", "a bot rule takes no steps")
			}
		default:
			add(field+".target", "unknown target %q (want %q or %q)", r.Target, ToManagers, ToBot)
		}
	}
	for _, g := range slices.Sorted(maps.Keys(s.Groups)) {
		field := "groups." + g
		if strings.TrimSpace(g) == "" || strings.ContainsAny(g, ".\n") {
			add(field, "a group needs a name without dots or line breaks")
		}
		if len(s.Groups[g]) == 0 {
			add(field, "group %q has no managers", g)
		}
		for _, m := range s.Groups[g] {
			if !seen[m] {
				add(field, "manager %d is not in the distribution", m)
			}
		}
	}
	if s.PersonalWait < 0 {
		add("personal_wait", "must not be negative, got %s", s.PersonalWait)
	}
	for _, x := range s.PrioritySegments {
		if strings.TrimSpace(x) == "" {
			add("priority_segments", "a segment code is empty")
		}
	}
	for _, x := range s.PriorityTags {
		if strings.TrimSpace(x) == "" {
			add("priority_tags", "a tag is empty")
		}
	}
	if s.WaitAlert < 0 {
		add("wait_alert", "must not be negative, got %s", s.WaitAlert)
	}
	if s.AlertWebhook != "" {
		if u, err := url.Parse(s.AlertWebhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("alert_webhook", "must be an http or https URL, got %q", s.AlertWebhook)
		}
		if s.AlertSecret == "" {
			add("alert_secret", "a webhook needs a secret to sign its body")
		}
	}
	checkRule("default_rule", s.DefaultRule)
	for _, c := range slices.Sorted(maps.Keys(s.Channels)) {
		checkRule(fmt.Sprintf("channels.%d", c), s.Channels[c])
	}
	if len(ps) == 0 {
		return nil
	}
	return &SettingsError{Problems: ps}
}

// Clone returns a deep copy, so a caller may change it without touching the original.
func (s Settings) Clone() Settings {
	s.Managers = slices.Clone(s.Managers)
	s.Capacity = maps.Clone(s.Capacity)
	s.Replies = maps.Clone(s.Replies)
	s.Hours = s.Hours.clone()
	if s.Shifts != nil {
		shifts := make(map[ManagerID]WorkingHours, len(s.Shifts))
		for m, h := range s.Shifts {
			shifts[m] = h.clone()
		}
		s.Shifts = shifts
	}
	if s.Leave != nil {
		leave := make(map[ManagerID][]DateRange, len(s.Leave))
		for m, r := range s.Leave {
			leave[m] = slices.Clone(r)
		}
		s.Leave = leave
	}
	if s.Channels != nil {
		ch := make(map[ChannelID]ChannelRule, len(s.Channels))
		for k, r := range s.Channels {
			r.Managers = slices.Clone(r.Managers)
			r.Steps = slices.Clone(r.Steps)
			ch[k] = r
		}
		s.Channels = ch
	}
	s.DefaultRule.Managers = slices.Clone(s.DefaultRule.Managers)
	s.DefaultRule.Steps = slices.Clone(s.DefaultRule.Steps)
	if s.Groups != nil {
		g := make(map[string][]ManagerID, len(s.Groups))
		for k, v := range s.Groups {
			g[k] = slices.Clone(v)
		}
		s.Groups = g
	}
	s.PrioritySegments = slices.Clone(s.PrioritySegments)
	s.PriorityTags = slices.Clone(s.PriorityTags)
	return s
}

// Location returns the schedule's time zone (UTC when empty or unknown).
func (h WorkingHours) Location() *time.Location { return location(h.TimeZone) }
