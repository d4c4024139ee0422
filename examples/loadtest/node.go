package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/store"
)

// workerEnv is set in the environment of a worker process: the program
// (or the test binary) then runs as a worker instead of a load run.
const workerEnv = "BOTDISTRIBUTOR_LOADTEST_WORKER"

// nodeSpec tells a node (the fleets of one process) how to run. The
// accounts themselves, with their MG endpoints and bot tokens, are in the
// store, where the fleets read them.
type nodeSpec struct {
	// Accounts are the accounts of the run: a node is ready once its
	// fleets built every one of them.
	Accounts []bd.AccountID `json:"accounts"`
	// Fleets is how many fleets the node runs (-distributors), each a
	// lease member with its own worker set, MG clients and streams.
	Fleets int           `json:"fleets"`
	Sweep  time.Duration `json:"sweep"`
	// Workers is each fleet's job workers (0: the default).
	Workers int `json:"workers,omitempty"`
	// LeaseTTL is the fleets' lease TTL (0: the default).
	LeaseTTL time.Duration `json:"lease_ttl,omitempty"`
	// Settle bounds a worker's wait for the jobs (flush) and a resync.
	Settle time.Duration `json:"settle"`
	// DSN is the PostgreSQL DSN of a worker process.
	DSN string `json:"dsn,omitempty"`
	// CPUProfile, when set, is where a worker process writes its CPU
	// profile (its process id is appended).
	CPUProfile string `json:"cpu_profile,omitempty"`
	// Routing gives the distributors the fake retailCRM's cards, each
	// read after CRMLatency (see Config.Routing).
	Routing    bool          `json:"routing,omitempty"`
	CRMLatency time.Duration `json:"crm_latency,omitempty"`
}

// assignment is one dialog given to a manager or a bot, as a distributor
// saw it: At is the wall clock (Unix nanoseconds) when MG confirmed it,
// Member the fleet member whose worker did it.
type assignment struct {
	Account   bd.AccountID `json:"a"`
	Dialog    bd.DialogID  `json:"d"`
	Manager   bd.ManagerID `json:"m"`
	At        int64        `json:"t"`
	FromQueue bool         `json:"q,omitempty"`
	Member    string       `json:"w"`
}

// dialogRef names a dialog of the run: dialog ids are per account (each
// account has an MG of its own).
type dialogRef struct {
	Account bd.AccountID `json:"a"`
	Dialog  bd.DialogID  `json:"d"`
}

// streamEvent is a change of an account's event stream in one fleet
// member, at At (wall clock, Unix nanoseconds): the member started
// running it (hold), stopped (release; reported once it has stopped), or
// the stream resynced (synced).
type streamEvent struct {
	Account bd.AccountID `json:"a"`
	Member  string       `json:"m"`
	Kind    string       `json:"k"`
	At      int64        `json:"t"`
}

// The kinds of streamEvent.
const (
	streamHold    = "hold"
	streamRelease = "release"
	streamSynced  = "synced"
)

// share is the work one fleet member did.
type share struct {
	Assignments int `json:"assignments"`
	Replies     int `json:"replies"`
}

// nodeReport is what a node's fleets did.
type nodeReport struct {
	Assignments []assignment `json:"assignments"`
	// Queued are the dialogs a decision put in the queue when they were
	// first distributed (not those taken from it).
	Queued        []dialogRef      `json:"queued,omitempty"`
	Shares        map[string]share `json:"shares,omitempty"`
	Failures      map[string]int   `json:"failures"`
	Errors        []string         `json:"errors,omitempty"`
	HandlerErrors uint64           `json:"handler_errors"`
	// StreamStarts counts the holding periods of accounts' streams: each
	// starts a stream that connects.
	StreamStarts  uint64 `json:"stream_starts"`
	Connects      uint64 `json:"connects"`
	ConnectErrors uint64 `json:"connect_errors"`
	Resyncs       uint64 `json:"resyncs"`
	// RunsEnded counts event streams that stopped by themselves (the
	// fleet starts them again).
	RunsEnded int `json:"runs_ended"`
}

func (r *nodeReport) merge(o nodeReport) {
	r.Assignments = append(r.Assignments, o.Assignments...)
	r.Queued = append(r.Queued, o.Queued...)
	if len(o.Shares) > 0 && r.Shares == nil {
		r.Shares = map[string]share{}
	}
	for k, v := range o.Shares {
		s := r.Shares[k]
		s.Assignments += v.Assignments
		s.Replies += v.Replies
		r.Shares[k] = s
	}
	if r.Failures == nil {
		r.Failures = map[string]int{}
	}
	for k, v := range o.Failures {
		r.Failures[k] += v
	}
	for _, e := range o.Errors {
		if !slices.Contains(r.Errors, e) {
			r.Errors = append(r.Errors, e)
		}
	}
	r.HandlerErrors += o.HandlerErrors
	r.StreamStarts += o.StreamStarts
	r.Connects += o.Connects
	r.ConnectErrors += o.ConnectErrors
	r.Resyncs += o.Resyncs
	r.RunsEnded += o.RunsEnded
}

// examplesPerOp is how many error messages a report keeps for each
// failed operation.
const examplesPerOp = 2

// recorder collects what the fleets of a node report through their
// hooks. It is safe for concurrent use.
type recorder struct {
	// onStream receives every stream event as it happens; set before the
	// fleets start.
	onStream func(streamEvent)

	mu          sync.Mutex
	assignments []assignment
	queued      []dialogRef
	shares      map[string]share
	failures    map[string]int
	errors      []string
	runsEnded   int
	// seen counts every failure of an op, to keep examplesPerOp examples
	// however often the records are taken.
	seen map[string]int
}

// hooks returns the distributor hooks of the fleet member's distributors.
func (r *recorder) hooks(member string) distributor.Hooks {
	return distributor.Hooks{
		Decision: func(t distributor.Trace) {
			switch {
			case t.Outcome == distributor.OutcomeAssigned || t.Outcome == distributor.OutcomeBot:
				m, _ := t.Responsible.Manager()
				a := assignment{Account: t.Account, Dialog: t.Dialog, Manager: m, At: time.Now().UnixNano(), FromQueue: t.FromQueue, Member: member}
				r.mu.Lock()
				r.assignments = append(r.assignments, a)
				r.addShare(member, share{Assignments: 1})
				r.mu.Unlock()
			case t.Outcome == distributor.OutcomeQueued && !t.FromQueue:
				r.mu.Lock()
				r.queued = append(r.queued, dialogRef{t.Account, t.Dialog})
				r.mu.Unlock()
			}
		},
		Replied: func(bd.AccountID, bd.Situation) {
			r.mu.Lock()
			r.addShare(member, share{Replies: 1})
			r.mu.Unlock()
		},
		Failed: r.failed,
	}
}

// fleetHooks returns the fleet member's hooks: its holding changes go to
// onStream, its failures to the failures of the report.
func (r *recorder) fleetHooks(member string) fleet.Hooks {
	return fleet.Hooks{
		Holding: func(acc bd.AccountID, holding bool) {
			kind := streamRelease
			if holding {
				kind = streamHold
			}
			r.stream(streamEvent{Account: acc, Member: member, Kind: kind, At: time.Now().UnixNano()})
		},
		Failed: func(acc bd.AccountID, op string, err error) {
			if op == "stream" {
				r.mu.Lock()
				r.runsEnded++
				r.mu.Unlock()
			}
			r.failed(acc, "fleet "+op, err)
		},
	}
}

func (r *recorder) stream(ev streamEvent) {
	if r.onStream != nil {
		r.onStream(ev)
	}
}

// addShare adds to the member's share; r.mu is held.
func (r *recorder) addShare(member string, s share) {
	if r.shares == nil {
		r.shares = map[string]share{}
	}
	cur := r.shares[member]
	cur.Assignments += s.Assignments
	cur.Replies += s.Replies
	r.shares[member] = cur
}

func (r *recorder) failed(_ bd.AccountID, op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures == nil {
		r.failures = map[string]int{}
	}
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	r.failures[op]++
	r.seen[op]++
	if r.seen[op] <= examplesPerOp {
		r.errors = append(r.errors, op+": "+err.Error())
	}
}

// take returns what was recorded since the last take and forgets it.
func (r *recorder) take() nodeReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := nodeReport{Assignments: r.assignments, Queued: r.queued, Shares: r.shares, Failures: r.failures, Errors: r.errors, RunsEnded: r.runsEnded}
	r.assignments, r.queued, r.shares, r.failures, r.errors, r.runsEnded = nil, nil, nil, nil, nil, 0
	return rep
}

// node is the fleets of one process: this one, or a worker process.
type node interface {
	// resync makes every stream the node runs re-read MG (users and open
	// dialogs) and converge, as after a reconnect.
	resync(ctx context.Context) error
	// flush waits until the jobs of every account are done.
	flush(ctx context.Context) error
	// stop stops the node and returns what it did.
	stop(ctx context.Context) (nodeReport, error)
}

// localNode runs spec.Fleets fleets in this process over one store. Each
// fleet hosts every account of the store: a distributor per account, one
// worker set doing every account's jobs, and the streams of the accounts
// whose lease it holds.
type localNode struct {
	spec   nodeSpec
	fleets []*fleet.Fleet
	rec    *recorder
	cancel context.CancelFunc
	wg     sync.WaitGroup

	handlerErrors atomic.Uint64

	mu sync.Mutex
	// live are the streams running now.
	live map[*liveStream]struct{}
	// ended adds up the counters of the streams that stopped.
	ended        mgsource.Stats
	streamStarts uint64
	// runErrs are the errors the fleets' Run returned before the stop.
	runErrs []error
}

// liveStream is an account's stream as a fleet runs it, known to the node
// while it runs so that the node can resync it and count its connects.
type liveStream struct {
	*mgsource.Source
	n *localNode
}

func (s *liveStream) Run(ctx context.Context) error {
	s.n.mu.Lock()
	s.n.live[s] = struct{}{}
	s.n.streamStarts++
	s.n.mu.Unlock()
	defer func() {
		st := s.Source.Stats()
		s.n.mu.Lock()
		delete(s.n.live, s)
		addStats(&s.n.ended, st)
		s.n.mu.Unlock()
	}()
	return s.Source.Run(ctx)
}

func addStats(to *mgsource.Stats, s mgsource.Stats) {
	to.Stream.Connects += s.Stream.Connects
	to.Stream.ConnectErrors += s.Stream.ConnectErrors
	to.Resyncs += s.Resyncs
}

// watchedTarget passes everything to the fleet's target, counts the
// errors Handle returns, and reports every resync done.
type watchedTarget struct {
	mgsource.Target
	acc    bd.AccountID
	member string
	n      *localNode
}

func (t watchedTarget) Handle(ctx context.Context, ev distributor.Event) error {
	err := t.Target.Handle(ctx, ev)
	// Events still waiting when the stream is stopped end with the stop's
	// cancellation: not a failure of the run.
	if err != nil && ctx.Err() == nil {
		t.n.handlerErrors.Add(1)
		t.n.rec.failed(ev.Account, "handle "+ev.Kind.String(), err)
	}
	return err
}

func (t watchedTarget) Resync(ctx context.Context, open []distributor.OpenDialog) error {
	err := t.Target.Resync(ctx, open)
	if err == nil {
		t.n.rec.stream(streamEvent{Account: t.acc, Member: t.member, Kind: streamSynced, At: time.Now().UnixNano()})
	}
	return err
}

// build returns the fleet member's BuildFunc: fleet.MG's parts over an MG
// client with an HTTP transport of the account's own, whose stream the
// node watches.
func (n *localNode) build(member string, logger *slog.Logger) fleet.BuildFunc {
	return func(ctx context.Context, acc bd.Account) (fleet.Parts, error) {
		tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
		b := fleet.MG(
			fleet.WithMGClient(func(bd.Account) []mg.Option {
				return []mg.Option{
					mg.WithHTTPClient(&http.Client{Transport: tr, Timeout: 15 * time.Second}),
					mg.WithRetry(mg.RetryPolicy{BaseDelay: 5 * time.Millisecond, MaxDelay: 100 * time.Millisecond}),
					// The sandbox enforces no rate limit; a real MG would
					// need the client's default limiter.
					mg.WithLimiter(rate.NewLimiter(rate.Inf, 0)),
				}
			}),
			fleet.WithSource(
				mgsource.WithLogger(logger),
				mgsource.WithStream(mg.WithBackoff(mg.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond})),
			),
			fleet.WithTarget(func(acc bd.Account, _ *mg.Client, t mgsource.Target) mgsource.Target {
				return watchedTarget{Target: t, acc: acc.ID, member: member, n: n}
			}),
		)
		p, err := b(ctx, acc)
		if err != nil {
			tr.CloseIdleConnections()
			return p, err
		}
		closeParts := p.Close
		p.Close = func() {
			if closeParts != nil {
				closeParts()
			}
			tr.CloseIdleConnections()
		}
		stream := p.Stream
		p.Stream = func(t mgsource.Target) (fleet.Stream, error) {
			s, err := stream(t)
			if err != nil {
				return nil, err
			}
			src, ok := s.(*mgsource.Source)
			if !ok {
				return s, nil
			}
			return &liveStream{Source: src, n: n}, nil
		}
		return p, nil
	}
}

// memberName names fleet i of this process among the lease members.
func memberName(i, fleets int) string {
	if fleets == 1 {
		return fmt.Sprintf("pid-%d", os.Getpid())
	}
	return fmt.Sprintf("pid-%d.%d", os.Getpid(), i+1)
}

// startLocal starts spec.Fleets fleets over st and waits until each has
// built every account of spec. Their stream events go to onStream as they
// happen.
func startLocal(ctx context.Context, spec nodeSpec, st store.Store, logger *slog.Logger, onStream func(streamEvent)) (*localNode, error) {
	n := &localNode{spec: spec, rec: &recorder{onStream: onStream}, live: map[*liveStream]struct{}{}}
	var cards *cardReader
	if spec.Routing {
		cards = newCardReader(st, spec.CRMLatency)
	}
	for i := range spec.Fleets {
		member := memberName(i, spec.Fleets)
		dopts := []distributor.Option{
			distributor.WithHooks(n.rec.hooks(member)),
			distributor.WithRecentTraces(0),
			distributor.WithLogger(logger),
		}
		if cards != nil {
			dopts = append(dopts, distributor.WithProfiler(cards, 0, 0))
		}
		opts := []fleet.Option{
			fleet.WithMember(member),
			fleet.WithBuild(n.build(member, logger)),
			fleet.WithSweep(spec.Sweep),
			fleet.WithLogger(logger),
			fleet.WithHooks(n.rec.fleetHooks(member)),
			fleet.WithDistributor(dopts...),
		}
		if spec.Workers > 0 {
			opts = append(opts, fleet.WithWork(store.WorkOptions{Workers: spec.Workers}))
		}
		if spec.LeaseTTL > 0 {
			opts = append(opts, fleet.WithLeaseTTL(spec.LeaseTTL))
		}
		f, err := fleet.New(st, opts...)
		if err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
		n.fleets = append(n.fleets, f)
	}
	rctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	for _, f := range n.fleets {
		n.wg.Go(func() {
			if err := f.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
				n.mu.Lock()
				n.runErrs = append(n.runErrs, err)
				n.mu.Unlock()
			}
		})
	}
	// Every fleet builds every account at its first scan of the store.
	for {
		if n.built() {
			return n, nil
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			_, serr := n.stop(ctx)
			return nil, errors.Join(fmt.Errorf("loadtest: waiting for the fleets to build the accounts: %w", ctx.Err()), serr)
		}
	}
}

// built reports whether every fleet runs a distributor for every account.
func (n *localNode) built() bool {
	for _, f := range n.fleets {
		for _, id := range n.spec.Accounts {
			if _, err := f.Distributor(id); err != nil {
				return false
			}
		}
	}
	return true
}

func (n *localNode) resync(ctx context.Context) error {
	n.mu.Lock()
	live := make([]*liveStream, 0, len(n.live))
	for s := range n.live {
		live = append(live, s)
	}
	n.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(live))
	for i, s := range live {
		wg.Go(func() { errs[i] = s.Resync(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// flush waits for the accounts' jobs one account after another: the
// store tells when an account has none left, whichever process works them.
func (n *localNode) flush(ctx context.Context) error {
	var errs []error
	for _, id := range n.spec.Accounts {
		d, err := n.fleets[0].Distributor(id)
		if err == nil {
			err = d.Flush(ctx)
		}
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (n *localNode) stop(context.Context) (nodeReport, error) {
	n.cancel()
	n.wg.Wait()
	rep := n.rec.take()
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.live { // none once the fleets returned
		addStats(&n.ended, s.Source.Stats())
	}
	for _, e := range n.runErrs {
		rep.Errors = append(rep.Errors, "fleet stopped early: "+e.Error())
	}
	rep.HandlerErrors += n.handlerErrors.Load()
	rep.StreamStarts += n.streamStarts
	rep.Connects += n.ended.Stream.Connects
	rep.ConnectErrors += n.ended.Stream.ConnectErrors
	rep.Resyncs += n.ended.Resyncs
	return rep, errors.Join(n.runErrs...)
}

// workerMessage is a line a worker process writes to its stdout.
type workerMessage struct {
	Event  string       `json:"event"` // ready, batch, stream, resynced, flushed, report
	Error  string       `json:"error,omitempty"`
	Report *nodeReport  `json:"report,omitempty"`
	Stream *streamEvent `json:"stream,omitempty"`
}

// batchEvery is how often a worker process sends what its distributors
// recorded: a worker killed with SIGKILL loses at most this much. Stream
// events are sent at once.
const batchEvery = 100 * time.Millisecond

// workerMain runs this process as a worker: it reads its nodeSpec from the
// first line of stdin, starts its fleets over its own PostgreSQL pool,
// and then obeys "resync", "flush" and "stop" lines, answering each on
// stdout with one JSON line; every batchEvery it sends what its
// distributors recorded as a "batch" line, and every stream event as a
// "stream" line when it happens. End of stdin stops it too. It returns
// the exit code.
func workerMain(stdin io.Reader, stdout io.Writer, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "loadtest worker:", err)
		return 1
	}
	in := bufio.NewScanner(stdin)
	if !in.Scan() {
		return fail(errors.New("no configuration on stdin"))
	}
	var spec nodeSpec
	if err := json.Unmarshal(in.Bytes(), &spec); err != nil {
		return fail(fmt.Errorf("configuration: %w", err))
	}
	if spec.CPUProfile != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", spec.CPUProfile, os.Getpid()))
		if err != nil {
			return fail(fmt.Errorf("cpu profile: %w", err))
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(fmt.Errorf("cpu profile: %w", err))
		}
		defer pprof.StopCPUProfile()
	}
	var encMu sync.Mutex
	enc := json.NewEncoder(stdout)
	send := func(m workerMessage) error {
		encMu.Lock()
		defer encMu.Unlock()
		return enc.Encode(m)
	}
	ctx := context.Background()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, closeStore, err := openNodePostgres(startCtx, spec.DSN)
	if err != nil {
		return fail(err)
	}
	defer closeStore()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	n, err := startLocal(startCtx, spec, st, logger, func(ev streamEvent) {
		_ = send(workerMessage{Event: "stream", Stream: &ev})
	})
	if err != nil {
		return fail(err)
	}
	if err := send(workerMessage{Event: "ready"}); err != nil {
		return fail(err)
	}
	batchCtx, stopBatches := context.WithCancel(ctx)
	defer stopBatches()
	var batches sync.WaitGroup
	batches.Go(func() {
		t := time.NewTicker(batchEvery)
		defer t.Stop()
		for {
			select {
			case <-batchCtx.Done():
				return
			case <-t.C:
			}
			rep := n.rec.take()
			if len(rep.Assignments) == 0 && len(rep.Queued) == 0 && len(rep.Failures) == 0 && len(rep.Shares) == 0 && rep.RunsEnded == 0 {
				continue
			}
			if err := send(workerMessage{Event: "batch", Report: &rep}); err != nil {
				return
			}
		}
	})
commands:
	for in.Scan() {
		var msg workerMessage
		switch in.Text() {
		case "resync":
			msg.Event = "resynced"
			rctx, cancel := context.WithTimeout(ctx, spec.Settle)
			if err := n.resync(rctx); err != nil {
				msg.Error = err.Error()
			}
			cancel()
		case "flush":
			msg.Event = "flushed"
			fctx, cancel := context.WithTimeout(ctx, spec.Settle)
			if err := n.flush(fctx); err != nil {
				msg.Error = err.Error()
			}
			cancel()
		default:
			break commands
		}
		if err := send(msg); err != nil {
			return fail(err)
		}
	}
	stopBatches()
	batches.Wait()
	rep, err := n.stop(ctx)
	msg := workerMessage{Event: "report", Report: &rep}
	if err != nil {
		msg.Error = err.Error()
	}
	if err := send(msg); err != nil {
		return fail(err)
	}
	return 0
}

// procNode is a worker process: the program run again with workerEnv set.
type procNode struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	msgs  chan workerMessage
	dead  chan struct{} // closed when stdout ends

	mu sync.Mutex
	// batches is what the worker sent as it went.
	batches nodeReport
}

// startProc starts a worker process and waits until its fleets built
// every account. Its stream events go to onStream, with its process id.
func startProc(ctx context.Context, spec nodeSpec, stderr io.Writer, onStream func(pid int, ev streamEvent)) (*procNode, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("loadtest: worker: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("loadtest: worker: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("loadtest: worker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadtest: worker: %w", err)
	}
	p := &procNode{cmd: cmd, stdin: stdin, msgs: make(chan workerMessage, 4), dead: make(chan struct{})}
	pid := cmd.Process.Pid
	go func() {
		defer close(p.dead)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<30)
		for sc.Scan() {
			var m workerMessage
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				fmt.Fprintf(stderr, "loadtest: worker %d wrote a line that is not a message: %v\n", pid, err)
				continue
			}
			switch {
			case m.Event == "batch" && m.Report != nil:
				p.mu.Lock()
				p.batches.merge(*m.Report)
				p.mu.Unlock()
			case m.Event == "stream" && m.Stream != nil:
				onStream(pid, *m.Stream)
			default:
				p.msgs <- m
			}
		}
	}()
	line, _ := json.Marshal(spec)
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return nil, errors.Join(fmt.Errorf("loadtest: worker: %w", err), p.kill())
	}
	if _, err := p.await(ctx, "ready"); err != nil {
		return nil, errors.Join(err, p.kill())
	}
	return p, nil
}

// await waits for the worker's next message, which must be of kind event.
func (p *procNode) await(ctx context.Context, event string) (workerMessage, error) {
	for {
		select {
		case m := <-p.msgs:
			if m.Event != event && (m.Event == "flushed" || m.Event == "resynced") {
				// The late answer to a command whose wait was given up on
				// (a flush past -settle), not this one's.
				continue
			}
			if m.Event != event {
				return m, fmt.Errorf("loadtest: worker %d: got %q, want %q", p.cmd.Process.Pid, m.Event, event)
			}
			if m.Error != "" {
				return m, fmt.Errorf("loadtest: worker %d: %s: %s", p.cmd.Process.Pid, event, m.Error)
			}
			return m, nil
		case <-p.dead:
			return workerMessage{}, fmt.Errorf("loadtest: worker %d exited before %q (see its stderr)", p.cmd.Process.Pid, event)
		case <-ctx.Done():
			return workerMessage{}, fmt.Errorf("loadtest: worker %d: waiting for %q: %w", p.cmd.Process.Pid, event, ctx.Err())
		}
	}
}

// kill kills the worker with SIGKILL, as a crash would end it, and waits
// until it is gone and its output is read.
func (p *procNode) kill() error {
	_ = p.cmd.Process.Kill()
	<-p.dead // the output is read to its end before Wait closes the pipe
	_ = p.cmd.Wait()
	return nil
}

// taken returns what the worker sent in batches (all a killed worker
// leaves).
func (p *procNode) taken() nodeReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	rep := p.batches
	p.batches = nodeReport{}
	return rep
}

func (p *procNode) command(ctx context.Context, cmd, answer string) error {
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		return fmt.Errorf("loadtest: worker: %w", err)
	}
	_, err := p.await(ctx, answer)
	return err
}

func (p *procNode) resync(ctx context.Context) error { return p.command(ctx, "resync", "resynced") }

func (p *procNode) flush(ctx context.Context) error { return p.command(ctx, "flush", "flushed") }

func (p *procNode) stop(ctx context.Context) (nodeReport, error) {
	if _, err := io.WriteString(p.stdin, "stop\n"); err != nil {
		return p.taken(), errors.Join(fmt.Errorf("loadtest: worker: %w", err), p.kill())
	}
	m, err := p.await(ctx, "report")
	if err != nil {
		return p.taken(), errors.Join(err, p.kill())
	}
	p.stdin.Close()
	<-p.dead
	rep := p.taken()
	rep.merge(*m.Report)
	if err := p.cmd.Wait(); err != nil {
		return rep, fmt.Errorf("loadtest: worker %d: %s", p.cmd.Process.Pid, err)
	}
	return rep, nil
}
