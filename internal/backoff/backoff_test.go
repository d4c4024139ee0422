package backoff

import (
	"testing"
	"time"
)

func TestBounds(t *testing.T) {
	const s = time.Second
	cases := []struct {
		first, ceiling, wantFirst, wantCeiling time.Duration
		wantErr                                bool
	}{
		{0, 0, 2 * s, 60 * s, false},
		{5 * s, 0, 5 * s, 60 * s, false},
		{0, 10 * s, 2 * s, 10 * s, false},
		{30 * s, 10 * s, 30 * s, 30 * s, false}, // a ceiling below the first wait is raised
		{-s, 0, 0, 0, true},
		{0, -s, 0, 0, true},
	}
	for _, c := range cases {
		f, m, err := Bounds(c.first, c.ceiling, 2*s, 60*s)
		if (err != nil) != c.wantErr || f != c.wantFirst || m != c.wantCeiling {
			t.Errorf("Bounds(%v, %v) = %v, %v, %v; want %v, %v, error %v", c.first, c.ceiling, f, m, err, c.wantFirst, c.wantCeiling, c.wantErr)
		}
	}
}
