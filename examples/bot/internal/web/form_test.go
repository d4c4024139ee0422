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
	for c, cs := range f.Channels {
		prefix := "channel_" + strconv.FormatInt(int64(c), 10) + "_"
		v.Set(prefix+"target", cs.Target)
		v.Set(prefix+"bot", cs.Bot)
		for m, on := range cs.Managers {
			if on {
				v.Add(prefix+"manager", m.String())
			}
		}
	}
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
		DefaultRule: bd.ChannelRule{Target: bd.ToManagers, Managers: []bd.ManagerID{7}},
	}
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
	if _, ok := got.Channels[12]; ok || len(got.Channels) != 2 {
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
