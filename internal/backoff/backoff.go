// Package backoff checks the two bounds of a doubling retry wait, as the
// WithBackoff options of the CRM client and of the retailCRM binder's
// retry queue take them.
package backoff

import (
	"fmt"
	"time"
)

// Bounds returns the first wait and the ceiling to use for the given ones:
// zero means the default (defFirst, defCeiling), a ceiling below the first
// wait is raised to it, and a negative duration is an error naming it.
func Bounds(first, ceiling, defFirst, defCeiling time.Duration) (time.Duration, time.Duration, error) {
	if first < 0 {
		return 0, 0, fmt.Errorf("negative first wait %v", first)
	}
	if ceiling < 0 {
		return 0, 0, fmt.Errorf("negative max wait %v", ceiling)
	}
	if first == 0 {
		first = defFirst
	}
	if ceiling == 0 {
		ceiling = defCeiling
	}
	return first, max(first, ceiling), nil
}
