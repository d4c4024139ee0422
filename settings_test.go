package botdistributor_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

func validSettings() bd.Settings {
	return bd.Settings{
		Managers:        []bd.ManagerID{1, 2, 3},
		DefaultCapacity: 5,
		Capacity:        map[bd.ManagerID]int{2: 8},
		Availability:    bd.StatusAndOnline,
		Reassign:        bd.ReassignUncompleted,
		Replies: map[bd.Situation]string{
			bd.DialogReceived: "a", bd.ManagerAssigned: "b", bd.NoManagerOnline: "c",
			bd.AllManagersBusy: "d", bd.OutsideWorkingHours: "e",
		},
		Hours:    bd.WorkingHours{TimeZone: "Europe/Moscow", Week: [7][]bd.Span{1: {{Start: 540, End: 1080}}}, Holidays: []string{"2026-01-01"}},
		Shifts:   map[bd.ManagerID]bd.WorkingHours{3: {Week: [7][]bd.Span{2: {{Start: 0, End: 600}}}}},
		Leave:    map[bd.ManagerID][]bd.DateRange{1: {{From: "2026-07-01", To: "2026-07-14"}}},
		Channels: map[bd.ChannelID]bd.ChannelRule{7: {Target: bd.ToBot, Bot: 9}, 8: {Target: bd.ToManagers, Managers: []bd.ManagerID{1}}},
	}
}

func TestValidateAcceptsValidSettings(t *testing.T) {
	s := validSettings()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	s := validSettings()
	s.Replies[bd.NoManagerOnline] = ""
	delete(s.Replies, bd.OutsideWorkingHours)
	s.Replies["greeting"] = "hi"
	s.DefaultCapacity = 0
	s.Managers = append(s.Managers, 3, -1)
	s.Capacity[42] = -2
	s.Availability = "psychic"
	s.Reassign = "sometimes"
	s.ReassignAfter = -time.Minute
	s.AutoCreate = true
	s.Hours.TimeZone = "Mars/Olympus"
	s.Hours.Week[3] = []bd.Span{{Start: 600, End: 500}}
	s.Hours.Holidays = append(s.Hours.Holidays, "tomorrow")
	s.Shifts[77] = bd.WorkingHours{}
	s.Leave[1] = append(s.Leave[1], bd.DateRange{From: "2026-08-10", To: "2026-08-01"})
	s.PresenceGrace = -time.Second
	s.Channels[9] = bd.ChannelRule{Target: bd.ToBot}
	s.Channels[10] = bd.ChannelRule{Target: "carrier pigeon"}
	s.Channels[11] = bd.ChannelRule{Target: bd.ToManagers, Managers: []bd.ManagerID{99}, Bot: 4}

	err := s.Validate()
	var se *bd.SettingsError
	if !errors.As(err, &se) {
		t.Fatalf("Validate() = %v, want a *SettingsError", err)
	}
	empty := slices.Sorted(slices.Values(se.EmptyReplies()))
	if want := []bd.Situation{bd.NoManagerOnline, bd.OutsideWorkingHours}; !slices.Equal(empty, want) {
		t.Fatalf("EmptyReplies() = %v, want %v in any order", empty, want)
	}
	for _, want := range []string{
		"replies.no_manager_online: is empty",
		"replies.outside_working_hours: is empty",
		"replies.greeting: is not a known situation",
		"default_capacity: must be at least 1, got 0",
		"managers: manager 3 is listed twice",
		"managers: manager id must be positive, got -1",
		"capacity.42: must not be negative, got -2",
		"capacity.42: manager 42 is not in the distribution",
		`availability: unknown mode "psychic"`,
		`reassign: unknown mode "sometimes"`,
		"reassign_after: must not be negative",
		"auto_create: needs auto_bind",
		`hours.time_zone: unknown time zone "Mars/Olympus"`,
		"hours.wednesday: span 600-500",
		`hours.holidays: "tomorrow" is not a date`,
		"shifts.77: manager 77 is not in the distribution",
		"leave.1: range 2026-08-10 to 2026-08-01 ends before it starts",
		"presence_grace: must not be negative",
		"channels.9.bot: a bot rule needs a bot",
		`channels.10.target: unknown target "carrier pigeon"`,
		"channels.11.bot: a managers rule takes no bot",
		"channels.11.managers: manager 99 is not in the distribution",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate() = %q, want it to contain %q", err, want)
		}
	}
}

func TestWorkingHoursOpen(t *testing.T) {
	h := bd.WorkingHours{TimeZone: "Europe/Moscow", Holidays: []string{"2026-03-09"}}
	h.Week[time.Monday] = []bd.Span{{Start: 9 * 60, End: 13 * 60}, {Start: 14 * 60, End: 18 * 60}}
	msk := func(day, hour, minute int) time.Time { return time.Date(2026, 3, day, hour-3, minute, 0, 0, time.UTC) }
	for _, tc := range []struct {
		at   time.Time
		open bool
	}{
		{msk(2, 9, 0), true},    // Monday 09:00 Moscow
		{msk(2, 8, 59), false},  // before opening
		{msk(2, 13, 30), false}, // lunch
		{msk(2, 17, 59), true},
		{msk(2, 18, 0), false}, // end is exclusive
		{msk(3, 10, 0), false}, // Tuesday: no spans
		{msk(9, 10, 0), false}, // a Monday holiday
	} {
		if got, want := h.Open(tc.at), tc.open; got != want {
			t.Fatalf("%s: got %v, want %v", tc.at.In(h.Location()), got, want)
		}
	}
	if !(bd.WorkingHours{}).Open(time.Now()) {
		t.Fatal("a zero schedule is always open")
	}
	if (bd.WorkingHours{Holidays: []string{"2026-03-02"}}).Open(msk(2, 12, 0)) {
		t.Fatal("open on a holiday, want closed")
	}
}

func TestSettingsCloneIsDeep(t *testing.T) {
	s := validSettings()
	c := s.Clone()
	if !reflect.DeepEqual(c, s) {
		t.Fatalf("Clone() = %+v, want %+v", c, s)
	}
	c.Managers[0] = 100
	c.Capacity[2] = 1
	c.Replies[bd.DialogReceived] = "changed"
	c.Hours.Week[1][0].Start = 0
	c.Hours.Holidays[0] = "2027-01-01"
	c.Shifts[3].Week[2][0].End = 1
	c.Leave[1][0].From = "2020-01-01"
	c.Channels[8].Managers[0] = 2
	if want := validSettings(); !reflect.DeepEqual(s, want) {
		t.Fatalf("changing the clone must not change the original: got %+v, want %+v", s, want)
	}
}

func TestSettingsJSONRoundTrip(t *testing.T) {
	s := validSettings()
	s.PresenceGrace = 90 * time.Second
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back bd.Settings
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("after a JSON round trip: got %+v, want %+v", back, s)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	acc := bd.Account{ID: "shop", APIKey: "key-123456", MGToken: "tok-987654"}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("account", "account", acc, "key", acc.APIKey)
	b, err := json.Marshal(acc)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(acc), fmt.Sprintf("%v %+v %#v %s", acc, acc, acc, acc.APIKey),
		string(b), logged.String(), errors.New("bad key " + acc.APIKey.String()).Error(),
	} {
		for _, secret := range []string{"key-123456", "tok-987654"} {
			if strings.Contains(out, secret) {
				t.Fatalf("%q contains the secret %q, want it hidden", out, secret)
			}
		}
	}
	if got, want := acc.APIKey.Reveal(), "key-123456"; got != want {
		t.Fatalf("acc.APIKey.Reveal() = %v, want %v", got, want)
	}
	if got := bd.Secret("").String(); got != "" {
		t.Fatalf("Secret(\"\").String() = %q, want empty", got)
	}
}

func TestResponsible(t *testing.T) {
	if got, want := (bd.Responsible{}).String(), "nobody"; got != want {
		t.Fatalf("bd.Responsible{}.String() = %v, want %v", got, want)
	}
	if got, want := bd.ManagerOf(4).String(), "manager 4"; got != want {
		t.Fatalf("bd.ManagerOf(4).String() = %v, want %v", got, want)
	}
	if got, want := bd.BotOf(5).String(), "bot 5"; got != want {
		t.Fatalf("bd.BotOf(5).String() = %v, want %v", got, want)
	}
	m, ok := bd.ManagerOf(4).Manager()
	if !ok {
		t.Fatal("ok = false, want true")
	}
	if m != 4 {
		t.Fatalf("ManagerOf(4).Manager() = %v, want 4", m)
	}
	_, ok = bd.BotOf(5).Manager()
	if ok {
		t.Fatal("ok = true, want false")
	}
	if got, want := (bd.Manager{FirstName: "Anna", LastName: "Petrova"}).Name(), "Anna Petrova"; got != want {
		t.Fatalf("Manager.Name() = %q, want %q", got, want)
	}
	if got, want := (bd.Customer{LastName: "Petrova"}).Name(), "Petrova"; got != want {
		t.Fatalf("Customer.Name() = %q, want %q", got, want)
	}
}

// A reply text that cannot be rendered is refused when saved, naming the
// situation and what is wrong, in both the placeholder and the earlier form.
func TestValidateRefusesTextsThatCannotRender(t *testing.T) {
	s := validSettings()
	s.Replies[bd.DialogReceived] = "Hello[, {customer}]!"
	s.Replies[bd.ManagerAssigned] = "{{.Manager}} will answer."
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}

	s.Replies[bd.DialogReceived] = "Hello, {client}!"
	s.Replies[bd.ManagerAssigned] = `{{template "x"}}`
	s.Replies[bd.NoManagerOnline] = "Nobody {is online"
	s.Replies[bd.AllManagersBusy] = "{customer}"
	var se *bd.SettingsError
	if err := s.Validate(); !errors.As(err, &se) {
		t.Fatalf("Validate() = %v, want a *SettingsError", err)
	}
	got := map[string]string{}
	for _, p := range se.Problems {
		got[p.Field] = p.Message
	}
	want := map[string]string{
		"replies.dialog_received":   "unknown placeholder {client}: use {customer}, {customer_first_name}, {manager} or {manager_first_name}",
		"replies.manager_assigned":  "may not use range, define, template or block",
		"replies.no_manager_online": "the brace at character 8 is not closed: write a placeholder such as {customer}",
		"replies.all_managers_busy": "renders to an empty message when the names are unknown: add some words outside the placeholders",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("problems = %v, want %v", got, want)
	}
	if got := se.EmptyReplies(); len(got) != 0 {
		t.Fatalf("EmptyReplies() = %v, want none", got)
	}
}

func TestSettingsActiveIsOffByDefault(t *testing.T) {
	var s bd.Settings
	if s.Active {
		t.Fatal("s.Active = true, want false")
	}
	for stored, want := range map[string]bool{
		`{"active":true}`:        true,
		`{"active":false}`:       false,
		`{"default_capacity":3}`: true, // stored before Active existed: it was in force
	} {
		var back bd.Settings
		if err := json.Unmarshal([]byte(stored), &back); err != nil {
			t.Fatal(err)
		}
		if back.Active != want {
			t.Fatalf("%s: Active = %v, want %v", stored, back.Active, want)
		}
	}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"active":false`) {
		t.Fatalf("%s, want it to contain %s", js, `"active":false`)
	}
}

// ValidateWith puts its check in place of the built-in one for every
// non-empty text of a known situation, and names the rest as Validate does.
func TestValidateWithReplacesTheTextCheck(t *testing.T) {
	s := validSettings()
	s.Replies[bd.DialogReceived] = "Hello, {name}!" // an unknown placeholder to the built-in check, fine for this one
	s.Replies[bd.ManagerAssigned] = "SHOUTING"
	s.Replies[bd.NoManagerOnline] = " "
	s.Replies["unknown"] = "Hi"
	s.DefaultCapacity = 0
	var checked []bd.Situation
	check := func(sit bd.Situation, text string) error {
		checked = append(checked, sit)
		if text == strings.ToUpper(text) {
			return errors.New("write in lower case too")
		}
		return nil
	}
	var se *bd.SettingsError
	if err := s.ValidateWith(check); !errors.As(err, &se) {
		t.Fatalf("ValidateWith() = %v, want a *SettingsError", err)
	}
	got := map[string]string{}
	for _, p := range se.Problems {
		got[p.Field] = p.Message
	}
	want := map[string]string{
		"replies.manager_assigned":  "write in lower case too",
		"replies.no_manager_online": "is empty",
		"replies.unknown":           "is not a known situation",
		"default_capacity":          "must be at least 1, got 0",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("problems = %v, want %v", got, want)
	}
	wantChecked := []bd.Situation{bd.DialogReceived, bd.ManagerAssigned, bd.AllManagersBusy, bd.OutsideWorkingHours}
	if !slices.Equal(checked, wantChecked) {
		t.Fatalf("checked %v, want %v (every non-empty text of a known situation, once)", checked, wantChecked)
	}
	// The built-in check refuses what this one took, and nil means it.
	for _, err := range []error{s.Validate(), s.ValidateWith(nil)} {
		if !errors.As(err, &se) || !slices.ContainsFunc(se.Problems, func(p bd.Problem) bool { return p.Field == "replies.dialog_received" }) {
			t.Fatalf("built-in check = %v, want replies.dialog_received refused", err)
		}
	}
}

func routingSettings() bd.Settings {
	s := validSettings()
	s.Groups = map[string][]bd.ManagerID{"sales": {1, 2}, "support": {3}}
	s.DefaultRule = bd.ChannelRule{Target: bd.ToManagers, Steps: []bd.Step{{Group: "sales", Wait: time.Minute}, {Group: "support", Wait: 2 * time.Minute}, {}}}
	s.PersonalManager, s.PersonalWait = true, 90*time.Second
	s.PrioritySegments, s.PriorityTags = []string{"vip"}, []string{"gold"}
	s.WaitAlert, s.AlertWebhook, s.AlertSecret = 5*time.Minute, "https://hooks.example/wait", "s3cret"
	return s
}

func TestValidateEscalationAndPriority(t *testing.T) {
	s := routingSettings()
	if err := s.Validate(); err != nil {
		t.Fatalf("valid routing settings refused: %v", err)
	}
	s.Groups["ghosts"] = []bd.ManagerID{42}
	s.Groups["empty"] = nil
	s.Groups["a.b"] = []bd.ManagerID{1}
	s.DefaultRule.Steps[0].Wait = 0
	s.DefaultRule.Steps[1].Group = "nobody"
	s.DefaultRule.Steps[2].Wait = -time.Second
	s.Channels[8] = bd.ChannelRule{Target: bd.ToManagers, Managers: []bd.ManagerID{1}, Steps: []bd.Step{{}}}
	s.Channels[7] = bd.ChannelRule{Target: bd.ToBot, Bot: 9, Steps: []bd.Step{{}}}
	s.Channels[12] = bd.ChannelRule{Target: bd.ToManagers, Steps: []bd.Step{{Bot: 5, Wait: time.Second}, {Group: "sales", Bot: 6}, {Bot: -1}}}
	s.PersonalWait = -time.Minute
	s.PrioritySegments = append(s.PrioritySegments, " ")
	s.PriorityTags = append(s.PriorityTags, "")
	s.WaitAlert = -time.Second
	s.AlertWebhook, s.AlertSecret = "ftp://hooks.example", ""
	err := s.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, want := range []string{
		"groups.ghosts: manager 42 is not in the distribution",
		`groups.empty: group "empty" has no managers`,
		"groups.a.b: a group needs a name without dots or line breaks",
		"default_rule.steps.0.wait: every step but the last needs a wait",
		`default_rule.steps.1.group: unknown group "nobody"`,
		"default_rule.steps.2.wait: must not be negative",
		"channels.8.managers: a rule with steps takes its managers from the steps' groups",
		"channels.7.steps: a bot rule takes no steps",
		"channels.12.steps.0.bot: a bot step must be the last: the bot takes every dialog",
		"channels.12.steps.1.bot: a step goes to a group or to a bot, not both",
		"channels.12.steps.2.bot: bot id must be positive, got -1",
		"personal_wait: must not be negative",
		"priority_segments: a segment code is empty",
		"priority_tags: a tag is empty",
		"wait_alert: must not be negative",
		`alert_webhook: must be an http or https URL, got "ftp://hooks.example"`,
		"alert_secret: a webhook needs a secret to sign its body",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %q, want it to contain %q", err, want)
		}
	}
}

func TestEscalationStepAt(t *testing.T) {
	r := routingSettings().DefaultRule
	for _, tc := range []struct {
		waited time.Duration
		step   int
		ends   time.Duration
		more   bool
	}{
		{0, 0, time.Minute, true},
		{59 * time.Second, 0, time.Minute, true},
		{time.Minute, 1, 3 * time.Minute, true},
		{3*time.Minute - 1, 1, 3 * time.Minute, true},
		{3 * time.Minute, 2, 0, false},
		{24 * time.Hour, 2, 0, false},
		{-time.Second, 0, time.Minute, true},
	} {
		step := r.StepAt(tc.waited)
		ends, more := r.StepEnds(step)
		if step != tc.step || ends != tc.ends || more != tc.more {
			t.Errorf("after %s: step %d ending at %s (%v), want %d ending at %s (%v)", tc.waited, step, ends, more, tc.step, tc.ends, tc.more)
		}
	}
	if got := (bd.ChannelRule{}).StepAt(time.Hour); got != 0 {
		t.Errorf("a rule without steps is at step %d, want 0", got)
	}
}

func TestPriorityBySegmentOrTag(t *testing.T) {
	s := routingSettings()
	for _, tc := range []struct {
		segments, tags []string
		want           int
	}{
		{nil, nil, 0},
		{[]string{"wholesale"}, []string{"silver"}, 0},
		{[]string{"wholesale", "vip"}, nil, 1},
		{nil, []string{"gold"}, 1},
	} {
		if got := s.Priority(tc.segments, tc.tags); got != tc.want {
			t.Errorf("Priority(%v, %v) = %d, want %d", tc.segments, tc.tags, got, tc.want)
		}
	}
}

func TestRoutingSettingsCloneIsDeep(t *testing.T) {
	s := routingSettings()
	c := s.Clone()
	if !reflect.DeepEqual(c, s) {
		t.Fatalf("Clone() = %+v, want %+v", c, s)
	}
	c.Groups["sales"][0] = 9
	c.DefaultRule.Steps[0].Group = "support"
	c.PrioritySegments[0] = "x"
	c.PriorityTags[0] = "y"
	if want := routingSettings(); !reflect.DeepEqual(s, want) {
		t.Fatalf("changing the clone must not change the original: got %+v, want %+v", s, want)
	}
}
