package strategy

import (
	"fmt"
	"reflect"

	bd "github.com/botdistributor/botdistributor"
)

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
