package web

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	bd "github.com/botdistributor/botdistributor"
)

// Target choices of a channel in the form: no rule of its own, managers,
// or a bot.
const (
	targetDefault = "default"
)

// channelState is one channel's rule (or the default rule) as the form
// holds it.
type channelState struct {
	Target   string // targetDefault, "managers" or "bot"
	Managers map[bd.ManagerID]bool
	Bot      string
	Steps    []stepState
}

// stepState is one escalation step as the form holds it: a group ("" for
// everyone in the distribution, botStepPrefix and an id for a bot) and a
// wait in Unit.
type stepState struct {
	Group string
	Wait  string
	Unit  string // unitSeconds or unitMinutes
}

// botStepPrefix marks a bot in a step's group select: "bot:7".
const botStepPrefix = "bot:"

// stepBot reads the bot of a step's group select value; ok is false when
// the value names no bot.
func stepBot(group string) (bd.BotID, bool) {
	rest, ok := strings.CutPrefix(group, botStepPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return bd.BotID(id), true
}

// The units of a step's wait.
const (
	unitSeconds = "s"
	unitMinutes = "min"
)

// groupState is one named group of managers as the form holds it. Was is
// the name the group had when the page was shown, so that renaming a group
// renames it in the steps too.
type groupState struct {
	Name, Was string
	Managers  map[bd.ManagerID]bool
}

// formState is the settings form as text, exactly as shown or submitted,
// so that a refused form comes back with what the user typed.
type formState struct {
	Active           bool
	Managers         map[bd.ManagerID]bool
	Capacity         map[bd.ManagerID]string
	DefaultCapacity  string
	Strategy         string
	Availability     string
	Reassign         string
	ReassignAfter    string // minutes
	AutoBind         bool
	AutoCreate       bool
	Replies          map[bd.Situation]string
	HoursOn          bool
	TimeZone         string
	Days             [7]string // spans per weekday, time.Weekday order
	Holidays         string
	Channels         map[bd.ChannelID]channelState
	PresenceGrace    string // seconds
	Sticky           bool
	DefaultRule      channelState
	Groups           []groupState
	PersonalManager  bool
	PersonalWait     string // minutes; empty: the default
	PrioritySegments string // comma-separated
	PriorityTags     string // comma-separated
	WaitAlert        string // minutes; empty: no alert
	AlertWebhook     string
	// AlertSecret is a secret typed into the form, never the stored one:
	// the page does not show secrets. Empty keeps the stored secret,
	// which AlertSecretSet says exists.
	AlertSecret    string
	AlertSecretSet bool
	// Edited is set when an edit button changed the form: nothing is
	// saved yet.
	Edited bool
}

// stateFromSettings shows settings in the form.
func stateFromSettings(s bd.Settings) formState {
	f := formState{
		Active:           s.Active,
		Managers:         make(map[bd.ManagerID]bool, len(s.Managers)),
		Capacity:         make(map[bd.ManagerID]string, len(s.Capacity)),
		DefaultCapacity:  strconv.Itoa(s.DefaultCapacity),
		Strategy:         s.Strategy,
		Availability:     string(s.Availability),
		Reassign:         string(s.Reassign),
		AutoBind:         s.AutoBind,
		AutoCreate:       s.AutoCreate,
		Replies:          make(map[bd.Situation]string, len(s.Replies)),
		HoursOn:          !s.Hours.Always(),
		TimeZone:         s.Hours.TimeZone,
		Holidays:         strings.Join(s.Hours.Holidays, ", "),
		Channels:         make(map[bd.ChannelID]channelState, len(s.Channels)),
		Sticky:           s.Sticky,
		DefaultRule:      ruleState(s.DefaultRule),
		PersonalManager:  s.PersonalManager,
		PrioritySegments: strings.Join(s.PrioritySegments, ", "),
		PriorityTags:     strings.Join(s.PriorityTags, ", "),
		AlertWebhook:     s.AlertWebhook,
		AlertSecretSet:   s.AlertSecret != "",
	}
	if s.PersonalWait > 0 {
		f.PersonalWait = formatMinutes(s.PersonalWait)
	}
	if s.WaitAlert > 0 {
		f.WaitAlert = formatMinutes(s.WaitAlert)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Groups)) {
		g := groupState{Name: name, Was: name, Managers: make(map[bd.ManagerID]bool, len(s.Groups[name]))}
		for _, m := range s.Groups[name] {
			g.Managers[m] = true
		}
		f.Groups = append(f.Groups, g)
	}
	for _, m := range s.Managers {
		f.Managers[m] = true
	}
	for m, c := range s.Capacity {
		f.Capacity[m] = strconv.Itoa(c)
	}
	if s.ReassignAfter > 0 {
		f.ReassignAfter = formatMinutes(s.ReassignAfter)
	}
	if s.PresenceGrace > 0 {
		f.PresenceGrace = formatSeconds(s.PresenceGrace)
	}
	for sit, text := range s.Replies {
		f.Replies[sit] = text
	}
	for d, spans := range s.Hours.Week {
		parts := make([]string, len(spans))
		for i, sp := range spans {
			parts[i] = clock(sp.Start) + "-" + clock(sp.End)
		}
		f.Days[d] = strings.Join(parts, ", ")
	}
	for c, r := range s.Channels {
		f.Channels[c] = ruleState(r)
	}
	return f
}

// ruleState shows a channel rule in the form.
func ruleState(r bd.ChannelRule) channelState {
	cs := channelState{Target: string(r.Target), Managers: make(map[bd.ManagerID]bool, len(r.Managers))}
	if cs.Target == "" {
		cs.Target = string(bd.ToManagers)
	}
	for _, m := range r.Managers {
		cs.Managers[m] = true
	}
	if r.Bot != 0 {
		cs.Bot = strconv.FormatInt(int64(r.Bot), 10)
	}
	for _, st := range r.Steps {
		ss := stepState{Group: st.Group, Unit: unitMinutes}
		if st.Bot != 0 {
			ss.Group = botStepPrefix + strconv.FormatInt(int64(st.Bot), 10)
		}
		switch {
		case st.Wait == 0:
		case st.Wait%time.Minute == 0:
			ss.Wait = formatMinutes(st.Wait)
		default:
			ss.Wait, ss.Unit = formatSeconds(st.Wait), unitSeconds
		}
		cs.Steps = append(cs.Steps, ss)
	}
	return cs
}

func formatMinutes(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10)
	}
	return strconv.FormatFloat(d.Minutes(), 'f', -1, 64)
}

func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

func clock(minutes int) string { return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60) }

// stateFromForm reads the submitted settings form.
func stateFromForm(v url.Values) formState {
	f := formState{
		Active:           v.Get("active") == "on",
		Managers:         make(map[bd.ManagerID]bool),
		Capacity:         make(map[bd.ManagerID]string),
		DefaultCapacity:  strings.TrimSpace(v.Get("default_capacity")),
		Strategy:         v.Get("strategy"),
		Availability:     v.Get("availability"),
		Reassign:         v.Get("reassign"),
		ReassignAfter:    strings.TrimSpace(v.Get("reassign_after")),
		AutoBind:         v.Get("auto_bind") == "on",
		AutoCreate:       v.Get("auto_create") == "on",
		Replies:          make(map[bd.Situation]string),
		HoursOn:          v.Get("hours_on") == "on",
		TimeZone:         strings.TrimSpace(v.Get("time_zone")),
		Holidays:         strings.TrimSpace(v.Get("holidays")),
		Channels:         make(map[bd.ChannelID]channelState),
		PresenceGrace:    strings.TrimSpace(v.Get("presence_grace")),
		Sticky:           v.Get("sticky") == "on",
		PersonalManager:  v.Get("personal_manager") == "on",
		PersonalWait:     strings.TrimSpace(v.Get("personal_wait")),
		PrioritySegments: strings.TrimSpace(v.Get("priority_segments")),
		PriorityTags:     strings.TrimSpace(v.Get("priority_tags")),
		WaitAlert:        strings.TrimSpace(v.Get("wait_alert")),
		AlertWebhook:     strings.TrimSpace(v.Get("alert_webhook")),
		AlertSecret:      v.Get("alert_secret"),
	}
	if v.Has(defaultRulePrefix + "target") {
		f.DefaultRule = readRule(v, defaultRulePrefix)
	}
	for i := 0; v.Has(groupField(i, "name")); i++ {
		g := groupState{Name: strings.TrimSpace(v.Get(groupField(i, "name"))), Was: v.Get(groupField(i, "was")), Managers: make(map[bd.ManagerID]bool)}
		for _, s := range v[groupField(i, "manager")] {
			if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
				g.Managers[bd.ManagerID(id)] = true
			}
		}
		f.Groups = append(f.Groups, g)
	}
	for _, s := range v["manager"] {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
			f.Managers[bd.ManagerID(id)] = true
		}
	}
	for _, sit := range bd.Situations() {
		f.Replies[sit] = v.Get("reply_" + string(sit))
	}
	for d := range f.Days {
		f.Days[d] = strings.TrimSpace(v.Get("day_" + strconv.Itoa(d)))
	}
	for key, vals := range v {
		if rest, ok := strings.CutPrefix(key, "capacity_"); ok && len(vals) > 0 {
			if id, err := strconv.ParseInt(rest, 10, 64); err == nil && id > 0 {
				f.Capacity[bd.ManagerID(id)] = strings.TrimSpace(vals[0])
			}
		}
		if rest, ok := strings.CutPrefix(key, "channel_"); ok && strings.HasSuffix(rest, "_target") && len(vals) > 0 {
			id, err := strconv.ParseInt(strings.TrimSuffix(rest, "_target"), 10, 64)
			if err != nil || id <= 0 {
				continue
			}
			f.Channels[bd.ChannelID(id)] = readRule(v, channelPrefix(bd.ChannelID(id)))
		}
	}
	return f
}

// The form's names: a rule's fields start with its prefix (channelPrefix,
// or defaultRulePrefix for the default rule); a step's are
// <prefix>step_<index>_group, _wait and _unit; a group's are
// group_<index>_name, _was and _manager.
const defaultRulePrefix = "default_rule_"

func channelPrefix(c bd.ChannelID) string { return "channel_" + strconv.FormatInt(int64(c), 10) + "_" }

func stepField(prefix string, i int, name string) string {
	return prefix + "step_" + strconv.Itoa(i) + "_" + name
}

func groupField(i int, name string) string { return "group_" + strconv.Itoa(i) + "_" + name }

// readRule reads the rule whose fields start with prefix.
func readRule(v url.Values, prefix string) channelState {
	cs := channelState{Target: v.Get(prefix + "target"), Managers: make(map[bd.ManagerID]bool), Bot: v.Get(prefix + "bot")}
	for _, s := range v[prefix+"manager"] {
		if m, err := strconv.ParseInt(s, 10, 64); err == nil && m > 0 {
			cs.Managers[bd.ManagerID(m)] = true
		}
	}
	// A step is there when any of its fields is (a select with nothing
	// selected is not submitted).
	has := func(i int) bool {
		return v.Has(stepField(prefix, i, "group")) || v.Has(stepField(prefix, i, "wait")) || v.Has(stepField(prefix, i, "unit"))
	}
	for i := 0; has(i); i++ {
		cs.Steps = append(cs.Steps, stepState{
			Group: v.Get(stepField(prefix, i, "group")),
			Wait:  strings.TrimSpace(v.Get(stepField(prefix, i, "wait"))),
			Unit:  v.Get(stepField(prefix, i, "unit")),
		})
	}
	return cs
}

// settings applies the form to base (the settings in force), keeping what
// the form does not show (shifts, leave, ...). A form without the default
// rule's fields or the groups' (another client's) keeps those too; the
// page always sends both. The alert's secret stays as stored unless a new
// one is typed, and goes when the webhook does. The problems are what the
// form itself gets wrong (a number that is not one, a span that does not
// parse, a group without a name); the settings' own validation comes
// after.
func (f formState) settings(l lang, base bd.Settings) (bd.Settings, []bd.Problem) {
	s := base.Clone()
	s.Active = f.Active
	var ps []bd.Problem
	add := func(field, key string, args ...any) {
		ps = append(ps, bd.Problem{Field: field, Message: T(l, key, args...)})
	}

	s.Managers = s.Managers[:0]
	for m := range f.Managers {
		s.Managers = append(s.Managers, m)
	}
	slices.Sort(s.Managers)

	s.Capacity = nil
	for m, text := range f.Capacity {
		if text == "" {
			continue
		}
		n, err := strconv.Atoi(text)
		if err != nil {
			add(fmt.Sprintf("capacity.%d", m), "msg.notNumber", text)
			continue
		}
		if !f.Managers[m] {
			continue // a capacity for someone not in the distribution is dropped
		}
		if s.Capacity == nil {
			s.Capacity = make(map[bd.ManagerID]int)
		}
		s.Capacity[m] = n
	}
	if n, err := strconv.Atoi(f.DefaultCapacity); err != nil {
		add("default_capacity", "msg.notNumber", f.DefaultCapacity)
	} else {
		s.DefaultCapacity = n
	}
	s.Strategy = f.Strategy
	s.Availability = bd.AvailabilityMode(f.Availability)
	s.Reassign = bd.ReassignMode(f.Reassign)
	s.ReassignAfter = 0
	if f.ReassignAfter != "" {
		if n, err := strconv.ParseFloat(f.ReassignAfter, 64); err != nil || n < 0 {
			add("reassign_after", "msg.notMinutes", f.ReassignAfter)
		} else {
			s.ReassignAfter = time.Duration(n * float64(time.Minute))
		}
	}
	s.AutoBind, s.AutoCreate = f.AutoBind, f.AutoCreate
	s.Replies = make(map[bd.Situation]string, len(f.Replies))
	for sit, text := range f.Replies {
		s.Replies[sit] = strings.TrimSpace(text)
	}

	s.Hours.TimeZone = f.TimeZone
	s.Hours.Week = [7][]bd.Span{}
	if f.HoursOn {
		for d, text := range f.Days {
			spans, err := parseSpans(text)
			if err != nil {
				ps = append(ps, bd.Problem{Field: "hours." + strings.ToLower(time.Weekday(d).String()), Message: err.Error()})
				continue
			}
			s.Hours.Week[d] = spans
		}
	}
	s.Hours.Holidays = nil // none stays nil, as the store gives it back
	if days := strings.FieldsFunc(f.Holidays, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }); len(days) > 0 {
		s.Hours.Holidays = days
	}

	s.PresenceGrace = 0
	if f.PresenceGrace != "" {
		if n, err := strconv.ParseFloat(f.PresenceGrace, 64); err != nil || n < 0 {
			add("presence_grace", "msg.notSeconds", f.PresenceGrace)
		} else {
			s.PresenceGrace = time.Duration(n * float64(time.Second))
		}
	}
	s.Sticky = f.Sticky

	// Groups first: a renamed group is renamed in the steps that name it.
	renamed := map[string]string{}
	if f.Groups != nil {
		s.Groups = nil
		for _, g := range f.Groups {
			if g.Name == "" && len(g.Managers) == 0 {
				continue // the empty row for a new group
			}
			field := "groups." + g.Name
			if g.Name == "" {
				add(field, "msg.groupNoName")
				continue
			}
			if _, dup := s.Groups[g.Name]; dup {
				add(field, "msg.groupTwice", g.Name)
				continue
			}
			if g.Was != "" && g.Was != g.Name {
				renamed[g.Was] = g.Name
			}
			if s.Groups == nil {
				s.Groups = make(map[string][]bd.ManagerID)
			}
			s.Groups[g.Name] = slices.Sorted(maps.Keys(g.Managers))
			if s.Groups[g.Name] == nil {
				s.Groups[g.Name] = []bd.ManagerID{}
			}
		}
	}
	groupNamed := make(map[string]bool, len(s.Groups))
	for g := range s.Groups {
		groupNamed[g] = true
	}
	steps := func(field string, cs channelState) []bd.Step {
		var out []bd.Step
		for i, st := range cs.Steps {
			step := bd.Step{Group: st.Group}
			if to, ok := renamed[st.Group]; ok {
				step.Group = to
			} else if b, ok := stepBot(st.Group); ok && !groupNamed[st.Group] {
				step = bd.Step{Bot: b}
			}
			if st.Wait != "" {
				n, err := strconv.ParseFloat(st.Wait, 64)
				unit := time.Minute
				switch {
				case st.Unit == unitSeconds:
					unit = time.Second
				case st.Unit != unitMinutes && st.Unit != "":
					add(fmt.Sprintf("%s.steps.%d.wait", field, i), "msg.unknownChoice", st.Unit)
				}
				if err != nil || n < 0 {
					add(fmt.Sprintf("%s.steps.%d.wait", field, i), "msg.notWait", st.Wait)
				} else {
					step.Wait = time.Duration(n * float64(unit)).Round(time.Second)
				}
			}
			out = append(out, step)
		}
		return out
	}
	// rule reads a rule of the form; false when it has a problem of its own.
	rule := func(field string, cs channelState) (bd.ChannelRule, bool) {
		switch cs.Target {
		case string(bd.ToManagers):
			r := bd.ChannelRule{Target: bd.ToManagers, Steps: steps(field, cs)}
			for m := range cs.Managers {
				r.Managers = append(r.Managers, m)
			}
			slices.Sort(r.Managers)
			return r, true
		case string(bd.ToBot):
			id, err := strconv.ParseInt(cs.Bot, 10, 64)
			if err != nil || id <= 0 {
				add(field+".bot", "msg.chooseBot")
				return bd.ChannelRule{}, false
			}
			// A bot takes every dialog: the managers and steps shown
			// beside it do not apply.
			return bd.ChannelRule{Target: bd.ToBot, Bot: bd.BotID(id)}, true
		default:
			add(field+".target", "msg.unknownChoice", cs.Target)
			return bd.ChannelRule{}, false
		}
	}

	for c, cs := range f.Channels {
		if cs.Target == targetDefault {
			delete(s.Channels, c)
			continue
		}
		if r, ok := rule(fmt.Sprintf("channels.%d", c), cs); ok {
			setRule(&s, c, r)
		}
	}
	switch {
	case f.DefaultRule.Target != "":
		if r, ok := rule("default_rule", f.DefaultRule); ok {
			if r.Target == bd.ToManagers && base.DefaultRule.Target == "" {
				r.Target = "" // the zero value means managers: keep it as it was
			}
			s.DefaultRule = r
		}
	case len(renamed) > 0:
		// The form does not show the default rule: only follow the renames.
		s.DefaultRule.Steps = slices.Clone(s.DefaultRule.Steps)
		for i, st := range s.DefaultRule.Steps {
			if to, ok := renamed[st.Group]; ok {
				s.DefaultRule.Steps[i].Group = to
			}
		}
	}

	s.PersonalManager = f.PersonalManager
	s.PersonalWait = 0
	if f.PersonalWait != "" {
		if n, err := strconv.ParseFloat(f.PersonalWait, 64); err != nil || n < 0 {
			add("personal_wait", "msg.notMinutes", f.PersonalWait)
		} else {
			s.PersonalWait = time.Duration(n * float64(time.Minute)).Round(time.Second)
		}
	}
	s.PrioritySegments = splitList(f.PrioritySegments)
	s.PriorityTags = splitList(f.PriorityTags)
	s.WaitAlert = 0
	if f.WaitAlert != "" {
		if n, err := strconv.ParseFloat(f.WaitAlert, 64); err != nil || n < 0 {
			add("wait_alert", "msg.notMinutes", f.WaitAlert)
		} else {
			s.WaitAlert = time.Duration(n * float64(time.Minute)).Round(time.Second)
		}
	}
	// The stored secret stays unless a new one is typed; without a
	// webhook there is nothing to sign, and the secret goes with it.
	s.AlertWebhook = f.AlertWebhook
	switch {
	case f.AlertWebhook == "":
		s.AlertSecret = ""
	case f.AlertSecret != "":
		s.AlertSecret = f.AlertSecret
	}
	return s, ps
}

// splitList reads a comma-separated list, without empty items and
// repeats; nil when there is none.
func splitList(text string) []string {
	var out []string
	for item := range strings.SplitSeq(text, ",") {
		if item = strings.TrimSpace(item); item != "" && !slices.Contains(out, item) {
			out = append(out, item)
		}
	}
	return out
}

func setRule(s *bd.Settings, c bd.ChannelID, r bd.ChannelRule) {
	if s.Channels == nil {
		s.Channels = make(map[bd.ChannelID]bd.ChannelRule)
	}
	s.Channels[c] = r
}

// parseSpans reads "09:00-13:00, 14:00-18:00" (also "9-18"); "24:00" ends
// a day.
func parseSpans(text string) ([]bd.Span, error) {
	var out []bd.Span
	for part := range strings.SplitSeq(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		from, to, ok := strings.Cut(part, "-")
		if !ok {
			return nil, fmt.Errorf("%q is not a span like 09:00-18:00", part)
		}
		start, err1 := parseClock(from)
		end, err2 := parseClock(to)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q is not a span like 09:00-18:00", part)
		}
		out = append(out, bd.Span{Start: start, End: end})
	}
	return out, nil
}

func parseClock(s string) (int, error) {
	s = strings.TrimSpace(s)
	h, m, hasMin := strings.Cut(s, ":")
	hh, err := strconv.Atoi(h)
	if err != nil || hh < 0 || hh > 24 {
		return 0, fmt.Errorf("bad hour in %q", s)
	}
	mm := 0
	if hasMin {
		if mm, err = strconv.Atoi(m); err != nil || mm < 0 || mm > 59 || len(m) != 2 {
			return 0, fmt.Errorf("bad minute in %q", s)
		}
	}
	return hh*60 + mm, nil
}

// edit changes the form as one of its edit buttons asks, without saving:
// "step_add:<prefix>", "step_remove:<prefix>:<i>", "step_up:<prefix>:<i>",
// "step_down:<prefix>:<i>", "group_add" and "group_remove:<i>". The
// buttons are plain submit buttons, so the editor works without
// JavaScript. It reports whether op was understood.
func (f *formState) edit(op string) bool {
	verb, rest, _ := strings.Cut(op, ":")
	f.Edited = true
	if verb == "group_add" {
		f.Groups = append(f.Groups, groupState{Managers: map[bd.ManagerID]bool{}})
		return true
	}
	if verb == "group_remove" {
		i, err := strconv.Atoi(rest)
		if err != nil || i < 0 || i >= len(f.Groups) {
			return false
		}
		f.Groups = slices.Delete(f.Groups, i, i+1)
		return true
	}
	prefix, index, _ := strings.Cut(rest, ":")
	var cs channelState
	var channel bd.ChannelID
	switch {
	case prefix == defaultRulePrefix:
		cs = f.DefaultRule
	case strings.HasPrefix(prefix, "channel_"):
		id, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(prefix, "channel_"), "_"), 10, 64)
		if err != nil || id <= 0 {
			return false
		}
		channel = bd.ChannelID(id)
		cs = f.Channels[channel]
	default:
		return false
	}
	i, err := strconv.Atoi(index)
	if verb != "step_add" && (err != nil || i < 0 || i >= len(cs.Steps)) {
		return false
	}
	switch verb {
	case "step_add":
		cs.Steps = append(slices.Clip(cs.Steps), stepState{Unit: unitMinutes})
		// Steps are for managers: a rule that had none of its own now has.
		if cs.Target == "" || cs.Target == targetDefault {
			cs.Target = string(bd.ToManagers)
		}
	case "step_remove":
		cs.Steps = slices.Delete(slices.Clone(cs.Steps), i, i+1)
	case "step_up", "step_down":
		j := i - 1
		if verb == "step_down" {
			j = i + 1
		}
		if j < 0 || j >= len(cs.Steps) {
			return false
		}
		cs.Steps = slices.Clone(cs.Steps)
		cs.Steps[i], cs.Steps[j] = cs.Steps[j], cs.Steps[i]
	default:
		return false
	}
	if cs.Managers == nil {
		cs.Managers = map[bd.ManagerID]bool{}
	}
	if prefix == defaultRulePrefix {
		f.DefaultRule = cs
	} else {
		if f.Channels == nil {
			f.Channels = map[bd.ChannelID]channelState{}
		}
		f.Channels[channel] = cs
	}
	return true
}
