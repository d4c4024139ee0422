// Package leakcheck finds goroutines a test left running. It is for the
// project's own tests.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Snapshot is the set of goroutines alive at one moment.
type Snapshot map[string]string

// Take returns the goroutines alive now, by id, with their stacks.
func Take() Snapshot {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := make(Snapshot)
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		id, _, _ := strings.Cut(strings.TrimPrefix(header, "goroutine "), " ")
		out[id] = g
	}
	return out
}

// Extra returns the stacks of goroutines alive now that were not in s,
// waiting up to grace for them to exit (connections close asynchronously).
func (s Snapshot) Extra(grace time.Duration) []string {
	deadline := time.Now().Add(grace)
	for {
		var extra []string
		for id, stack := range Take() {
			if _, ok := s[id]; !ok {
				extra = append(extra, stack)
			}
		}
		if len(extra) == 0 || time.Now().After(deadline) {
			return extra
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Check records the goroutines alive now and, when the test and every
// cleanup registered after this call have finished, fails the test if
// others are still alive after five seconds. Call it first.
func Check(t testing.TB) {
	t.Helper()
	before := Take()
	t.Cleanup(func() {
		if extra := before.Extra(5 * time.Second); len(extra) > 0 {
			t.Errorf("%d goroutines leaked:\n\n%s", len(extra), strings.Join(extra, "\n\n"))
		}
	})
}
