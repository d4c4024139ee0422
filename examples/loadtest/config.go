package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The stores a run can use.
const (
	storeMemory   = "memory"
	storeSQLite   = "sqlite"
	storePostgres = "postgres"
	// storeBaseline is the deliberately wrong store of the baseline run;
	// it cannot be chosen with -store.
	storeBaseline = "baseline"
)

// postgresEnv names the environment variable read for the PostgreSQL DSN
// when -dsn is empty.
const postgresEnv = "BOTDISTRIBUTOR_TEST_POSTGRES"

// Config is one load run: the workload, the store, the faults, and whether
// the naive baseline runs the same workload afterwards.
type Config struct {
	// Store is memory, sqlite or postgres.
	Store string
	// DSN is the PostgreSQL connection string (a fresh schema is created in
	// that database and dropped afterwards), or the SQLite file path (empty
	// means a temporary file). Empty for postgres means $BOTDISTRIBUTOR_TEST_POSTGRES.
	DSN string
	// Accounts is how many accounts share the load, each with an MG of its
	// own (its own bot token and event stream), Managers managers of its
	// own and its own settings; dialog i opens in account i mod Accounts.
	Accounts int
	// Managers is how many equal, online managers take dialogs in each
	// account.
	Managers int
	// Capacity is every manager's maximum of open dialogs.
	Capacity int
	// Dialogs is how many customers open a dialog.
	Dialogs int
	// Rate is how many dialogs open per second; 0 opens them as fast as
	// Writers customers can write.
	Rate float64
	// Writers is how many customers write at the same time.
	Writers int
	// Processes is how many distributor OS processes share the store
	// (PostgreSQL only): the program re-executes itself as workers.
	Processes int
	// Distributors is how many fleets run in each process, sharing the
	// process's store: each is a lease member of its own (the accounts'
	// streams are spread over every member of every process), with its own
	// worker set doing every account's jobs, and its own distributor and MG
	// client per account.
	Distributors int
	// LeaseTTL is the fleets' lease TTL (fleet.WithLeaseTTL); 0 means the
	// fleet's default. A killed process's accounts are taken over within
	// the TTL and a quarter of it.
	LeaseTTL time.Duration
	// Workers is how many jobs each distributor works at once
	// (distributor.WithWork); 0 means the library's default.
	Workers int
	// CPUProfile, with worker processes, is where each writes its CPU
	// profile (its process id appended).
	CPUProfile string
	// CloseAfter, when positive, closes every dialog this long after it
	// opened, so capacity frees and the queue moves.
	CloseAfter time.Duration
	// CloseShare is the share (0..1) of dialogs CloseAfter closes, spread
	// evenly; the others stay open to the end, where they must be assigned
	// or waiting.
	CloseShare float64

	// WSDrops is how many times every websocket is cut during the load.
	WSDrops int
	// Err5xx and Err429 are the shares of Bot API requests answered with a
	// server error or with 429 during the load.
	Err5xx, Err429 float64
	// ErrApplied is the share of Bot API requests MG serves and then
	// answers with 502, as when its answer is lost: the message was
	// posted, the dialog assigned, and the client cannot tell.
	ErrApplied float64
	// Latency delays every Bot API request during the load.
	Latency time.Duration
	// Routing routes with retailCRM's knowledge: every third customer has
	// a personal manager (waited for 1 s), every fifth is a priority
	// customer, and the default rule offers a dialog to the first half of
	// the managers for 1 s before everyone. The cards come from a fake
	// retailCRM that serves 10 reads a second per account, as the real
	// one does per key, each after -latency.
	Routing bool
	// PGKill is how many times the distributors' PostgreSQL connections are
	// terminated (pg_terminate_backend) during the load.
	PGKill int
	// PGOutage, when positive, is how long the distributors' PostgreSQL
	// connections are terminated again and again (every 50 to 100 ms), in
	// the middle of the load: the database is unusable for them that long.
	PGOutage time.Duration
	// KillWorker is how many times a worker process (-processes) is killed
	// with SIGKILL during the load and started again.
	KillWorker int

	// Sweep is the distributors' safety-net drain interval.
	Sweep time.Duration
	// Settle bounds the waits for the distributors to catch up after the
	// load and after the final resync.
	Settle time.Duration
	// Sample is the interval between capacity samples.
	Sample time.Duration
	// RawUpdate is how long the raw single-row UPDATE loop runs (SQL stores).
	RawUpdate time.Duration
	// Seed seeds the injected faults.
	Seed uint64

	// Baseline runs the same workload against the naive baseline store.
	Baseline bool
	// BaselineDistributors is how many in-process distributors share the
	// baseline store (the race needs concurrent writers).
	BaselineDistributors int
	// BaselineYield is the pause between the baseline's read and write.
	BaselineYield time.Duration

	// Log receives progress and diagnostics; nil discards them.
	Log io.Writer
}

// DefaultConfig returns the configuration the flags start from.
func DefaultConfig() Config {
	return Config{
		Store:                storeMemory,
		Accounts:             1,
		Managers:             20,
		Capacity:             10,
		Dialogs:              1000,
		Rate:                 200,
		Writers:              8,
		Processes:            1,
		Distributors:         1,
		CloseShare:           1,
		Sweep:                250 * time.Millisecond,
		Settle:               20 * time.Second,
		Sample:               20 * time.Millisecond,
		RawUpdate:            time.Second,
		Seed:                 1,
		Baseline:             true,
		BaselineDistributors: 3,
		BaselineYield:        200 * time.Microsecond,
	}
}

// validate checks the configuration as a whole and fills in the DSN of
// PostgreSQL from the environment. Every problem is named.
func (c *Config) validate() error {
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	switch c.Store {
	case storeMemory, storeSQLite:
	case storePostgres:
		if c.DSN == "" {
			c.DSN = os.Getenv(postgresEnv)
		}
		if c.DSN == "" {
			add("-store=postgres needs -dsn or $%s", postgresEnv)
		}
	default:
		add("-store must be memory, sqlite or postgres, got %q", c.Store)
	}
	if c.Store == storeMemory && c.DSN != "" {
		add("-dsn means nothing with -store=memory")
	}
	if c.Accounts < 1 {
		add("-accounts must be at least 1, got %d", c.Accounts)
	}
	if c.LeaseTTL < 0 {
		add("-lease-ttl must not be negative, got %s", c.LeaseTTL)
	} else if c.LeaseTTL > 0 && c.LeaseTTL < 40*time.Millisecond {
		add("-lease-ttl must be at least 40ms, got %s", c.LeaseTTL)
	}
	if c.Managers < 1 {
		add("-managers must be at least 1, got %d", c.Managers)
	}
	if c.Capacity < 1 {
		add("-capacity must be at least 1, got %d", c.Capacity)
	}
	if c.Dialogs < 1 {
		add("-dialogs must be at least 1, got %d", c.Dialogs)
	}
	if c.Rate < 0 {
		add("-rate must not be negative, got %v", c.Rate)
	}
	if c.Writers < 1 {
		add("-writers must be at least 1, got %d", c.Writers)
	}
	if c.Processes < 1 {
		add("-processes must be at least 1, got %d", c.Processes)
	}
	if c.Processes > 1 && c.Store != storePostgres {
		add("-processes %d needs -store=postgres: only PostgreSQL is shared between processes", c.Processes)
	}
	if c.Distributors < 1 {
		add("-distributors must be at least 1, got %d", c.Distributors)
	}
	if c.CloseAfter < 0 {
		add("-close-after must not be negative, got %s", c.CloseAfter)
	}
	if c.CloseShare < 0 || c.CloseShare > 1 {
		add("-close-share must be within 0..1, got %v", c.CloseShare)
	}
	if c.WSDrops < 0 || c.PGKill < 0 {
		add("-ws-drops and -pg-kill must not be negative")
	}
	if c.PGKill > 0 && c.Store != storePostgres {
		add("-pg-kill needs -store=postgres")
	}
	if c.PGOutage < 0 {
		add("-pg-outage must not be negative, got %s", c.PGOutage)
	}
	if c.PGOutage > 0 && c.Store != storePostgres {
		add("-pg-outage needs -store=postgres")
	}
	if c.KillWorker < 0 {
		add("-kill-worker must not be negative, got %d", c.KillWorker)
	}
	if c.KillWorker > 0 && c.Processes < 2 {
		add("-kill-worker needs -processes 2 or more (worker processes to kill), got -processes %d", c.Processes)
	}
	if c.Workers < 0 {
		add("-workers must not be negative, got %d", c.Workers)
	}
	if c.Err5xx < 0 || c.Err5xx > 1 || c.Err429 < 0 || c.Err429 > 1 || c.ErrApplied < 0 || c.ErrApplied > 1 ||
		c.Err5xx+c.Err429+c.ErrApplied > 1 {
		add("-err5xx, -err429 and -err-applied must be within 0..1 and sum to at most 1, got %v, %v and %v", c.Err5xx, c.Err429, c.ErrApplied)
	}
	if c.Latency < 0 {
		add("-latency must not be negative, got %s", c.Latency)
	}
	if c.Sweep <= 0 || c.Settle <= 0 || c.Sample <= 0 {
		add("-sweep, -settle and -sample must be positive")
	}
	if c.RawUpdate < 0 {
		add("-raw-update must not be negative, got %s", c.RawUpdate)
	}
	if c.Baseline && c.BaselineDistributors < 1 {
		add("-baseline-distributors must be at least 1, got %d", c.BaselineDistributors)
	}
	if c.BaselineYield < 0 {
		add("-baseline-yield must not be negative, got %s", c.BaselineYield)
	}
	if len(ps) > 0 {
		return errors.New("loadtest: " + strings.Join(ps, "; "))
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// mode names the faults of the run, e.g. "ws-drops=2+5xx=0.1", or "clean".
func (c *Config) mode() string {
	var fs []string
	if c.WSDrops > 0 {
		fs = append(fs, fmt.Sprintf("ws-drops=%d", c.WSDrops))
	}
	if c.Err5xx > 0 {
		fs = append(fs, fmt.Sprintf("5xx=%g", c.Err5xx))
	}
	if c.Err429 > 0 {
		fs = append(fs, fmt.Sprintf("429=%g", c.Err429))
	}
	if c.ErrApplied > 0 {
		fs = append(fs, fmt.Sprintf("applied-502=%g", c.ErrApplied))
	}
	if c.Latency > 0 {
		fs = append(fs, "latency="+c.Latency.String())
	}
	if c.Routing {
		fs = append(fs, "routing")
	}
	if c.PGKill > 0 {
		fs = append(fs, fmt.Sprintf("pg-kill=%d", c.PGKill))
	}
	if c.PGOutage > 0 {
		fs = append(fs, "pg-outage="+c.PGOutage.String())
	}
	if c.KillWorker > 0 {
		fs = append(fs, fmt.Sprintf("kill-worker=%d", c.KillWorker))
	}
	if len(fs) == 0 {
		return "clean"
	}
	return strings.Join(fs, "+")
}
