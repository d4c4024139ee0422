package distributor

import (
	"errors"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/reply"
)

// CheckSettings checks s as a whole exactly as [Distributor.SaveSettings]
// of a Distributor built with opts would, without a Distributor: a
// settings page checks what it is about to save with the configuration
// the account's distributor runs with, also where that distributor does
// not run. It returns one *bd.SettingsError naming every problem, or nil
// when s is valid; an invalid option is an error as from [New].
//
// The options that matter are [WithStrategies] (s.Strategy must be
// registered there; the default is the built-ins of strategy.NewRegistry)
// and [WithReplier]: when the Replier implements [reply.TextChecker],
// every non-empty reply text of every situation goes through its
// CheckText in place of the built-in placeholder check, and each text it
// refuses is a problem of that text's field ("replies.<situation>") with
// the checker's message, without a package prefix. A Replier that is no
// TextChecker (reply.Nop, the default, among them) leaves the texts to
// the checks of bd.Settings.Validate. The other options are ignored.
//
// The checks are those of bd.Settings.ValidateWith, then the strategy
// name.
func CheckSettings(s bd.Settings, opts ...Option) error {
	cfg, err := newConfig(opts)
	if err != nil {
		return err
	}
	return cfg.checkSettings(s)
}

// checkSettings is CheckSettings with the configuration c: what
// Distributor.ValidateSettings and SaveSettings check.
func (c *config) checkSettings(s bd.Settings) error {
	var checkText func(bd.Situation, string) error
	if tc, ok := c.replier.(reply.TextChecker); ok {
		checkText = func(sit bd.Situation, text string) error {
			err := tc.CheckText(sit, text)
			// A *reply.TextError (from reply.Validate) says what is
			// wrong in its Err; its Error adds the package's prefix.
			if te, ok := errors.AsType[*reply.TextError](err); ok && te.Err != nil {
				return te.Err
			}
			return err
		}
	}
	err := s.ValidateWith(checkText)
	if s.Strategy == "" {
		return err
	}
	if _, ok := c.strategies.Lookup(s.Strategy); ok {
		return err
	}
	p := bd.Problem{Field: "strategy", Message: fmt.Sprintf("unknown strategy %q (known: %v)", s.Strategy, c.strategies.Names())}
	if se, ok := errors.AsType[*bd.SettingsError](err); ok {
		se.Problems = append(se.Problems, p)
		return err
	}
	return &bd.SettingsError{Problems: []bd.Problem{p}}
}
