package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as a worker process: the
// multi-process run re-executes os.Executable(), which is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(workerMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// logWriter sends the harness's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// small is a load of a second or two: customers write as fast as they
// can into more dialogs than there are slots, so that distributors compete
// for the last free slots and the rest wait.
func small(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Managers, cfg.Capacity, cfg.Dialogs, cfg.Rate = 4, 2, 60, 0
	cfg.Baseline = false
	cfg.RawUpdate = 200 * time.Millisecond
	cfg.Settle = 5 * time.Second
	cfg.Log = logWriter{t}
	return cfg
}

// checkFilled fails the test unless every slot was taken and every other
// dialog waits (the load of small, where no dialog closes).
func checkFilled(t *testing.T, r Result) {
	t.Helper()
	if slots := r.Managers * r.Capacity; r.Assigned != slots || r.Queued != r.Dialogs-slots {
		t.Errorf("%s: %d assigned and %d queued, want %d and %d", r.Store, r.Assigned, r.Queued, slots, r.Dialogs-slots)
	}
}

func run(t *testing.T, cfg Config) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(rep)
	t.Logf("report: %s", out)
	return rep
}

// checkInvariants fails the test unless the run kept every invariant.
func checkInvariants(t *testing.T, r Result) {
	t.Helper()
	if r.Stranded != 0 {
		t.Errorf("%s: %d dialogs stranded", r.Store, r.Stranded)
	}
	if r.CapViolations != 0 {
		t.Errorf("%s: %d managers above capacity (worst by %d)", r.Store, r.CapViolations, r.CapExcessMax)
	}
	if r.DoubleAssignments != 0 {
		t.Errorf("%s: %d dialogs assigned twice", r.Store, r.DoubleAssignments)
	}
	if r.Mismatched != 0 {
		t.Errorf("%s: %d open dialogs have another responsible in the store than in MG", r.Store, r.Mismatched)
	}
	if r.QueuedWithFreeSlot != 0 {
		t.Errorf("%s: %d dialogs wait although a manager has a free slot", r.Store, r.QueuedWithFreeSlot)
	}
	if r.Assigned == 0 {
		t.Errorf("%s: no dialog assigned", r.Store)
	}
	if r.Samples == 0 {
		t.Errorf("%s: capacity never sampled", r.Store)
	}
}

// The memory store keeps every invariant, and the naive baseline run
// beside it breaks capacity: the harness detects a read-then-write race.
func TestMemoryAndBaseline(t *testing.T) {
	cfg := small(t)
	// Many dialogs at once and capacity 1: concurrent distributors all
	// pick the manager idle longest, the race the baseline loses.
	cfg.Managers, cfg.Capacity, cfg.Dialogs = 10, 1, 100
	cfg.Distributors = 3
	cfg.Baseline = true
	cfg.BaselineYield = 5 * time.Millisecond
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkFilled(t, rep.Result)
	if rep.Baseline == nil {
		t.Fatal("no baseline result")
	}
	if rep.Baseline.CapViolations == 0 {
		t.Errorf("the baseline kept capacity: the harness did not expose its read-then-write race")
	}
	if rep.Baseline.Stranded != 0 {
		t.Errorf("baseline: %d stranded", rep.Baseline.Stranded)
	}
	if !rep.BaselineRaceExposed || !rep.Targets["cap_violations_0"] {
		t.Errorf("race exposed %t, targets %v", rep.BaselineRaceExposed, rep.Targets)
	}
}

// Websocket drops, server errors and throttling on the memory store, with
// half the dialogs closing so that slots free and waiting dialogs move up.
func TestMemoryFaults(t *testing.T) {
	cfg := small(t)
	cfg.Managers, cfg.Capacity, cfg.Dialogs, cfg.Rate = 5, 2, 80, 50
	cfg.CloseAfter, cfg.CloseShare = 400*time.Millisecond, 0.5
	cfg.Distributors = 2
	cfg.WSDrops, cfg.Err5xx, cfg.Err429 = 2, 0.05, 0.02
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	if rep.Mode != "ws-drops=2+5xx=0.05+429=0.02" {
		t.Errorf("mode = %q", rep.Mode)
	}
	// Every dialog that never closes is either assigned or waiting.
	if stay := cfg.Dialogs / 2; rep.Open != stay {
		t.Errorf("%d dialogs open at the end, want %d", rep.Open, stay)
	}
}

func TestSQLite(t *testing.T) {
	cfg := small(t)
	cfg.Store = storeSQLite
	cfg.Distributors = 2
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkFilled(t, rep.Result)
	if rep.RawUpdatePerS <= 0 || rep.Ratio <= 0 {
		t.Errorf("raw update rate %v, ratio %v: not measured", rep.RawUpdatePerS, rep.Ratio)
	}
}

func postgres(t *testing.T) Config {
	if os.Getenv(postgresEnv) == "" {
		t.Skip("PostgreSQL runs need a database: set " + postgresEnv +
			" to its DSN, e.g. " + postgresEnv + "='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'")
	}
	cfg := small(t)
	cfg.Store = storePostgres
	return cfg
}

func TestPostgres(t *testing.T) {
	cfg := postgres(t)
	cfg.Distributors = 2
	cfg.PGKill = 1
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkFilled(t, rep.Result)
	if rep.PGKilled == 0 {
		t.Errorf("no PostgreSQL connection was terminated")
	}
}

// Three worker processes share one schema; each sees every event, and the
// websockets drop twice during the load.
func TestPostgresProcesses(t *testing.T) {
	cfg := postgres(t)
	cfg.Processes = 3
	cfg.WSDrops = 2
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkFilled(t, rep.Result)
	// Each process resyncs when it connects, after every reconnect, and
	// once more at the end.
	if rep.Processes != 3 || rep.Reconnects == 0 || rep.Resyncs != 2*3+rep.Reconnects {
		t.Errorf("%d processes, %d reconnects, %d resyncs: want 3 processes resyncing twice each and after every reconnect",
			rep.Processes, rep.Reconnects, rep.Resyncs)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-store", "mongo"},
		{"-store", "memory", "-processes", "2"},
		{"-store", "sqlite", "-pg-kill", "1"},
		{"-err5xx", "0.7", "-err429", "0.5"},
		{"-managers", "0"},
		{"extra"},
	} {
		var out, errs bytes.Buffer
		if code := runMain(args, &out, &errs); code != 2 {
			t.Errorf("%q: exit code %d, want 2", args, code)
		}
		if errs.Len() == 0 {
			t.Errorf("%q: nothing said on stderr", args)
		}
		if out.Len() != 0 {
			t.Errorf("%q: printed %q on stdout", args, out.String())
		}
	}
}

// -json prints exactly one JSON object with the documented fields.
func TestJSONOutput(t *testing.T) {
	var out, errs bytes.Buffer
	code := runMain([]string{"-json", "-dialogs", "20", "-managers", "4", "-capacity", "10", "-rate", "0"}, &out, &errs)
	if code != 0 && code != 1 {
		t.Fatalf("exit code %d: %s", code, errs.String())
	}
	dec := json.NewDecoder(&out)
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Error("more than one JSON value printed")
	}
	for _, k := range []string{"dialogs", "assigned", "queued", "stranded", "cap_violations", "double_assignments",
		"throughput_per_s", "p50_ms", "p99_ms", "fairness", "store", "mode", "processes", "baseline", "targets"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
	if obj["dialogs"] != float64(20) || obj["assigned"] != float64(20) || obj["store"] != "memory" || obj["mode"] != "clean" {
		t.Errorf("got %v", obj)
	}
}
