package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/botdistributor/botdistributor/internal/leakcheck"
)

// The demo command runs for a short while in-process and its summary
// shows no capacity violation and every dialog assigned or waiting (run
// returns an error otherwise).
func TestDemo(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"--demo", "--demo-duration", "2500ms"}, envOf(nil), &out, io.Discard); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	number := func(pattern string) int {
		t.Helper()
		m := regexp.MustCompile(pattern).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("the summary lacks %q", pattern)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	opened := number(`dialogs opened\s+(\d+)`)
	assigned := number(`\n  assigned\s+(\d+)`)
	if opened == 0 || assigned == 0 {
		t.Fatalf("opened %d, assigned %d: the demo did nothing", opened, assigned)
	}
	if v := number(`capacity violations\s+(\d+)`); v != 0 {
		t.Fatalf("%d capacity violations", v)
	}
	if u := number(`neither assigned nor waiting\s+(\d+)`); u != 0 {
		t.Fatalf("%d dialogs neither assigned nor waiting", u)
	}
	if n := number(`\[\s*(\d+)\.\d+s\] opened`); n < 1 {
		t.Fatal("no progress line")
	}
}
