package strategy

import (
	"fmt"
	"reflect"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// idleLonger reports whether a manager last assigned at a has waited longer
// than one last assigned at b. The zero time means never assigned, which is
// longer than any real time, so that new managers get their first dialog
// before anyone gets a second one.
func idleLonger(a, b time.Time) bool {
	switch {
	case a.IsZero():
		return !b.IsZero()
	case b.IsZero():
		return false
	}
	return a.Before(b)
}

// noCandidate is the error of every built-in for a request without candidates.
func noCandidate() error {
	return fmt.Errorf("%w: the request has no candidates", ErrNoCandidate)
}

// contains reports whether m is among cs.
func contains(cs []Candidate, m bd.ManagerID) bool {
	for i := range cs {
		if cs[i].Manager == m {
			return true
		}
	}
	return false
}

// isNil reports whether s is nil or wraps a nil function or pointer, which
// would panic on the first Pick.
func isNil(s Strategy) bool {
	if s == nil {
		return true
	}
	v := reflect.ValueOf(s)
	switch v.Kind() {
	case reflect.Func, reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}
