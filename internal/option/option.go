// Package option applies functional options, the one way the module's
// constructors take what is optional: each package has its own Option
// type whose values check their own argument, and its constructor hands
// them to Apply.
package option

import "errors"

// Apply calls apply with each option in order and returns every refusal,
// joined, or nil. A nil option is a refusal too ("nil option"), never a
// panic.
func Apply[O any](opts []O, apply func(O) error) error {
	var errs []error
	for _, o := range opts {
		if any(o) == nil {
			errs = append(errs, errors.New("nil option"))
			continue
		}
		if err := apply(o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
