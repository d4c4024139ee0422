package distributor_test

import (
	"errors"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
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
			err := distributor.CheckSettings(s, tt.registry)
			d, derr := distributor.New("acc", memory.New(), &distributortest.Gateway{}, distributor.WithStrategies(orBuiltIn(tt.registry)), distributor.WithoutWorkers())
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

func orBuiltIn(r *strategy.Registry) *strategy.Registry {
	if r == nil {
		return strategy.NewRegistry()
	}
	return r
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
