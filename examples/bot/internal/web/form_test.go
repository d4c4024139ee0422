package web

import (
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
)

// values is the form the page submits for f: the same field names the
// template writes.
func values(f formState) url.Values {
	v := url.Values{}
	for m, on := range f.Managers {
		if on {
			v.Add("manager", m.String())
		}
	}
	for m, c := range f.Capacity {
		v.Set("capacity_"+m.String(), c)
	}
	v.Set("default_capacity", f.DefaultCapacity)
	v.Set("strategy", f.Strategy)
	v.Set("availability", f.Availability)
	v.Set("reassign", f.Reassign)
	v.Set("reassign_after", f.ReassignAfter)
	v.Set("presence_grace", f.PresenceGrace)
	for sit, text := range f.Replies {
		v.Set("reply_"+string(sit), text)
	}
	set := func(name string, on bool) {
		if on {
			v.Set(name, "on")
		}
	}
	set("active", f.Active)
	set("auto_bind", f.AutoBind)
	set("auto_create", f.AutoCreate)
	set("sticky", f.Sticky)
	set("hours_on", f.HoursOn)
	v.Set("time_zone", f.TimeZone)
	v.Set("holidays", f.Holidays)
	for d, spans := range f.Days {
		v.Set("day_"+strconv.Itoa(d), spans)
	}
	rule := func(prefix string, cs channelState) {
		v.Set(prefix+"target", cs.Target)
		v.Set(prefix+"bot", cs.Bot)
		for m, on := range cs.Managers {
			if on {
				v.Add(prefix+"manager", m.String())
			}
		}
		for i, st := range cs.Steps {
			v.Set(stepField(prefix, i, "group"), st.Group)
			v.Set(stepField(prefix, i, "wait"), st.Wait)
			v.Set(stepField(prefix, i, "unit"), st.Unit)
		}
	}
	for c, cs := range f.Channels {
		rule("channel_"+strconv.FormatInt(int64(c), 10)+"_", cs)
	}
	rule("default_rule_", f.DefaultRule)
	// The page always shows an empty row for a new group.
	for i, g := range append(f.Groups, groupState{}) {
		v.Set(groupField(i, "name"), g.Name)
		v.Set(groupField(i, "was"), g.Was)
		for m, on := range g.Managers {
			if on {
				v.Add(groupField(i, "manager"), m.String())
			}
		}
	}
	set("personal_manager", f.PersonalManager)
	v.Set("personal_wait", f.PersonalWait)
	v.Set("priority_segments", f.PrioritySegments)
	v.Set("priority_tags", f.PriorityTags)
	v.Set("wait_alert", f.WaitAlert)
	v.Set("alert_webhook", f.AlertWebhook)
	v.Set("alert_secret", f.AlertSecret) // never filled from settings
	return v
}

// What the page shows of settings comes back unchanged when submitted.
func TestFormRoundTrip(t *testing.T) {
	in := bd.Settings{
		Managers:        []bd.ManagerID{3, 7, 9},
		DefaultCapacity: 4,
		Capacity:        map[bd.ManagerID]int{7: 6},
		Strategy:        "least_loaded",
		Availability:    bd.OnlineOnly,
		Reassign:        bd.ReassignNew,
		ReassignAfter:   90 * time.Second,
		AutoBind:        true,
		AutoCreate:      true,
		Replies: map[bd.Situation]string{
			bd.DialogReceived: "a", bd.ManagerAssigned: "{{.Manager}}", bd.NoManagerOnline: "c",
			bd.AllManagersBusy: "d", bd.OutsideWorkingHours: "e",
		},
		Hours: bd.WorkingHours{
			TimeZone: "Europe/Moscow",
			Week:     [7][]bd.Span{time.Monday: {{Start: 9 * 60, End: 13 * 60}, {Start: 14 * 60, End: 18*60 + 30}}, time.Saturday: {{Start: 10 * 60, End: 24 * 60}}},
			Holidays: []string{"2025-01-01", "2025-01-07"},
		},
		Shifts:        map[bd.ManagerID]bd.WorkingHours{3: {Week: [7][]bd.Span{time.Friday: {{Start: 0, End: 600}}}}},
		Sticky:        true,
		PresenceGrace: 1500 * time.Millisecond,
		Channels: map[bd.ChannelID]bd.ChannelRule{
			11: {Target: bd.ToManagers, Managers: []bd.ManagerID{3, 9}},
			12: {Target: bd.ToBot, Bot: 5},
			13: {Target: bd.ToManagers},
		},
		DefaultRule:      bd.ChannelRule{Target: bd.ToManagers, Steps: []bd.Step{{Group: "sales", Wait: 90 * time.Second}, {Group: "support", Wait: 5 * time.Minute}, {}}},
		Groups:           map[string][]bd.ManagerID{"sales": {3, 9}, "support": {7}},
		PersonalManager:  true,
		PersonalWait:     3 * time.Minute,
		PrioritySegments: []string{"vip", "wholesale"},
		PriorityTags:     []string{"urgent"},
		WaitAlert:        10 * time.Minute,
		AlertWebhook:     "https://hooks.example.com/bd",
		AlertSecret:      "s3cret",
	}
	in.Channels[14] = bd.ChannelRule{Target: bd.ToManagers, Steps: []bd.Step{{Group: "support", Wait: time.Minute}, {}}}
	got, problems := stateFromForm(values(stateFromSettings(in))).settings(bot.LangEnglish, in)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, in)
	}

	// A channel set back to the default rule loses its own rule; the
	// others stay.
	f := stateFromSettings(in)
	cs := f.Channels[12]
	cs.Target = targetDefault
	f.Channels[12] = cs
	got, _ = stateFromForm(values(f)).settings(bot.LangEnglish, in)
	if _, ok := got.Channels[12]; ok || len(got.Channels) != 3 {
		t.Fatalf("channels after choosing the default rule: %v", got.Channels)
	}
}

func TestParseSpans(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []bd.Span
		bad  bool
	}{
		{"", nil, false},
		{"09:00-18:00", []bd.Span{{Start: 540, End: 1080}}, false},
		{"9-13, 14:30-24:00", []bd.Span{{Start: 540, End: 780}, {Start: 870, End: 1440}}, false},
		{"9", nil, true},
		{"09:00-25:00", nil, true},
		{"09:7-10:00", nil, true},
		{"nine-ten", nil, true},
	} {
		got, err := parseSpans(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("parseSpans(%q): error %v", tc.in, err)
			continue
		}
		if !tc.bad && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseSpans(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
