// Command loadtest drives customers through the sandbox MessageGateway
// against real distributors and checks the invariants under load and
// faults: no dialog stranded, no manager above capacity, no dialog with two
// responsibles. It measures throughput, the time from a dialog's opening to
// its assignment, and the fairness of round robin, and runs the same load
// against a deliberately naive baseline store beside it.
//
// Usage:
//
//	go run ./examples/loadtest [flags]
//
// The distributors run in fleets (package fleet): each fleet hosts every
// account, does every account's jobs with one worker set, and runs the
// event streams of the accounts whose lease it holds. With -accounts N the
// dialogs are spread over N accounts, each with a sandbox MG of its own
// served by this process. With -store=postgres -processes N the program
// starts N worker processes (itself, re-executed) that share one
// PostgreSQL database, each with its own fleet, pool and MG clients; the
// accounts' streams are leased to them, one holder at a time. README.md
// describes every figure the program prints.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"
)

func main() {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(workerMain(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runMain parses the flags, runs the load and prints the report. It returns the
// exit code: 0 when every target was met, 1 when one was not, 2 for bad
// flags or a run that could not be carried out.
func runMain(args []string, stdout, stderr io.Writer) int {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Store, "store", cfg.Store, "store: memory, sqlite or postgres")
	fs.StringVar(&cfg.DSN, "dsn", "", "PostgreSQL DSN (default $"+postgresEnv+"; a fresh schema is created and dropped), or SQLite file (default a temporary file)")
	fs.IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "accounts the dialogs are spread over, each with its own MG, bot token and managers")
	fs.IntVar(&cfg.Managers, "managers", cfg.Managers, "equal online managers per account")
	fs.IntVar(&cfg.Capacity, "capacity", cfg.Capacity, "maximum open dialogs per manager")
	fs.IntVar(&cfg.Dialogs, "dialogs", cfg.Dialogs, "dialogs to open, one customer each")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "dialogs opened per second (0: as fast as the writers can)")
	fs.IntVar(&cfg.Writers, "writers", cfg.Writers, "customers writing at the same time")
	fs.IntVar(&cfg.Processes, "processes", cfg.Processes, "distributor OS processes sharing PostgreSQL")
	fs.IntVar(&cfg.Distributors, "distributors", cfg.Distributors, "fleets per process, each a lease member with its own worker set, MG clients and streams")
	fs.DurationVar(&cfg.LeaseTTL, "lease-ttl", 0, "the fleets' lease TTL (0: the fleet's default, 8s)")
	fs.DurationVar(&cfg.CloseAfter, "close-after", 0, "close every dialog this long after it opened (0: never)")
	fs.Float64Var(&cfg.CloseShare, "close-share", cfg.CloseShare, "share of dialogs -close-after closes (the others stay open to the end)")
	fs.IntVar(&cfg.WSDrops, "ws-drops", 0, "times every websocket is cut during the load")
	fs.Float64Var(&cfg.Err5xx, "err5xx", 0, "share of Bot API requests answered 5xx during the load")
	fs.Float64Var(&cfg.Err429, "err429", 0, "share of Bot API requests answered 429 during the load")
	fs.Float64Var(&cfg.ErrApplied, "err-applied", 0, "share of Bot API requests served and then answered 502 during the load (the answer lost)")
	fs.DurationVar(&cfg.Latency, "latency", 0, "added latency of every Bot API request during the load")
	fs.BoolVar(&cfg.Routing, "routing", false, "route with retailCRM cards (personal managers, priority customers; read at 10/s per account) and escalation steps")
	fs.IntVar(&cfg.PGKill, "pg-kill", 0, "times the distributors' PostgreSQL connections are terminated during the load")
	fs.DurationVar(&cfg.PGOutage, "pg-outage", 0, "terminate the distributors' PostgreSQL connections every 50-100 ms for this long in the middle of the load")
	fs.IntVar(&cfg.KillWorker, "kill-worker", 0, "times a worker process (-processes) is killed with SIGKILL during the load and started again")
	fs.IntVar(&cfg.Workers, "workers", 0, "jobs each fleet works at once (0: the library's default)")
	fs.StringVar(&cfg.CPUProfile, "worker-cpuprofile", "", "with -processes: each worker process writes its CPU profile to this path plus its process id")
	fs.DurationVar(&cfg.Sweep, "sweep", cfg.Sweep, "the fleets' sweep interval (safety-net drain of the accounts held)")
	fs.DurationVar(&cfg.Settle, "settle", cfg.Settle, "longest wait for the distributors to catch up after the load and after the final resync")
	fs.DurationVar(&cfg.Sample, "sample", cfg.Sample, "interval between capacity samples")
	fs.DurationVar(&cfg.RawUpdate, "raw-update", cfg.RawUpdate, "duration of the raw single-row UPDATE loop (SQL stores)")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the injected faults")
	fs.BoolVar(&cfg.Baseline, "baseline", cfg.Baseline, "also run the load against the naive read-then-write baseline store")
	fs.IntVar(&cfg.BaselineDistributors, "baseline-distributors", cfg.BaselineDistributors, "fleets sharing the baseline store")
	fs.DurationVar(&cfg.BaselineYield, "baseline-yield", cfg.BaselineYield, "the baseline's pause between reading a load and writing")
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile (the sandbox, the load and, without -processes, the distributors) to this file")
	asJSON := fs.Bool("json", false, "print exactly one JSON object")
	verbose := fs.Bool("v", false, "print progress on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadtest: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *verbose {
		cfg.Log = stderr
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "loadtest:", err)
			return 2
		}
	} else {
		rep.print(stdout)
	}
	for _, met := range rep.Targets {
		if !met {
			return 1
		}
	}
	return 0
}
