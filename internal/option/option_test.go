package option

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

type opt interface{ set(*[]string) error }

type named string

func (n named) set(dst *[]string) error {
	if n == "bad" {
		return errors.New("bad refused")
	}
	*dst = append(*dst, string(n))
	return nil
}

func TestApply(t *testing.T) {
	var got []string
	apply := func(o opt) error { return o.set(&got) }
	if err := Apply([]opt{named("a"), named("b")}, apply); err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Apply(a, b) = %v with %v applied, want nil with [a b]", err, got)
	}
	got = nil
	err := Apply([]opt{named("a"), nil, named("bad"), named("c")}, apply)
	if err == nil || !strings.Contains(err.Error(), "nil option") || !strings.Contains(err.Error(), "bad refused") {
		t.Fatalf("Apply with a nil and a refused option = %v, want both named", err)
	}
	if !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("applied %v, want the valid options [a c] still applied", got)
	}
	if err := Apply[opt](nil, apply); err != nil {
		t.Fatalf("Apply(nil) = %v, want nil", err)
	}
}
