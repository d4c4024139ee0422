package web

import (
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
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

// baseSettings are valid settings of three managers, the base a form is
// applied to.
func baseSettings() bd.Settings {
	s := bot.DefaultSettings(bot.LangEnglish)
	s.Managers = []bd.ManagerID{3, 7, 9}
	return s
}

// problemOf returns the message of the first problem of field, or "".
func problemOf(ps []bd.Problem, field string) string {
	for _, p := range ps {
		if p.Field == field {
			return p.Message
		}
	}
	return ""
}

// Steps are read in order, each wait in its unit; a wait that is not a
// number is named beside its step; a bot rule drops the steps shown
// beside it.
func TestFormEscalationSteps(t *testing.T) {
	base := baseSettings()
	base.Groups = map[string][]bd.ManagerID{"sales": {3}, "support": {7, 9}}
	for _, tc := range []struct {
		name    string
		steps   []stepState
		want    []bd.Step
		field   string // of the expected problem
		problem string
	}{
		{name: "seconds then everyone", steps: []stepState{{Group: "sales", Wait: "60", Unit: unitSeconds}, {Unit: unitMinutes}},
			want: []bd.Step{{Group: "sales", Wait: time.Minute}, {}}},
		{name: "fractions of minutes", steps: []stepState{{Group: "support", Wait: "1.5", Unit: unitMinutes}, {Group: "sales", Wait: " 2 ", Unit: unitMinutes}, {Unit: unitSeconds}},
			want: []bd.Step{{Group: "support", Wait: 90 * time.Second}, {Group: "sales", Wait: 2 * time.Minute}, {}}},
		{name: "not a number", steps: []stepState{{Group: "sales", Wait: "soon", Unit: unitMinutes}, {}},
			field: "default_rule.steps.0.wait", problem: `"soon" is not a number`},
		{name: "negative", steps: []stepState{{Wait: "1"}, {Group: "sales", Wait: "-5", Unit: unitSeconds}},
			field: "default_rule.steps.1.wait", problem: `"-5" is not a number`},
		{name: "unknown unit", steps: []stepState{{Group: "sales", Wait: "1", Unit: "h"}, {}},
			field: "default_rule.steps.0.wait", problem: `unknown choice "h"`},
		{name: "a bot last", steps: []stepState{{Group: "sales", Wait: "30", Unit: unitSeconds}, {Group: "bot:11"}},
			want: []bd.Step{{Group: "sales", Wait: 30 * time.Second}, {Bot: 11}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := stateFromSettings(base)
			f.DefaultRule = channelState{Target: string(bd.ToManagers), Steps: tc.steps}
			got, ps := stateFromForm(values(f)).settings(bot.LangEnglish, base)
			if tc.problem != "" {
				if msg := problemOf(ps, tc.field); msg != tc.problem {
					t.Fatalf("problem of %s = %q, want %q (all: %v)", tc.field, msg, tc.problem, ps)
				}
				return
			}
			if len(ps) > 0 {
				t.Fatalf("problems: %v", ps)
			}
			if !reflect.DeepEqual(got.DefaultRule.Steps, tc.want) {
				t.Fatalf("steps = %+v, want %+v", got.DefaultRule.Steps, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("the settings read do not validate: %v", err)
			}
		})
	}

	// A bot step comes back as the bot in the step's select.
	withBot := base
	withBot.DefaultRule = bd.ChannelRule{Target: bd.ToManagers, Steps: []bd.Step{{Group: "sales", Wait: time.Minute}, {Bot: 11}}}
	if st := stateFromSettings(withBot).DefaultRule.Steps; len(st) != 2 || st[1].Group != "bot:11" {
		t.Fatalf("bot step shown as %+v", st)
	}

	// A bot takes every dialog: steps shown beside the bot are dropped.
	f := stateFromSettings(base)
	f.Channels[5] = channelState{Target: string(bd.ToBot), Bot: "11", Steps: []stepState{{Group: "sales", Wait: "1", Unit: unitMinutes}}}
	got, ps := stateFromForm(values(f)).settings(bot.LangEnglish, base)
	if len(ps) > 0 || !reflect.DeepEqual(got.Channels[5], bd.ChannelRule{Target: bd.ToBot, Bot: 11}) {
		t.Fatalf("bot rule with steps: %+v, problems %v", got.Channels[5], ps)
	}
}

// Groups: the empty row is no group; a group without a name or with the
// name of another is refused beside it; renaming a group renames it in
// the steps that name it.
func TestFormGroups(t *testing.T) {
	base := baseSettings()
	base.Groups = map[string][]bd.ManagerID{"sales": {3}}
	base.Channels = map[bd.ChannelID]bd.ChannelRule{5: {Target: bd.ToManagers, Steps: []bd.Step{{Group: "sales", Wait: time.Minute}, {}}}}
	base.DefaultRule = bd.ChannelRule{Steps: []bd.Step{{Group: "sales", Wait: time.Minute}, {}}}

	f := stateFromSettings(base)
	if len(f.Groups) != 1 || f.Groups[0].Name != "sales" || f.Groups[0].Was != "sales" || !f.Groups[0].Managers[3] {
		t.Fatalf("groups shown: %+v", f.Groups)
	}
	f.Groups[0].Name = "  Sales team "
	f.Groups = append(f.Groups, groupState{Name: "support", Managers: map[bd.ManagerID]bool{7: true, 9: true}})
	got, ps := stateFromForm(values(f)).settings(bot.LangEnglish, base)
	if len(ps) > 0 {
		t.Fatalf("problems: %v", ps)
	}
	want := map[string][]bd.ManagerID{"Sales team": {3}, "support": {7, 9}}
	if !reflect.DeepEqual(got.Groups, want) {
		t.Fatalf("groups = %v, want %v", got.Groups, want)
	}
	if g := got.Channels[5].Steps[0].Group; g != "Sales team" {
		t.Errorf("the channel's step names group %q after the rename", g)
	}
	if g := got.DefaultRule.Steps[0].Group; g != "Sales team" {
		t.Errorf("the default rule's step names group %q after the rename", g)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("the settings read do not validate: %v", err)
	}

	// Nothing named, and a name taken twice.
	f = stateFromSettings(base)
	f.Groups = append(f.Groups, groupState{Managers: map[bd.ManagerID]bool{7: true}}, groupState{Name: "sales", Managers: map[bd.ManagerID]bool{9: true}})
	_, ps = stateFromForm(values(f)).settings(bot.LangRussian, base)
	if msg := problemOf(ps, "groups."); msg != "укажите название группы" {
		t.Errorf("a group without a name: %q (all: %v)", msg, ps)
	}
	if msg := problemOf(ps, "groups.sales"); msg != "две группы называются «sales»" {
		t.Errorf("a name taken twice: %q (all: %v)", msg, ps)
	}

	// A group with no manager ticked is kept for the validation to name.
	f = stateFromSettings(base)
	f.Groups = append(f.Groups, groupState{Name: "empty", Managers: map[bd.ManagerID]bool{}})
	got, _ = stateFromForm(values(f)).settings(bot.LangEnglish, base)
	var se *bd.SettingsError
	if err := got.Validate(); !errors.As(err, &se) || problemOf(se.Problems, "groups.empty") == "" {
		t.Fatalf("an empty group validates: %v", err)
	}

	// Removing every group leaves none; a form without the groups
	// (another client) keeps them.
	f = stateFromSettings(base)
	f.Groups = nil
	v := values(f)
	got, _ = stateFromForm(v).settings(bot.LangEnglish, base)
	if got.Groups != nil {
		t.Fatalf("groups after removing them all: %v", got.Groups)
	}
	v.Del("group_0_name")
	v.Del("group_0_was")
	got, _ = stateFromForm(v).settings(bot.LangEnglish, base)
	if !reflect.DeepEqual(got.Groups, base.Groups) {
		t.Fatalf("groups after a form without them: %v", got.Groups)
	}
}

// The personal manager, the queue priority and the wait alert: numbers
// are checked, lists lose empty items and repeats, and the alert's secret
// is never shown and stays when the field is left empty.
func TestFormCRMRoutingAndAlert(t *testing.T) {
	base := baseSettings()
	base.AlertWebhook, base.AlertSecret = "https://hooks.example.com/a", "old secret"

	f := stateFromSettings(base)
	if f.AlertSecret != "" || !f.AlertSecretSet {
		t.Fatalf("the form holds the secret %q (set: %v)", f.AlertSecret, f.AlertSecretSet)
	}
	f.PersonalManager, f.PersonalWait = true, "0.5"
	f.PrioritySegments, f.PriorityTags = "vip, , wholesale,vip", " "
	f.WaitAlert = "15"
	got, ps := stateFromForm(values(f)).settings(bot.LangEnglish, base)
	if len(ps) > 0 {
		t.Fatalf("problems: %v", ps)
	}
	if !got.PersonalManager || got.PersonalWait != 30*time.Second || got.WaitAlert != 15*time.Minute ||
		!reflect.DeepEqual(got.PrioritySegments, []string{"vip", "wholesale"}) || got.PriorityTags != nil {
		t.Fatalf("read %+v", got)
	}
	if got.AlertSecret != "old secret" {
		t.Fatalf("the secret left empty became %q", got.AlertSecret)
	}

	f.AlertSecret = "new secret"
	if got, _ = stateFromForm(values(f)).settings(bot.LangEnglish, base); got.AlertSecret != "new secret" {
		t.Fatalf("a typed secret became %q", got.AlertSecret)
	}
	f.AlertSecret, f.AlertWebhook = "", ""
	if got, _ = stateFromForm(values(f)).settings(bot.LangEnglish, base); got.AlertSecret != "" || got.AlertWebhook != "" {
		t.Fatalf("without a webhook the secret stays: %q", got.AlertSecret)
	}

	f = stateFromSettings(base)
	f.PersonalWait, f.WaitAlert = "two", "-1"
	_, ps = stateFromForm(values(f)).settings(bot.LangRussian, base)
	if msg := problemOf(ps, "personal_wait"); msg != `"two" — не число минут` {
		t.Errorf("personal wait: %q", msg)
	}
	if msg := problemOf(ps, "wait_alert"); msg != `"-1" — не число минут` {
		t.Errorf("wait alert: %q", msg)
	}
}

// The edit buttons add, move and remove steps and groups without saving;
// an edit the form does not know is refused.
func TestFormEditButtons(t *testing.T) {
	f := stateFromSettings(baseSettings())
	f.Channels[5] = channelState{Target: targetDefault}
	for _, op := range []string{"step_add:default_rule_", "step_add:default_rule_", "step_add:channel_5_", "group_add"} {
		if !f.edit(op) {
			t.Fatalf("edit %q refused", op)
		}
	}
	if len(f.DefaultRule.Steps) != 2 || len(f.Channels[5].Steps) != 1 || len(f.Groups) != 1 || !f.Edited {
		t.Fatalf("after adding: %+v", f)
	}
	if f.Channels[5].Target != string(bd.ToManagers) {
		t.Errorf("a channel on the default rule got a step but targets %q", f.Channels[5].Target)
	}
	f.DefaultRule.Steps[0].Group, f.DefaultRule.Steps[1].Group = "a", "b"
	if !f.edit("step_down:default_rule_:0") || f.DefaultRule.Steps[0].Group != "b" {
		t.Fatalf("moving down: %+v", f.DefaultRule.Steps)
	}
	if !f.edit("step_up:default_rule_:1") || f.DefaultRule.Steps[0].Group != "a" {
		t.Fatalf("moving up: %+v", f.DefaultRule.Steps)
	}
	if !f.edit("step_remove:default_rule_:0") || len(f.DefaultRule.Steps) != 1 || f.DefaultRule.Steps[0].Group != "b" {
		t.Fatalf("removing: %+v", f.DefaultRule.Steps)
	}
	if !f.edit("group_remove:0") || len(f.Groups) != 0 {
		t.Fatalf("removing a group: %+v", f.Groups)
	}
	for _, op := range []string{"step_up:default_rule_:0", "step_down:default_rule_:0", "step_remove:default_rule_:3", "step_add:channel_x_", "step_add:shifts_", "group_remove:2", "format"} {
		if f.edit(op) {
			t.Errorf("edit %q accepted", op)
		}
	}
}

// The decision trace in plain words: the personal manager being waited
// for, then the first step's group; the step a dialog is at.
func TestTraceNotes(t *testing.T) {
	name := func(m bd.ManagerID) string { return map[bd.ManagerID]string{7: "Anna", 9: "Boris"}[m] }
	rule := bd.ChannelRule{Steps: []bd.Step{{Group: "sales", Wait: time.Minute}, {Group: "support", Wait: time.Minute}, {}}}
	waiting := distributor.Trace{Outcome: distributor.OutcomeQueued, Rule: rule, Personal: 7, PersonalWait: 2 * time.Minute,
		Step: 1, NextStepIn: time.Minute, Profile: "cached"}
	stepping := distributor.Trace{Outcome: distributor.OutcomeQueued, Rule: rule, Step: 1, NextStepIn: time.Minute, Profile: "cached"}
	for _, tc := range []struct {
		l    lang
		t    distributor.Trace
		want []string
	}{
		{bot.LangEnglish, waiting, []string{
			"Personal manager Anna cannot take it now; waiting up to 2 min more for them, then the group “sales”.",
			"The customer's retailCRM card: taken from the cache."}},
		{bot.LangRussian, waiting, []string{
			"Персональный менеджер — Anna, но сейчас не может взять диалог; ждём ещё до 2 мин, затем — группа «sales».",
			"Карточка клиента в retailCRM: взята из кэша."}},
		{bot.LangEnglish, stepping, []string{
			"Step 2 of 3 (support), next step in 1 min.",
			"The customer's retailCRM card: taken from the cache."}},
		{bot.LangRussian, stepping, []string{
			"Шаг 2 из 3 (support), следующий шаг через 1 мин.",
			"Карточка клиента в retailCRM: взята из кэша."}},
		{bot.LangEnglish, distributor.Trace{Outcome: distributor.OutcomeAssigned, Responsible: bd.ManagerOf(9), Rule: rule, Personal: 7, Step: 2}, []string{
			"Personal manager Anna cannot take it; the channel's rule applies.",
			"Step 3 of 3 (everyone), the last one."}},
		{bot.LangRussian, distributor.Trace{Outcome: distributor.OutcomeQueued, Rule: bd.ChannelRule{Steps: []bd.Step{{Wait: time.Minute}, {Group: "sales"}}}, Personal: 7, PersonalWait: 90 * time.Second}, []string{
			"Персональный менеджер — Anna, но сейчас не может взять диалог; ждём ещё до 1 мин 30 с, затем — все менеджеры в распределении."}},
		{bot.LangRussian, distributor.Trace{Outcome: distributor.OutcomeAssigned, Responsible: bd.ManagerOf(7), Personal: 7, Profile: "timed out"}, []string{
			"Anna — персональный менеджер клиента в retailCRM.",
			"Карточка клиента в retailCRM не успела прочитаться: диалог направлен по правилу канала, карточка дочитывается."}},
		{bot.LangEnglish, distributor.Trace{Outcome: distributor.OutcomeQueued, Personal: 9, PersonalWait: 45 * time.Second, Priority: 2, PriorityCustomer: true}, []string{
			"Personal manager Boris cannot take it now; waiting up to 45 s more for them, then the channel's rule.",
			"Priority customer (segment or tag): waits ahead in the queue."}},
		// A returning customer waits ahead too, but is no priority customer.
		{bot.LangEnglish, distributor.Trace{Outcome: distributor.OutcomeQueued, Priority: 1, LastManager: 9}, nil},
		{bot.LangEnglish, distributor.Trace{Outcome: distributor.OutcomeAssigned, Responsible: bd.ManagerOf(9)}, nil},
	} {
		if got := traceNotes(tc.l, tc.t, name); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s notes:\n got %q\nwant %q", tc.l, got, tc.want)
		}
	}
}

// The strategy select names each built-in strategy in the page's
// language, strict order included; an unknown one shows its name.
func TestStrategyLabels(t *testing.T) {
	f := stateFromSettings(baseSettings())
	f.Strategy = "strict_order"
	c := bot.Choices{Strategies: []string{"least_loaded", "round_robin", "strict_order", "my_own"}}
	for _, tc := range []struct {
		l    lang
		want map[string]string
	}{
		{bot.LangEnglish, map[string]string{"strict_order": "strict order: the first available manager in the list", "least_loaded": "least loaded: fewest open dialogs", "my_own": "my_own"}},
		{bot.LangRussian, map[string]string{"strict_order": "строгий порядок: первый доступный менеджер по списку", "round_robin": "по кругу: дольше всех без нового диалога", "my_own": "my_own"}},
	} {
		got := map[string]string{}
		for _, o := range newSettingsView(tc.l, f, c, nil).Strategies {
			got[o.Value] = o.Label
			if o.Selected != (o.Value == "strict_order") {
				t.Errorf("%s: %q selected: %v", tc.l, o.Value, o.Selected)
			}
		}
		for name, label := range tc.want {
			if got[name] != label {
				t.Errorf("%s: %s is labelled %q, want %q", tc.l, name, got[name], label)
			}
		}
	}
}

// A secret typed into a form that comes back (refused, or changed by an
// edit button) is not written into the page: the page asks for it again.
func TestTypedSecretIsNotShown(t *testing.T) {
	p, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	f := stateFromSettings(baseSettings())
	f.AlertWebhook, f.AlertSecret = "https://hooks.example.com/a", "typed-secret-42"
	for _, l := range []lang{bot.LangEnglish, bot.LangRussian} {
		var b strings.Builder
		pg := page{Lang: l, Data: accountData{Settings: newSettingsView(l, f, bot.Choices{}, nil)}}
		if err := p.execute(&b, "account", "", pg); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "typed-secret-42") {
			t.Fatalf("%s: the page shows the typed secret", l)
		}
		if want := T(l, "alert.secretRetype"); !strings.Contains(b.String(), want) {
			t.Fatalf("%s: the page does not ask for the secret again (%q)", l, want)
		}
	}
}

// The library's messages about groups, steps and the alert read in
// Russian, with the manager's name in place of their id; a message the
// page does not know stays as the library wrote it.
func TestLibraryMessagesInRussian(t *testing.T) {
	name := func(m bd.ManagerID) string { return map[bd.ManagerID]string{7: "Анна Смирнова"}[m] }
	for msg, want := range map[string]string{
		"manager 7 is not in the distribution":                        "Анна Смирнова не участвует в распределении: отметьте этого менеджера в списке выше",
		`unknown group "Отдел продаж"`:                                "группы «Отдел продаж» нет",
		"every step but the last needs a wait":                        "укажите, сколько длится этот шаг: время не нужно только последнему шагу",
		`must be an http or https URL, got "ftp://x"`:                 "«ftp://x» — не адрес http или https",
		"a rule with steps takes its managers from the steps' groups": "правило с шагами берёт менеджеров из групп шагов: снимите отметки с менеджеров или удалите шаги",
		"must not be negative, got -1s":                               "не может быть отрицательным",
		"something new":                                               "something new",
	} {
		if got := translateMessage(bot.LangRussian, msg, name); got != want {
			t.Errorf("%q reads %q, want %q", msg, got, want)
		}
	}
	// Every pattern's key has a text of its own in both languages.
	for _, lm := range libraryMessages {
		if _, ok := russian[lm.key]; !ok {
			t.Errorf("%s has no Russian text", lm.key)
		}
	}
}
