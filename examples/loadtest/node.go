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
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/store"
)

// workerEnv is set in the environment of a worker process: the program
// (or the test binary) then runs as a worker instead of a load run.
const workerEnv = "BOTDISTRIBUTOR_LOADTEST_WORKER"

// nodeSpec tells a group of distributors where MG and the store are.
type nodeSpec struct {
	Account string `json:"account"`
	MGURL   string `json:"mg_url"`
	// MGToken is the sandbox bot's token (a throwaway credential of the
	// fake MG, handed to the worker over its stdin).
	MGToken      string        `json:"mg_token"`
	Sweep        time.Duration `json:"sweep"`
	Distributors int           `json:"distributors"`
	// Workers is each distributor's job workers (0: the default).
	Workers int `json:"workers,omitempty"`
	// Settle bounds a worker's wait for its jobs (flush).
	Settle time.Duration `json:"settle"`
	// DSN is the PostgreSQL DSN of a worker process.
	DSN string `json:"dsn,omitempty"`
	// CPUProfile, when set, is where a worker process writes its CPU
	// profile (its process id is appended).
	CPUProfile string `json:"cpu_profile,omitempty"`
}

// assignment is one dialog given to a manager or a bot, as a distributor
// saw it: At is the wall clock (Unix nanoseconds) when MG confirmed it.
type assignment struct {
	Dialog    bd.DialogID  `json:"d"`
	Manager   bd.ManagerID `json:"m"`
	At        int64        `json:"t"`
	FromQueue bool         `json:"q,omitempty"`
}

// nodeReport is what a group of distributors did.
type nodeReport struct {
	Assignments []assignment `json:"assignments"`
	// Queued are the dialogs a decision put in the queue when they were
	// first distributed (not those taken from it).
	Queued        []bd.DialogID  `json:"queued,omitempty"`
	Failures      map[string]int `json:"failures"`
	Errors        []string       `json:"errors,omitempty"`
	HandlerErrors uint64         `json:"handler_errors"`
	Connects      uint64         `json:"connects"`
	ConnectErrors uint64         `json:"connect_errors"`
	Resyncs       uint64         `json:"resyncs"`
	// RunsEnded counts distributors whose event stream (or Run) stopped
	// by itself before the end.
	RunsEnded int `json:"runs_ended"`
}

func (r *nodeReport) merge(o nodeReport) {
	r.Assignments = append(r.Assignments, o.Assignments...)
	r.Queued = append(r.Queued, o.Queued...)
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
	r.Connects += o.Connects
	r.ConnectErrors += o.ConnectErrors
	r.Resyncs += o.Resyncs
	r.RunsEnded += o.RunsEnded
}

// examplesPerOp is how many error messages a report keeps for each
// failed operation.
const examplesPerOp = 2

// recorder collects what the distributors of a process report through
// their hooks. It is safe for concurrent use.
type recorder struct {
	mu          sync.Mutex
	assignments []assignment
	queued      []bd.DialogID
	failures    map[string]int
	errors      []string
	// seen counts every failure of an op, to keep examplesPerOp examples
	// however often the records are taken.
	seen map[string]int
}

func (r *recorder) hooks() distributor.Hooks {
	return distributor.Hooks{
		Decision: func(t distributor.Trace) {
			switch {
			case t.Outcome == distributor.OutcomeAssigned || t.Outcome == distributor.OutcomeBot:
				m, _ := t.Responsible.Manager()
				a := assignment{Dialog: t.Dialog, Manager: m, At: time.Now().UnixNano(), FromQueue: t.FromQueue}
				r.mu.Lock()
				r.assignments = append(r.assignments, a)
				r.mu.Unlock()
			case t.Outcome == distributor.OutcomeQueued && !t.FromQueue:
				r.mu.Lock()
				r.queued = append(r.queued, t.Dialog)
				r.mu.Unlock()
			}
		},
		Failed: func(_ bd.AccountID, op string, err error) {
			r.mu.Lock()
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
			r.mu.Unlock()
		},
	}
}

// take returns what was recorded since the last take and forgets it.
func (r *recorder) take() nodeReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := nodeReport{Assignments: r.assignments, Queued: r.queued, Failures: r.failures, Errors: r.errors}
	r.assignments, r.queued, r.failures, r.errors = nil, nil, nil, nil
	return rep
}

// fleet is a group of distributors: in this process, or a worker process.
type fleet interface {
	// resync makes every distributor of the group re-read MG (users and
	// open dialogs) and converge, as after a reconnect.
	resync(ctx context.Context) error
	// flush waits until the jobs of the group's account are done.
	flush(ctx context.Context) error
	// stop stops the group and returns what it did.
	stop(ctx context.Context) (nodeReport, error)
}

// readyTarget passes everything to the distributor, records the errors
// Handle returns, and reports the first successful resync: the distributor
// is then connected and caught up.
type readyTarget struct {
	*distributor.Distributor
	failed func(bd.AccountID, string, error)
	errors atomic.Uint64 // errors Handle returned
	once   sync.Once
	ready  chan struct{}
}

func (t *readyTarget) Handle(ctx context.Context, ev distributor.Event) error {
	err := t.Distributor.Handle(ctx, ev)
	// Events still waiting when the distributor is stopped end with the
	// stop's cancellation: not a failure of the run.
	if err != nil && ctx.Err() == nil {
		t.errors.Add(1)
		t.failed(ev.Account, "handle "+ev.Kind.String(), err)
	}
	return err
}

func (t *readyTarget) Resync(ctx context.Context, open []distributor.OpenDialog) error {
	err := t.Distributor.Resync(ctx, open)
	if err == nil {
		t.once.Do(func() { close(t.ready) })
	}
	return err
}

// distNode is one distributor with its own MG client and event stream.
type distNode struct {
	d      *distributor.Distributor
	src    *mgsource.Source
	tr     *http.Transport
	target *readyTarget
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

func newDistNode(spec nodeSpec, st store.Store, rec *recorder, logger *slog.Logger) (*distNode, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	client, err := mg.New(spec.MGURL, bd.Secret(spec.MGToken),
		mg.WithHTTPClient(&http.Client{Transport: tr, Timeout: 15 * time.Second}),
		mg.WithRetry(mg.RetryPolicy{BaseDelay: 5 * time.Millisecond, MaxDelay: 100 * time.Millisecond}),
		// The sandbox enforces no rate limit; a real MG would need the
		// client's default limiter.
		mg.WithLimiter(rate.NewLimiter(rate.Inf, 0)))
	if err != nil {
		return nil, err
	}
	replier, err := reply.NewTemplate(client)
	if err != nil {
		return nil, err
	}
	hooks := rec.hooks()
	d, err := distributor.New(bd.AccountID(spec.Account), st, mgsource.Gateway{MG: client},
		distributor.WithWork(store.WorkOptions{Workers: spec.Workers}),
		distributor.WithReplier(replier),
		distributor.WithHooks(hooks),
		distributor.WithSweep(spec.Sweep),
		distributor.WithRecentTraces(0),
		distributor.WithLogger(logger))
	if err != nil {
		return nil, err
	}
	target := &readyTarget{Distributor: d, failed: hooks.Failed, ready: make(chan struct{})}
	src, err := mgsource.New(mgsource.Options{
		Account: bd.AccountID(spec.Account), Client: client, Target: target, Logger: logger,
		Stream: mg.StreamOptions{Backoff: mg.Backoff{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond}},
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &distNode{d: d, src: src, tr: tr, target: target, cancel: cancel, errs: make(chan error, 2)}
	for _, run := range []func(context.Context) error{d.Run, src.Run} {
		n.wg.Go(func() {
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				n.errs <- err
			}
		})
	}
	return n, nil
}

// stop stops the node and waits for its goroutines. It returns the errors
// the distributor's and the event stream's Run ended with before they were
// stopped (an event stream that gave up), apart from its own error.
func (n *distNode) stop() (ended []error, err error) {
	n.cancel()
	n.wg.Wait()
	close(n.errs)
	for err := range n.errs {
		ended = append(ended, err)
	}
	err = n.d.Close()
	n.tr.CloseIdleConnections()
	return ended, err
}

// localFleet is a group of distributors in this process sharing a store.
type localFleet struct {
	nodes []*distNode
	rec   *recorder
}

// startLocal starts spec.Distributors distributors over st and waits until
// each has connected and resynced once.
func startLocal(ctx context.Context, spec nodeSpec, st store.Store, logger *slog.Logger) (*localFleet, error) {
	f := &localFleet{rec: &recorder{}}
	for range spec.Distributors {
		n, err := newDistNode(spec, st, f.rec, logger)
		if err != nil {
			_, serr := f.stop(ctx)
			return nil, errors.Join(err, serr)
		}
		f.nodes = append(f.nodes, n)
	}
	for _, n := range f.nodes {
		select {
		case <-n.target.ready:
		case err := <-n.errs:
			n.errs <- err // for stop
			_, serr := f.stop(ctx)
			return nil, errors.Join(fmt.Errorf("loadtest: distributor stopped before it was ready: %w", err), serr)
		case <-ctx.Done():
			_, serr := f.stop(ctx)
			return nil, errors.Join(fmt.Errorf("loadtest: waiting for the distributors to connect: %w", ctx.Err()), serr)
		}
	}
	return f, nil
}

func (f *localFleet) resync(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(f.nodes))
	for i, n := range f.nodes {
		wg.Go(func() { errs[i] = n.src.Resync(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (f *localFleet) flush(ctx context.Context) error {
	var errs []error
	for _, n := range f.nodes {
		errs = append(errs, n.d.Flush(ctx))
	}
	return errors.Join(errs...)
}

func (f *localFleet) stop(context.Context) (nodeReport, error) {
	var errs []error
	var rep nodeReport
	for _, n := range f.nodes {
		ended, err := n.stop()
		errs = append(errs, err)
		for _, e := range ended {
			rep.RunsEnded++
			rep.Errors = append(rep.Errors, "run ended early: "+e.Error())
		}
		st := n.src.Stats()
		rep.HandlerErrors += n.target.errors.Load()
		rep.Connects += st.Stream.Connects
		rep.ConnectErrors += st.Stream.ConnectErrors
		rep.Resyncs += st.Resyncs
	}
	rep.merge(f.rec.take())
	return rep, errors.Join(errs...)
}

// workerMessage is a line a worker process writes to its stdout.
type workerMessage struct {
	Event  string      `json:"event"` // ready, batch, resynced, flushed, report
	Error  string      `json:"error,omitempty"`
	Report *nodeReport `json:"report,omitempty"`
}

// batchEvery is how often a worker process sends what its distributors
// recorded: a worker killed with SIGKILL loses at most this much.
const batchEvery = 100 * time.Millisecond

// workerMain runs this process as a worker: it reads its nodeSpec from the
// first line of stdin, starts its distributors over its own PostgreSQL
// pool, and then obeys "resync", "flush" and "stop" lines, answering each
// on stdout with one JSON line; every batchEvery it sends what its
// distributors recorded as a "batch" line. End of stdin stops it too. It
// returns the exit code.
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
	ctx := context.Background()
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, closeStore, err := openNodePostgres(startCtx, spec.DSN)
	if err != nil {
		return fail(err)
	}
	defer closeStore()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	f, err := startLocal(startCtx, spec, st, logger)
	if err != nil {
		return fail(err)
	}
	var encMu sync.Mutex
	enc := json.NewEncoder(stdout)
	send := func(m workerMessage) error {
		encMu.Lock()
		defer encMu.Unlock()
		return enc.Encode(m)
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
			rep := f.rec.take()
			if len(rep.Assignments) == 0 && len(rep.Queued) == 0 && len(rep.Failures) == 0 {
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
			if err := f.resync(rctx); err != nil {
				msg.Error = err.Error()
			}
			cancel()
		case "flush":
			msg.Event = "flushed"
			fctx, cancel := context.WithTimeout(ctx, spec.Settle)
			if err := f.flush(fctx); err != nil {
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
	rep, err := f.stop(ctx)
	msg := workerMessage{Event: "report", Report: &rep}
	if err != nil {
		msg.Error = err.Error()
	}
	if err := send(msg); err != nil {
		return fail(err)
	}
	return 0
}

// procFleet is a worker process: the program run again with workerEnv set.
type procFleet struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	msgs  chan workerMessage
	dead  chan struct{} // closed when stdout ends

	mu sync.Mutex
	// batches is what the worker sent as it went.
	batches nodeReport
}

// startProc starts a worker process and waits until its distributors are
// connected.
func startProc(ctx context.Context, spec nodeSpec, stderr io.Writer) (*procFleet, error) {
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
	p := &procFleet{cmd: cmd, stdin: stdin, msgs: make(chan workerMessage, 4), dead: make(chan struct{})}
	go func() {
		defer close(p.dead)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<30)
		for sc.Scan() {
			var m workerMessage
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				fmt.Fprintf(stderr, "loadtest: worker %d wrote a line that is not a message: %v\n", cmd.Process.Pid, err)
				continue
			}
			if m.Event == "batch" && m.Report != nil {
				p.mu.Lock()
				p.batches.merge(*m.Report)
				p.mu.Unlock()
				continue
			}
			p.msgs <- m
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
func (p *procFleet) await(ctx context.Context, event string) (workerMessage, error) {
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
func (p *procFleet) kill() error {
	_ = p.cmd.Process.Kill()
	<-p.dead // the output is read to its end before Wait closes the pipe
	_ = p.cmd.Wait()
	return nil
}

// taken returns what the worker sent in batches (all a killed worker
// leaves).
func (p *procFleet) taken() nodeReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	rep := p.batches
	p.batches = nodeReport{}
	return rep
}

func (p *procFleet) command(ctx context.Context, cmd, answer string) error {
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		return fmt.Errorf("loadtest: worker: %w", err)
	}
	_, err := p.await(ctx, answer)
	return err
}

func (p *procFleet) resync(ctx context.Context) error { return p.command(ctx, "resync", "resynced") }

func (p *procFleet) flush(ctx context.Context) error { return p.command(ctx, "flush", "flushed") }

func (p *procFleet) stop(ctx context.Context) (nodeReport, error) {
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
		return rep, fmt.Errorf("loadtest: worker %d: %w", p.cmd.Process.Pid, err)
	}
	return rep, nil
}
