package distributor

import (
	"errors"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/strategy"
)

// CheckSettings checks s as a whole, as [Distributor.SaveSettings] would
// with strategies as its registry, without a Distributor: s.Validate and
// the strategy name, which must be registered in strategies (nil means the
// built-ins of strategy.NewRegistry). Every problem is named in one
// *bd.SettingsError; nil means s is valid. A settings page uses it to
// check what it is about to save for an account that does not run here.
func CheckSettings(s bd.Settings, strategies *strategy.Registry) error {
	if strategies == nil {
		strategies = strategy.NewRegistry()
	}
	err := s.Validate()
	if s.Strategy == "" {
		return err
	}
	if _, ok := strategies.Lookup(s.Strategy); ok {
		return err
	}
	p := bd.Problem{Field: "strategy", Message: fmt.Sprintf("unknown strategy %q (known: %v)", s.Strategy, strategies.Names())}
	var se *bd.SettingsError
	if errors.As(err, &se) {
		se.Problems = append(se.Problems, p)
		return err
	}
	return &bd.SettingsError{Problems: []bd.Problem{p}}
}
