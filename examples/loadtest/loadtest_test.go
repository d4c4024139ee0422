package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
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
	// A bound, not a wait: settling ends as soon as the dialogs are where
	// they belong. Generous, for a machine busy with other packages' tests
	// under the race detector.
	cfg.Settle = 30 * time.Second
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
	t.Parallel()
	cfg := small(t)
	// Many dialogs at once and capacity 1: concurrent distributors all
	// pick the manager idle longest, the race the baseline loses.
	cfg.Managers, cfg.Capacity, cfg.Dialogs = 10, 1, 100
	cfg.Distributors = 3
	// One worker per fleet: the decisions that race are those of
	// different fleets (a Distributor's own workers pass over a manager
	// one of them is reserving with), and no fleet can take every job
	// while the others wait for the CPU.
	cfg.Workers = 1
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
	t.Parallel()
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

// Dialogs spread over three accounts, each with its own MG (whose dialog
// ids are the same numbers as the others'), served by two fleets sharing
// the memory store: every figure is kept per (account, dialog), each
// account's stream runs in one fleet, and both fleets work.
func TestMemoryAccounts(t *testing.T) {
	t.Parallel()
	cfg := small(t)
	cfg.Accounts, cfg.Distributors = 3, 2
	cfg.Managers, cfg.Capacity, cfg.Dialogs = 2, 2, 60
	// Two workers per fleet and MG 2 ms away: one fleet alone cannot take
	// every job before the other's workers wake, however busy the CPU.
	cfg.Workers, cfg.Latency = 2, 2*time.Millisecond
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkReplies(t, rep.Result)
	// 3 accounts × 2 managers × capacity 2.
	if slots := cfg.Accounts * cfg.Managers * cfg.Capacity; rep.Assigned != slots || rep.Queued != cfg.Dialogs-slots {
		t.Errorf("%d assigned and %d queued, want %d and %d", rep.Assigned, rep.Queued, slots, cfg.Dialogs-slots)
	}
	if rep.Accounts != 3 || rep.AccountOwnersMax != 1 || rep.StreamStarts < 3 {
		t.Errorf("%d accounts, %d holders at once, %d stream starts; want 3, 1 and at least 3", rep.Accounts, rep.AccountOwnersMax, rep.StreamStarts)
	}
	checkShares(t, rep.Result, 2)
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

// postgres returns the small load on a PostgreSQL database of the run's
// own. The PostgreSQL runs stay out of t.Parallel, one after another: a
// run of three worker processes holds some 60 connections, and the
// server's limit (100 by default) is shared with other packages' tests.
// So does the SQLite run (TestSQLite), whose pure-Go database is heavy on
// the CPU under the race detector. The runs on the memory store run side
// by side.
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

// Three worker processes share one database; the account's stream runs in
// one of them at a time, every process's workers do its jobs, and the
// websockets drop twice during the load.
func TestPostgresProcesses(t *testing.T) {
	cfg := postgres(t)
	cfg.Processes = 3
	cfg.WSDrops = 2
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkFilled(t, rep.Result)
	// The stream resyncs when it connects, after every reconnect, and once
	// more at the end, in the one process holding it.
	if rep.Processes != 3 || rep.Reconnects == 0 || rep.Resyncs != rep.StreamStarts+rep.Reconnects+1 {
		t.Errorf("%d processes, %d stream starts, %d reconnects, %d resyncs: want 3 processes, the stream resyncing at every connect and once at the end",
			rep.Processes, rep.StreamStarts, rep.Reconnects, rep.Resyncs)
	}
	if rep.AccountOwnersMax != 1 || !rep.Targets["account_owners_max_1"] {
		t.Errorf("the account's stream ran in %d processes at once, want 1", rep.AccountOwnersMax)
	}
	checkShares(t, rep.Result, 3)
}

// checkShares fails the test unless the work was done by members that
// together assigned every dialog the distributors reported, and (with
// several members) by more than one of them.
func checkShares(t *testing.T, r Result, members int) {
	t.Helper()
	if len(r.Shares) < members {
		t.Errorf("%s: work shares of %d members, want %d: %+v", r.Store, len(r.Shares), members, r.Shares)
		return
	}
	busy, assigned := 0, 0
	for _, sh := range r.Shares {
		if sh.Assignments+sh.Replies > 0 {
			busy++
		}
		assigned += sh.Assignments
	}
	if assigned < r.Assigned {
		t.Errorf("%s: the members' shares add up to %d assignments, %d dialogs were assigned", r.Store, assigned, r.Assigned)
	}
	if members > 1 && busy < 2 {
		t.Errorf("%s: one member did all the work: %+v", r.Store, r.Shares)
	}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-store", "mongo"},
		{"-store", "memory", "-processes", "2"},
		{"-store", "sqlite", "-pg-kill", "1"},
		{"-err5xx", "0.7", "-err429", "0.5"},
		{"-err5xx", "0.5", "-err-applied", "0.6"},
		{"-managers", "0"},
		{"-pg-outage", "2s"},
		{"-store", "sqlite", "-pg-outage", "2s"},
		{"-kill-worker", "1"},
		{"-kill-worker", "-1"},
		{"-workers", "-2"},
		{"-accounts", "0"},
		{"-lease-ttl", "10ms"},
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
	t.Parallel()
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
		"throughput_per_s", "p50_ms", "p99_ms", "fairness", "store", "mode", "processes", "baseline", "targets",
		"stranded_before_resync", "replies_expected", "replies_delivered", "replies_lost", "replies_duplicated",
		"replies_dead", "replies_closed_unsent", "replies_superseded", "workers", "pg_outage_ms", "workers_killed", "settle_mg_rtt_ms",
		"accounts", "account_owners_max", "failover_s_max", "stream_starts", "shares"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
	if obj["dialogs"] != float64(20) || obj["assigned"] != float64(20) || obj["store"] != "memory" || obj["mode"] != "clean" {
		t.Errorf("got %v", obj)
	}
	// 20 dialogs, each greeted and told its manager.
	if obj["replies_expected"] != float64(40) || obj["replies_delivered"] != float64(40) {
		t.Errorf("replies expected %v, delivered %v; want 40 and 40", obj["replies_expected"], obj["replies_delivered"])
	}
}

// Each flag problem is named, and nothing else is.
func TestValidateNamesProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"outage without PostgreSQL", func(c *Config) { c.PGOutage = time.Second }, "-pg-outage needs -store=postgres"},
		{"negative outage", func(c *Config) { c.Store, c.DSN, c.PGOutage = storePostgres, "postgres://x/y", -time.Second }, "-pg-outage must not be negative"},
		{"kill without processes", func(c *Config) { c.Store, c.DSN, c.KillWorker = storePostgres, "postgres://x/y", 1 }, "-kill-worker needs -processes 2 or more"},
		{"negative kills", func(c *Config) { c.KillWorker = -1 }, "-kill-worker must not be negative"},
		{"negative workers", func(c *Config) { c.Workers = -1 }, "-workers must not be negative"},
		{"no account", func(c *Config) { c.Accounts = 0 }, "-accounts must be at least 1, got 0"},
		{"short lease", func(c *Config) { c.LeaseTTL = time.Millisecond }, "-lease-ttl must be at least 40ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if strings.Count(err.Error(), ";") != 0 {
				t.Errorf("more than one problem named: %v", err)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.Store, cfg.DSN, cfg.Processes, cfg.KillWorker, cfg.PGOutage, cfg.Workers = storePostgres, "postgres://x/y", 3, 2, 10*time.Second, 4
	if err := cfg.validate(); err != nil {
		t.Errorf("valid configuration refused: %v", err)
	}
	if got := cfg.mode(); got != "pg-outage=10s+kill-worker=2" {
		t.Errorf("mode = %q", got)
	}
}

func TestOutageStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n      int
		rate   float64
		outage time.Duration
		want   int
	}{
		{1000, 100, 2 * time.Second, 400},  // 10 s load: centred, from 4 s
		{1000, 200, 10 * time.Second, 250}, // 5 s load, longer outage: a quarter in
		{1000, 0, time.Second, 250},        // full speed: a quarter in
		{10, 1000, time.Millisecond, 4},    // 10 ms load, 1 ms outage: centred
		{3000, 200, 10 * time.Second, 750}, // 15 s load, outage over half of it: a quarter in
	} {
		if got := outageStart(tc.n, tc.rate, tc.outage); got != tc.want {
			t.Errorf("outageStart(%d, %v, %s) = %d, want %d", tc.n, tc.rate, tc.outage, got, tc.want)
		}
	}
}

func TestReplyMatcher(t *testing.T) {
	t.Parallel()
	rm, err := newReplyMatcher(settingsFor(nil, 1).Replies)
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]bd.Situation{
		"Hello Customer 12, we got your message.":      bd.DialogReceived,
		"Hello , we got your message.":                 bd.DialogReceived,
		"Manager 3 will answer you.":                   bd.ManagerAssigned,
		"All managers are busy; you are in the queue.": bd.AllManagersBusy,
		"Nobody is online now; we will answer soon.":   bd.NoManagerOnline,
		"We are closed now.":                           bd.OutsideWorkingHours,
		"We are closed now. Really.":                   "",
		"Hello (a manager writing)":                    "",
	} {
		got, ok := rm.match(text)
		if got != want || ok != (want != "") {
			t.Errorf("match(%q) = %q, %t; want %q", text, got, ok, want)
		}
	}
}

// botSays sends a message into the chat as the sandbox's bot does through
// the Bot API.
func botSays(t *testing.T, m *sandbox.MG, chat bd.ChatID, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"chat_id": chat, "scope": "public", "type": "text", "content": text})
	req, err := http.NewRequest(http.MethodPost, m.URL()+mg.APIPrefix+"/messages", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Bot-Token", m.BotToken().Reveal())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /messages: %d", resp.StatusCode)
	}
}

// The accounting tells delivered, duplicated, lost, dead and moot replies
// apart, from the store's claims, the rules and MG's message log.
func TestAccountReplies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	account := accountID(0)
	m, err := sandbox.NewMG()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ch, err := m.AddChannel(ctx, "telegram", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	var ds []sandbox.MGWritten
	for i := range 6 {
		w, err := m.CustomerWrites(ctx, sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: fmt.Sprint("c", i), FirstName: "C", Text: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, w)
	}
	dialogOf := func(i int) bd.DialogID { return ds[i].Dialog }
	st := memory.New()
	claim := func(i int, s bd.Situation) {
		if ok, err := st.ClaimReply(ctx, account, dialogOf(i), s); err != nil || !ok {
			t.Fatalf("claim %d %s: %t %v", i, s, ok, err)
		}
	}
	// 0: greeted and assigned, each once: 2 delivered.
	claim(0, bd.DialogReceived)
	claim(0, bd.ManagerAssigned)
	botSays(t, m, ds[0].Chat, "Hello C, we got your message.")
	botSays(t, m, ds[0].Chat, "Manager 1 will answer you.")
	// ... and its queue reply, claimed before a slot freed, was not sent:
	// superseded.
	claim(0, bd.AllManagersBusy)
	// 1: greeting sent twice: delivered and duplicated.
	claim(1, bd.DialogReceived)
	botSays(t, m, ds[1].Chat, "Hello C, we got your message.")
	botSays(t, m, ds[1].Chat, "Hello C, we got your message.")
	// 2: greeting claimed, never sent, dialog open: lost.
	claim(2, bd.DialogReceived)
	// 3: greeting claimed, never sent, dialog closed: closed unsent.
	claim(3, bd.DialogReceived)
	if err := m.CloseDialog(dialogOf(3)); err != nil {
		t.Fatal(err)
	}
	// 4: waits at the end with "all busy": both replies required, neither
	// claimed; the greeting landed, the queue reply did not (lost,
	// unclaimed); its assigned reply is a dead letter.
	claim(4, bd.ManagerAssigned)
	botSays(t, m, ds[4].Chat, "Hello C, we got your message.")
	// 5: nothing owed, but a queue reply landed: unexpected.
	botSays(t, m, ds[5].Chat, "All managers are busy; you are in the queue.")

	rm, err := newReplyMatcher(settingsFor(nil, 1).Replies)
	if err != nil {
		t.Fatal(err)
	}
	rep := nodeReport{Assignments: []assignment{{Dialog: dialogOf(0), Manager: 1}}}
	waiting := []store.Waiting{{Dialog: bd.Dialog{ID: dialogOf(4)}, Reason: bd.AllManagersBusy}}
	dead := []store.DeadJob{{Job: store.Job{Kind: store.JobReply, Account: account, Dialog: bd.Dialog{ID: dialogOf(4)}, Situation: bd.ManagerAssigned}}}
	ra, err := accountReplies(ctx, m, st, account, rm, rep, waiting, dead, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := replyAccount{expected: 9, delivered: 4, duplicated: 1, lost: 2, dead: 1, closedUnsent: 1, superseded: 1, unclaimed: 2, unexpected: 1}
	ra.examples = nil
	if !reflect.DeepEqual(ra, want) {
		t.Errorf("got %+v\nwant %+v", ra, want)
	}
	// The probe gave back every claim it took: a free reply is still free.
	if ok, err := st.ClaimReply(ctx, account, dialogOf(5), bd.DialogReceived); err != nil || !ok {
		t.Errorf("the probe kept a claim: %t %v", ok, err)
	}
}

// checkReplies fails the test unless every reply owed reached its customer
// exactly once (or its dialog closed first), and the figures add up.
func checkReplies(t *testing.T, r Result) {
	t.Helper()
	if sum := r.RepliesDelivered + r.RepliesLost + r.RepliesDead + r.RepliesClosedUnsent + r.RepliesSuperseded; sum != r.RepliesExpected {
		t.Errorf("%s: delivered %d + lost %d + dead %d + closed unsent %d + superseded %d = %d, want expected %d",
			r.Store, r.RepliesDelivered, r.RepliesLost, r.RepliesDead, r.RepliesClosedUnsent, r.RepliesSuperseded, sum, r.RepliesExpected)
	}
	if r.RepliesLost != 0 || r.RepliesDuplicated != 0 || r.RepliesDead != 0 || r.RepliesUnexpected != 0 {
		t.Errorf("%s: replies lost %d, duplicated %d, dead %d, unexpected %d (%v)",
			r.Store, r.RepliesLost, r.RepliesDuplicated, r.RepliesDead, r.RepliesUnexpected, r.ReplyExamples)
	}
	// Every dialog of the load was distributed, so greeted.
	if r.RepliesExpected < r.Assigned+r.Queued {
		t.Errorf("%s: %d replies expected for %d assigned and %d waiting dialogs", r.Store, r.RepliesExpected, r.Assigned, r.Queued)
	}
}

// Replies under server errors and throttling reach every customer once:
// with no dialog closing, each dialog is greeted and then told its manager
// or why it waits.
func TestMemoryRepliesUnderFaults(t *testing.T) {
	t.Parallel()
	cfg := small(t)
	cfg.Dialogs, cfg.Rate = 60, 100
	cfg.Err5xx, cfg.Err429 = 0.2, 0.1
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkReplies(t, rep.Result)
	// Two replies a dialog (greeting, then assigned or why it waits), and a
	// third for a dialog told it waits after MG refused its assignment.
	// A reply telling why a dialog waits is superseded, not sent, when the
	// dialog was assigned before its job ran; every other one is delivered.
	if least := 2 * cfg.Dialogs; rep.RepliesExpected < least || rep.RepliesDelivered+rep.RepliesSuperseded != rep.RepliesExpected {
		t.Errorf("replies expected %d, delivered %d, superseded %d; want at least %d, all delivered or superseded", rep.RepliesExpected, rep.RepliesDelivered, rep.RepliesSuperseded, least)
	}
	if rep.JobsPending != 0 {
		t.Errorf("%d jobs pending at the end", rep.JobsPending)
	}
}

// Replies and assignments MG applied but answered with an error are not
// sent again: no reply is duplicated, none lost.
func TestMemoryRepliesAppliedThenFailed(t *testing.T) {
	t.Parallel()
	cfg := small(t)
	cfg.Dialogs, cfg.Rate = 60, 100
	cfg.ErrApplied = 0.3
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkReplies(t, rep.Result)
	if rep.Mode != "applied-502=0.3" {
		t.Errorf("mode = %q", rep.Mode)
	}
	// Two replies a dialog (greeting, then assigned or why it waits), and a
	// third for a dialog told it waits after MG refused its assignment.
	// A reply telling why a dialog waits is superseded, not sent, when the
	// dialog was assigned before its job ran; every other one is delivered.
	if least := 2 * cfg.Dialogs; rep.RepliesExpected < least || rep.RepliesDelivered+rep.RepliesSuperseded != rep.RepliesExpected {
		t.Errorf("replies expected %d, delivered %d, superseded %d; want at least %d, all delivered or superseded", rep.RepliesExpected, rep.RepliesDelivered, rep.RepliesSuperseded, least)
	}
}

// Dialogs closing soon after they open: a reply their customer left
// before is not lost; every other one is delivered.
func TestMemoryRepliesClosing(t *testing.T) {
	t.Parallel()
	cfg := small(t)
	cfg.Managers, cfg.Capacity, cfg.Dialogs, cfg.Rate = 4, 2, 80, 100
	cfg.CloseAfter, cfg.CloseShare = 30*time.Millisecond, 0.5
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkReplies(t, rep.Result)
}

// -latency stays in force while the distributors settle, and an
// assignment waits on one MG round trip at least.
func TestLatencyWholeRun(t *testing.T) {
	t.Parallel()
	cfg := small(t)
	cfg.Managers, cfg.Capacity, cfg.Dialogs, cfg.Rate = 4, 10, 20, 100
	cfg.Latency = 20 * time.Millisecond
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkReplies(t, rep.Result)
	if rep.SettleMGRttMs < 20 {
		t.Errorf("a Bot API round trip after settling took %.1f ms: the 20 ms latency was lifted", rep.SettleMGRttMs)
	}
	if rep.P50Ms < 20 {
		t.Errorf("event->assign p50 %.1f ms is below the MG latency of 20 ms", rep.P50Ms)
	}
}

// The distributors' connections are terminated again and again for a
// while; no dialog or reply is lost.
func TestPostgresOutage(t *testing.T) {
	cfg := postgres(t)
	cfg.Dialogs, cfg.Rate = 60, 60
	cfg.PGOutage = 500 * time.Millisecond
	cfg.Settle = 20 * time.Second
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkFilled(t, rep.Result)
	checkReplies(t, rep.Result)
	if rep.PGOutageKilled == 0 || rep.PGOutageMs != 500 {
		t.Errorf("outage of %.0f ms terminated %d backends", rep.PGOutageMs, rep.PGOutageKilled)
	}
}

// A worker process killed with SIGKILL mid-load is replaced, and the run
// is reported in full. With a lease TTL of 1 s the account's stream, when
// the killed process ran it, is taken over within this test's settling,
// and the jobs the killed process was running are given back then.
func TestPostgresKillWorker(t *testing.T) {
	cfg := postgres(t)
	cfg.Processes = 2
	cfg.Dialogs, cfg.Rate = 60, 60
	cfg.KillWorker = 1
	cfg.LeaseTTL = time.Second
	cfg.Settle = 3 * time.Second
	rep := run(t, cfg)
	r := rep.Result
	if r.WorkersKilled != 1 || r.WorkersRestarted != 1 || r.WorkerRestartMaxMs <= 0 {
		t.Errorf("%d workers killed, %d restarted (in %.0f ms); want 1 and 1", r.WorkersKilled, r.WorkersRestarted, r.WorkerRestartMaxMs)
	}
	if r.Mode != "kill-worker=1" {
		t.Errorf("mode = %q", r.Mode)
	}
	if r.CapViolations != 0 || r.DoubleAssignments != 0 || r.RepliesDuplicated != 0 {
		t.Errorf("%d over capacity, %d double, %d replies duplicated", r.CapViolations, r.DoubleAssignments, r.RepliesDuplicated)
	}
	if r.Assigned != cfg.Managers*cfg.Capacity {
		t.Errorf("%d assigned, want every one of the %d slots taken", r.Assigned, cfg.Managers*cfg.Capacity)
	}
	if r.AccountOwnersMax != 1 || r.FailoversUntaken != 0 || r.FailoverSMax > FailoverTargetS {
		t.Errorf("stream holders at once %d; %d takeovers, %d accounts not taken over, longest %.2f s",
			r.AccountOwnersMax, r.Failovers, r.FailoversUntaken, r.FailoverSMax)
	}
	if sum := r.RepliesDelivered + r.RepliesLost + r.RepliesDead + r.RepliesClosedUnsent + r.RepliesSuperseded; sum != r.RepliesExpected || r.RepliesExpected == 0 {
		t.Errorf("replies: %d accounted for, %d expected", sum, r.RepliesExpected)
	}
	t.Logf("after the kill: %d stranded (%d before the final resync), %d replies lost, %d jobs pending",
		r.Stranded, r.StrandedBeforeResync, r.RepliesLost, r.JobsPending)
}

// Routing with retailCRM cards and escalation steps under MG's latency:
// every dialog is assigned (the first step's group holds fewer slots than
// there are dialogs, so some move on to everyone), within the invariants.
func TestMemoryRoutingWithCardsAndSteps(t *testing.T) {
	t.Parallel()
	cfg := small(t)
	cfg.Managers, cfg.Capacity, cfg.Dialogs, cfg.Rate = 4, 10, 30, 100
	cfg.Latency = 20 * time.Millisecond
	cfg.Routing = true
	rep := run(t, cfg)
	checkInvariants(t, rep.Result)
	checkReplies(t, rep.Result)
	if rep.Assigned != cfg.Dialogs {
		t.Errorf("%d assigned, want all %d", rep.Assigned, cfg.Dialogs)
	}
	if !strings.Contains(rep.Mode, "routing") {
		t.Errorf("mode = %q", rep.Mode)
	}
}
