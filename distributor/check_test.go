package distributor_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/reply/replytest"
	"github.com/botdistributor/botdistributor/store/memory"
	"github.com/botdistributor/botdistributor/strategy"
)

// CheckSettings judges settings as a Distributor with the same registry
// does, without one: every problem named, an unknown strategy among them.
func TestCheckSettings(t *testing.T) {
	valid := func() bd.Settings {
		return bd.Settings{DefaultCapacity: 2, Availability: bd.StatusAndOnline, Reassign: bd.ReassignOff, Replies: map[bd.Situation]string{
			bd.DialogReceived: "Hello", bd.ManagerAssigned: "{manager} will answer", bd.NoManagerOnline: "Nobody",
			bd.AllManagersBusy: "Busy", bd.OutsideWorkingHours: "Closed",
		}}
	}
	custom := strategy.NewRegistry()
	if err := custom.Register("mine", strategy.NewRoundRobin()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		edit       func(*bd.Settings)
		registry   *strategy.Registry
		wantFields []string
	}{
		{name: "valid", edit: func(*bd.Settings) {}},
		{name: "built-in strategy with the default registry", edit: func(s *bd.Settings) { s.Strategy = strategy.NameLeastLoaded }},
		{name: "registered strategy", edit: func(s *bd.Settings) { s.Strategy = "mine" }, registry: custom},
		{name: "unknown strategy", edit: func(s *bd.Settings) { s.Strategy = "mine" }, wantFields: []string{"strategy"}},
		{name: "every problem", edit: func(s *bd.Settings) {
			s.Strategy = "nope"
			s.DefaultCapacity = 0
			s.Replies[bd.AllManagersBusy] = " "
		}, registry: custom, wantFields: []string{"replies.all_managers_busy", "default_capacity", "strategy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.edit(&s)
			var opts []distributor.Option
			if tt.registry != nil {
				opts = append(opts, distributor.WithStrategies(tt.registry))
			}
			err := distributor.CheckSettings(s, opts...)
			d, derr := distributor.New("acc", memory.New(), &distributortest.Gateway{}, append(opts, distributor.WithoutWorkers())...)
			if derr != nil {
				t.Fatal(derr)
			}
			defer d.Close()
			if got, want := errString(err), errString(d.ValidateSettings(s)); got != want {
				t.Fatalf("CheckSettings: %s\nDistributor.ValidateSettings: %s", got, want)
			}
			if len(tt.wantFields) == 0 {
				if err != nil {
					t.Fatalf("valid settings refused: %v", err)
				}
				return
			}
			var se *bd.SettingsError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *bd.SettingsError", err)
			}
			var fields []string
			for _, p := range se.Problems {
				fields = append(fields, p.Field)
			}
			if len(fields) != len(tt.wantFields) {
				t.Fatalf("problems %v, want fields %v", se.Problems, tt.wantFields)
			}
			for i := range fields {
				if fields[i] != tt.wantFields[i] {
					t.Fatalf("problems %v, want fields %v", se.Problems, tt.wantFields)
				}
			}
		})
	}
}

// todoReplier is a Replier that is also a reply.TextChecker: it refuses a
// text still saying TODO, and {manager} where no manager is assigned.
type todoReplier struct{ sent []string }

func (r *todoReplier) Reply(_ context.Context, req reply.Request) error {
	r.sent = append(r.sent, req.Text)
	return nil
}

func (*todoReplier) CheckText(sit bd.Situation, text string) error {
	switch {
	case strings.Contains(text, "TODO"):
		return errors.New("still says TODO: write the text the customer gets")
	case strings.Contains(text, "{manager}") && sit != bd.ManagerAssigned:
		// The way reply.Validate answers: the message is in Err.
		return &reply.TextError{Situation: sit, Err: errors.New("{manager} is known only once a manager is assigned")}
	}
	return nil
}

// plainReplier is a Replier and nothing else.
type plainReplier struct{}

func (plainReplier) Reply(context.Context, reply.Request) error { return nil }

// problems returns err's problems by field; it fails unless err is a
// *bd.SettingsError.
func problems(t *testing.T, err error) map[string]string {
	t.Helper()
	se, ok := errors.AsType[*bd.SettingsError](err)
	if !ok {
		t.Fatalf("got %v, want a *bd.SettingsError", err)
	}
	m := map[string]string{}
	for _, p := range se.Problems {
		if _, dup := m[p.Field]; dup {
			t.Fatalf("field %s named twice in %v", p.Field, se.Problems)
		}
		m[p.Field] = p.Message
	}
	return m
}

// A Replier that is a reply.TextChecker judges every text: CheckSettings
// names each text it refuses by its field with its message, and
// SaveSettings saves nothing then (the previous settings stay in force).
func TestCheckSettingsAsksTheRepliersTextChecker(t *testing.T) {
	ids := managerIDs(2)
	good := settingsFor(ids, 2)
	good.Replies[bd.DialogReceived] = "Hello {name}, we got it." // the built-in check refuses {name}; this replier does not
	r := &todoReplier{}
	if err := distributor.CheckSettings(good, distributor.WithReplier(r)); err != nil {
		t.Fatalf("CheckSettings = %v, want nil: the replier's check replaces the built-in one", err)
	}
	f := newFixture(t, good, onlineManagers(ids), distributor.WithReplier(r))
	ctx := context.Background()

	bad := good.Clone()
	bad.Replies[bd.NoManagerOnline] = "TODO"
	bad.Replies[bd.AllManagersBusy] = "{manager} will answer soon."
	bad.Replies[bd.OutsideWorkingHours] = ""
	bad.DefaultCapacity = 0
	want := map[string]string{
		"replies.no_manager_online":     "still says TODO: write the text the customer gets",
		"replies.all_managers_busy":     "{manager} is known only once a manager is assigned",
		"replies.outside_working_hours": "is empty",
		"default_capacity":              "must be at least 1, got 0",
	}
	err := distributor.CheckSettings(bad, distributor.WithReplier(r), distributor.WithLogger(slog.New(slog.DiscardHandler)))
	if got := problems(t, err); !maps.Equal(got, want) {
		t.Fatalf("CheckSettings problems = %v, want %v", got, want)
	}
	if got := errString(f.d.ValidateSettings(bad)); got != errString(err) {
		t.Fatalf("Distributor.ValidateSettings = %s, want as CheckSettings: %s", got, err)
	}
	err = f.d.SaveSettings(ctx, bad)
	if got := problems(t, err); !maps.Equal(got, want) {
		t.Fatalf("SaveSettings problems = %v, want %v", got, want)
	}
	cur, err := f.d.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cur, good) {
		t.Fatalf("settings in force = %v, want the previous ones %v", cur, good)
	}
	stored, err := f.st.Account(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored.Settings, good) {
		t.Fatalf("stored settings = %v, want the previous ones %v", stored.Settings, good)
	}

	// {manager} where a manager is assigned is fine with this replier.
	fixed := good.Clone()
	fixed.Replies[bd.ManagerAssigned] = "{manager} will answer soon."
	if err := f.d.SaveSettings(ctx, fixed); err != nil {
		t.Fatal(err)
	}
}

// A Replier without a TextChecker (reply.Nop, the default, or one of the
// caller's) leaves the texts to bd.Settings.Validate's checks.
func TestCheckSettingsWithoutTextCheckerUsesTheBuiltInChecks(t *testing.T) {
	s := settingsFor(managerIDs(1), 1)
	s.Replies[bd.NoManagerOnline] = "TODO"                    // fine to the built-in check
	s.Replies[bd.DialogReceived] = "Hello {name}, we got it." // not fine
	want := map[string]string{
		"replies.dialog_received": "unknown placeholder {name}: use {customer}, {customer_first_name}, {manager} or {manager_first_name}",
	}
	if got := problems(t, s.Validate()); !maps.Equal(got, want) {
		t.Fatalf("Validate problems = %v, want %v", got, want)
	}
	for name, opts := range map[string][]distributor.Option{
		"default":        nil,
		"reply.Nop":      {distributor.WithReplier(reply.Nop)},
		"plain replier":  {distributor.WithReplier(plainReplier{})},
		"recorder":       {distributor.WithReplier(replytest.NewRecorder())},
		"other options":  {distributor.WithSweep(time.Minute), distributor.WithoutWorkers()},
		"reply.Template": {distributor.WithReplier(mustTemplate(t))}, // the same check, through the TextChecker
	} {
		if got := problems(t, distributor.CheckSettings(s, opts...)); !maps.Equal(got, want) {
			t.Errorf("%s: problems = %v, want %v", name, got, want)
		}
	}
}

// The built-in template replier refuses through its TextChecker what
// Settings.Validate refuses, with the same messages, without a prefix.
func TestCheckSettingsWithTemplate(t *testing.T) {
	s := settingsFor(managerIDs(1), 1)
	s.Replies[bd.DialogReceived] = "Hello, {client}!"
	s.Replies[bd.ManagerAssigned] = "{manager} will answer, {customer"
	s.Replies[bd.AllManagersBusy] = "[{customer}]"
	err := distributor.CheckSettings(s, distributor.WithReplier(mustTemplate(t)))
	got, want := problems(t, err), problems(t, s.Validate())
	if len(got) != 3 || !maps.Equal(got, want) {
		t.Fatalf("problems = %v, want those of Validate: %v", got, want)
	}
	for field, msg := range got {
		if strings.HasPrefix(msg, "reply") {
			t.Errorf("%s: message %q has a package prefix", field, msg)
		}
	}
}

func TestCheckSettingsInvalidOption(t *testing.T) {
	err := distributor.CheckSettings(settingsFor(managerIDs(1), 1), distributor.WithReplier(nil))
	if _, ok := errors.AsType[*bd.SettingsError](err); ok || err == nil || !strings.Contains(err.Error(), "WithReplier: nil replier") {
		t.Fatalf("CheckSettings(WithReplier(nil)) = %v, want the option's error", err)
	}
}

func mustTemplate(t *testing.T) *reply.Template {
	t.Helper()
	tmpl, err := reply.NewTemplate(replytest.NewRecorder())
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
