package fleet_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store/memory"
)

// TestIdleCost measures what an idle account costs a fleet that holds it:
// its distributor, MG client, connected websocket and resync loop. The
// accounts' fake MGs run in this process; the fleet runs in a child
// process of its own, which measures itself (runtime.MemStats and the
// goroutine count, after a GC) before the fleet starts and once every
// account's stream connected and resynced. It holds 300 accounts, or as
// many as BOTDISTRIBUTOR_FLEET_IDLE says, and checks the bounds of 1 MiB
// and 5 goroutines per idle account.
func TestIdleCost(t *testing.T) {
	const countEnv, childEnv = "BOTDISTRIBUTOR_FLEET_IDLE", "BOTDISTRIBUTOR_FLEET_IDLE_CHILD"
	if os.Getenv(childEnv) != "" {
		idleChild(t)
		return
	}
	n := 300
	if v := os.Getenv(countEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number of accounts", countEnv, v)
		}
	}
	var spec strings.Builder
	for i := range n {
		m, err := sandbox.NewMG(sandbox.WithSeed(uint64(i + 1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		fmt.Fprintf(&spec, "shop-%03d %s %s\n", i, m.URL(), m.BotToken().Reveal())
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleCost$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdin = strings.NewReader(spec.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var perGoroutines, perBytes float64
	for _, line := range strings.Split(string(out), "\n") {
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "IDLE goroutines/account=%g bytes/account=%g", &perGoroutines, &perBytes); err == nil {
			break
		}
	}
	if perBytes == 0 {
		t.Fatalf("the child reported nothing:\n%s", out)
	}
	t.Logf("%d idle accounts held by one fleet: %.2f goroutines and %.0f KiB per account", n, perGoroutines, perBytes/1024)
	if perGoroutines > 5 {
		t.Errorf("%.2f goroutines per idle account, want at most 5", perGoroutines)
	}
	if perBytes > 1<<20 {
		t.Errorf("%.0f KiB per idle account, want at most 1024", perBytes/1024)
	}
}

func idleChild(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	sc := bufio.NewScanner(os.Stdin)
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		s := settings(1)
		if err := st.SaveAccount(ctx, bd.Account{ID: bd.AccountID(f[0]), MGEndpoint: f[1], MGToken: bd.Secret(f[2]), Settings: s}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	before := measure()
	f, err := fleet.New(st, fleet.WithBuild(fleet.MG()))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(rctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ready := 0
		for _, a := range f.Accounts(ctx) {
			if a.Holder && a.Connected && !a.LastResync.IsZero() {
				ready++
			}
		}
		if ready == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accounts connected and resynced after 2 minutes", ready, n)
		}
		time.Sleep(100 * time.Millisecond) // polling the fleet's state
	}
	after := measure()
	fmt.Printf("IDLE goroutines/account=%g bytes/account=%g\n",
		float64(after.goroutines-before.goroutines)/float64(n), float64(after.bytes-before.bytes)/float64(n))
	fmt.Printf("detail: goroutines %d -> %d, heap+stacks %d -> %d bytes\n", before.goroutines, after.goroutines, before.bytes, after.bytes)
	cancel()
	<-done
}

type usage struct {
	goroutines int
	bytes      int64
}

// measure returns the goroutines and the bytes in use (heap objects and
// goroutine stacks) after a collection.
func measure() usage {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return usage{goroutines: runtime.NumGoroutine(), bytes: int64(m.HeapAlloc + m.StackInuse)}
}
