package web

import (
	"fmt"
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

// channelState is one channel's rule as the form holds it.
type channelState struct {
	Target   string // targetDefault, "managers" or "bot"
	Managers map[bd.ManagerID]bool
	Bot      string
}

// formState is the settings form as text, exactly as shown or submitted,
// so that a refused form comes back with what the user typed.
type formState struct {
	Active          bool
	Managers        map[bd.ManagerID]bool
	Capacity        map[bd.ManagerID]string
	DefaultCapacity string
	Strategy        string
	Availability    string
	Reassign        string
	ReassignAfter   string // minutes
	AutoBind        bool
	AutoCreate      bool
	Replies         map[bd.Situation]string
	HoursOn         bool
	TimeZone        string
	Days            [7]string // spans per weekday, time.Weekday order
	Holidays        string
	Channels        map[bd.ChannelID]channelState
	PresenceGrace   string // seconds
	Sticky          bool
}

// stateFromSettings shows settings in the form.
func stateFromSettings(s bd.Settings) formState {
	f := formState{
		Active:          s.Active,
		Managers:        make(map[bd.ManagerID]bool, len(s.Managers)),
		Capacity:        make(map[bd.ManagerID]string, len(s.Capacity)),
		DefaultCapacity: strconv.Itoa(s.DefaultCapacity),
		Strategy:        s.Strategy,
		Availability:    string(s.Availability),
		Reassign:        string(s.Reassign),
		AutoBind:        s.AutoBind,
		AutoCreate:      s.AutoCreate,
		Replies:         make(map[bd.Situation]string, len(s.Replies)),
		HoursOn:         !s.Hours.Always(),
		TimeZone:        s.Hours.TimeZone,
		Holidays:        strings.Join(s.Hours.Holidays, ", "),
		Channels:        make(map[bd.ChannelID]channelState, len(s.Channels)),
		Sticky:          s.Sticky,
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
		f.Channels[c] = cs
	}
	return f
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
		Active:          v.Get("active") == "on",
		Managers:        make(map[bd.ManagerID]bool),
		Capacity:        make(map[bd.ManagerID]string),
		DefaultCapacity: strings.TrimSpace(v.Get("default_capacity")),
		Strategy:        v.Get("strategy"),
		Availability:    v.Get("availability"),
		Reassign:        v.Get("reassign"),
		ReassignAfter:   strings.TrimSpace(v.Get("reassign_after")),
		AutoBind:        v.Get("auto_bind") == "on",
		AutoCreate:      v.Get("auto_create") == "on",
		Replies:         make(map[bd.Situation]string),
		HoursOn:         v.Get("hours_on") == "on",
		TimeZone:        strings.TrimSpace(v.Get("time_zone")),
		Holidays:        strings.TrimSpace(v.Get("holidays")),
		Channels:        make(map[bd.ChannelID]channelState),
		PresenceGrace:   strings.TrimSpace(v.Get("presence_grace")),
		Sticky:          v.Get("sticky") == "on",
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
			prefix := "channel_" + strconv.FormatInt(id, 10) + "_"
			cs := channelState{Target: vals[0], Managers: make(map[bd.ManagerID]bool), Bot: v.Get(prefix + "bot")}
			for _, s := range v[prefix+"manager"] {
				if m, err := strconv.ParseInt(s, 10, 64); err == nil && m > 0 {
					cs.Managers[bd.ManagerID(m)] = true
				}
			}
			f.Channels[bd.ChannelID(id)] = cs
		}
	}
	return f
}

// settings applies the form to base (the settings in force), keeping what
// the form does not show (shifts, leave, the default rule, ...). The
// problems are what the form itself gets wrong (a number that is not one,
// a span that does not parse); the settings' own validation comes after.
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

	for c, cs := range f.Channels {
		field := fmt.Sprintf("channels.%d", c)
		switch cs.Target {
		case targetDefault:
			delete(s.Channels, c)
			continue
		case string(bd.ToManagers):
			r := bd.ChannelRule{Target: bd.ToManagers}
			for m := range cs.Managers {
				r.Managers = append(r.Managers, m)
			}
			slices.Sort(r.Managers)
			setRule(&s, c, r)
		case string(bd.ToBot):
			id, err := strconv.ParseInt(cs.Bot, 10, 64)
			if err != nil || id <= 0 {
				add(field+".bot", "msg.chooseBot")
				continue
			}
			setRule(&s, c, bd.ChannelRule{Target: bd.ToBot, Bot: bd.BotID(id)})
		default:
			add(field+".target", "msg.unknownChoice", cs.Target)
		}
	}
	return s, ps
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
