package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/sandbox"
)

// atFraction reports whether dialog i (of n) is where one of count evenly
// spaced fault injections falls.
func atFraction(i, n, count int) bool {
	for k := 1; k <= count; k++ {
		if i == k*n/(count+1) {
			return true
		}
	}
	return false
}

// closes reports whether dialog i is among the share that closes: the
// chosen ones are spread evenly (every second one for 0.5).
func closes(i int, share float64) bool {
	return int(float64(i+1)*share) > int(float64(i)*share)
}

// load makes cfg.Dialogs customers write, at cfg.Rate, through the
// sandbox's transport client; closes each dialog cfg.CloseAfter after it
// opened; and cuts the websockets and kills the database connections at
// evenly spaced points of the load.
func (s *scenario) load(ctx context.Context) error {
	cfg := s.cfg
	n := cfg.Dialogs
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	type toClose struct {
		acc    *runAccount
		dialog bd.DialogID
		due    time.Time
	}
	closing := make(chan toClose, n)
	var closer sync.WaitGroup
	if cfg.CloseAfter > 0 {
		closer.Go(func() {
			for c := range closing {
				t := time.NewTimer(time.Until(c.due))
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					continue
				}
				if err := c.acc.mg.CloseDialog(c.dialog); err != nil {
					cancel(fmt.Errorf("loadtest: closing dialog %d of %s: %w", c.dialog, c.acc.id, err))
				}
			}
		})
	}

	work := make(chan int)
	var writers sync.WaitGroup
	for range cfg.Writers {
		writers.Go(func() {
			for i := range work {
				acc := s.accounts[i%len(s.accounts)]
				w, err := acc.mg.CustomerWrites(ctx, sandbox.MGCustomerMessage{
					Channel: acc.channel, CustomerExternalID: fmt.Sprintf("customer-%06d", i),
					FirstName: "Customer", LastName: strconv.Itoa(i + 1), Text: "Hello, I need help",
				})
				if err != nil {
					cancel(fmt.Errorf("loadtest: customer %d writes: %w", i, err))
					continue
				}
				if cfg.CloseAfter > 0 && closes(i, cfg.CloseShare) {
					closing <- toClose{acc: acc, dialog: w.Dialog, due: time.Now().Add(cfg.CloseAfter)}
				}
			}
		})
	}

	var faults sync.WaitGroup
	var killed, outageKilled atomic.Int64
	outageAt := outageStart(n, cfg.Rate, cfg.PGOutage)
	rnd := rand.New(rand.NewPCG(cfg.Seed, 0x6f75746167))
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			}
		}
		if atFraction(i, n, cfg.WSDrops) {
			for _, a := range s.accounts {
				s.res.WSDropped += a.mg.DropWebsockets()
			}
		}
		if atFraction(i, n, cfg.PGKill) {
			faults.Go(func() {
				k, err := s.be.killConnections(ctx)
				if err != nil {
					cancel(err)
				}
				killed.Add(int64(k))
			})
		}
		if cfg.PGOutage > 0 && i == outageAt {
			faults.Go(func() {
				s.logf("PostgreSQL outage for %s from dialog %d", cfg.PGOutage, i)
				k, err := s.be.outage(ctx, cfg.PGOutage, rnd)
				if err != nil {
					cancel(err)
				}
				outageKilled.Add(int64(k))
			})
		}
		if cfg.KillWorker > 0 && atFraction(i, n, cfg.KillWorker) {
			which := s.res.WorkersKilled % s.processes
			s.res.WorkersKilled++
			faults.Go(func() {
				if err := s.killWorker(ctx, which); err != nil {
					cancel(err)
				}
			})
		}
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	writers.Wait()
	close(closing)
	closer.Wait()
	faults.Wait()
	s.res.PGKilled = int(killed.Load())
	s.res.PGOutageKilled = int(outageKilled.Load())
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// outageStart returns the index of the dialog at whose opening the
// PostgreSQL outage starts: centred on the load when the load (at rate) is
// longer than twice the outage, else a quarter into the load; a quarter
// into it too at full speed, whose length is unknown. The load does not
// end before the outage does.
func outageStart(n int, rate float64, outage time.Duration) int {
	if rate <= 0 {
		return n / 4
	}
	load := float64(n) / rate
	at := max((load-outage.Seconds())/2, load/4)
	return min(int(at*rate), n-1)
}

// killWorker kills worker process k with SIGKILL, keeps what it reported
// before it died, and starts a new one in its place, trying again while
// the start fails (e.g. during a PostgreSQL outage). The accounts whose
// streams the killed one ran are taken over by the others once its leases
// lapse, and the jobs it was running are given back then; the new process
// joins the leases like any other.
func (s *scenario) killWorker(ctx context.Context, k int) error {
	s.nodesMu.Lock()
	p, ok := s.nodes[k].(*procNode)
	s.nodesMu.Unlock()
	if !ok {
		return fmt.Errorf("loadtest: node %d is not a worker process", k)
	}
	pid := p.cmd.Process.Pid
	s.holders.killed(pid, time.Now())
	_ = p.kill()
	s.nodesMu.Lock()
	s.killed.merge(p.taken())
	s.nodesMu.Unlock()
	s.logf("killed worker %d (pid %d); starting another", k, pid)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for attempt := 1; ; attempt++ {
		np, err := startProc(ctx, s.spec, s.cfg.Log, s.holders.add)
		if err == nil {
			s.nodesMu.Lock()
			s.nodes[k] = np
			s.res.WorkersRestarted++
			s.res.WorkerRestartMaxMs = max(s.res.WorkerRestartMaxMs, ms(time.Since(start)))
			s.nodesMu.Unlock()
			s.logf("worker %d restarted as pid %d after %s (%d attempts)", k, np.cmd.Process.Pid, time.Since(start).Round(time.Millisecond), attempt)
			return nil
		}
		s.logf("restarting worker %d, attempt %d: %v", k, attempt, err)
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("loadtest: restarting killed worker %d: %w", k, err)
		}
	}
}

// settle waits for the distributors' jobs (Flush), then until every open
// dialog is assigned in MG or waits in the store's queue with its reason's
// reply in MG, no dialog waits while a slot is free, and the store's loads
// agree with what MG shows; or until cfg.Settle passed. It returns the
// state it last saw: not settling in time is a result, not an error.
func (s *scenario) settle(ctx context.Context) (endState, error) {
	deadline := time.Now().Add(s.cfg.Settle)
	fctx, cancel := context.WithDeadline(ctx, deadline)
	start := time.Now()
	err := s.flush(fctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return endState{}, ctx.Err()
		}
		s.res.FlushFailures++
		s.note("flush: " + err.Error())
	}
	s.res.FlushMaxMs = max(s.res.FlushMaxMs, ms(time.Since(start)))
	for {
		es, err := s.inspect(ctx)
		if err != nil {
			return es, err
		}
		if es.stranded == 0 && es.freeWhileQueued == 0 && es.loadsOff == 0 {
			return es, nil
		}
		if time.Now().After(deadline) {
			s.logf("not settled after %s: %d stranded (%d waiting without their reply), %d waiting beside a free slot, store loads off MG's by %d",
				s.cfg.Settle, es.stranded, es.noReply, es.freeWhileQueued, es.loadsOff)
			return es, nil
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return es, ctx.Err()
		}
	}
}

// inspect compares every account's MG with the store.
func (s *scenario) inspect(ctx context.Context) (endState, error) {
	var all endState
	for _, a := range s.accounts {
		es, err := inspect(ctx, a.mg, s.be.observer, a.id, a.managers, s.cfg.Capacity, s.replies)
		if err != nil {
			return all, err
		}
		all.add(es)
	}
	return all, nil
}

// flush waits until every account's jobs are done. The store knows them
// whichever process works them, so one node asks.
func (s *scenario) flush(ctx context.Context) error {
	s.nodesMu.Lock()
	n := s.nodes[0]
	s.nodesMu.Unlock()
	return n.flush(ctx)
}

// note keeps a problem of the run for the report.
func (s *scenario) note(msg string) {
	if !slices.Contains(s.notes, msg) && len(s.notes) < 10 {
		s.notes = append(s.notes, msg)
	}
}

// managerRef names a manager of the run: manager ids are per account.
type managerRef struct {
	account bd.AccountID
	manager bd.ManagerID
}

// finish computes the results from what the distributors reported and the
// sandboxes' records, per (account, dialog).
func (s *scenario) finish(rep nodeReport) {
	r := &s.res
	openedAt := map[dialogRef]time.Time{}
	var firstOpen, lastOpen time.Time
	for _, acc := range s.accounts {
		for _, d := range acc.mg.Dialogs() {
			ref := dialogRef{acc.id, d.ID}
			if !d.Responsible.IsZero() {
				s.heldInMG[ref] = true
			}
			openedAt[ref] = d.OpenedAt
			if firstOpen.IsZero() || d.OpenedAt.Before(firstOpen) {
				firstOpen = d.OpenedAt
			}
			if d.OpenedAt.After(lastOpen) {
				lastOpen = d.OpenedAt
			}
		}
	}
	first := map[dialogRef]assignment{}
	byDialog := map[dialogRef][]assignment{}
	for _, a := range rep.Assignments {
		ref := dialogRef{a.Account, a.Dialog}
		byDialog[ref] = append(byDialog[ref], a)
		if f, ok := first[ref]; !ok || a.At < f.At {
			first[ref] = a
		}
	}
	// A dialog given to two responsibles is a double assignment; one given
	// to the same responsible again (the same reservation finished twice)
	// is a repeat: MG is asked twice, nobody else holds it.
	perManager := map[managerRef]int{}
	repeated := map[dialogRef]bool{}
	for ref, as := range byDialog {
		managers := map[bd.ManagerID]bool{}
		for _, a := range as {
			managers[a.Manager] = true
		}
		for m := range managers {
			perManager[managerRef{ref.Account, m}]++
		}
		switch {
		case len(managers) > 1:
			s.doubles[ref] = true
		case len(as) > 1:
			repeated[ref] = true
		}
	}
	examples := func(refs map[dialogRef]bool) []string {
		var out []string
		for _, ref := range slices.SortedFunc(maps.Keys(refs), compareDialogRefs) {
			if len(out) == 3 {
				break
			}
			var b strings.Builder
			fmt.Fprintf(&b, "dialog %d of %s opened %s:", ref.Dialog, ref.Account, openedAt[ref].Format("15:04:05.000000"))
			for _, a := range byDialog[ref] {
				fmt.Fprintf(&b, " to manager %d at %s (from queue %t, by %s);", a.Manager, time.Unix(0, a.At).Format("15:04:05.000000"), a.FromQueue, a.Member)
			}
			out = append(out, b.String())
		}
		return out
	}
	r.DoubleAssignments, r.DoubleExamples = len(s.doubles), examples(s.doubles)
	r.RepeatedAssignments, r.RepeatedExamples = len(repeated), examples(repeated)
	// Assigned counts what MG showed too: a worker process killed with
	// SIGKILL takes its last records with it.
	assigned := maps.Clone(s.heldInMG)
	for ref := range first {
		assigned[ref] = true
	}
	r.Assigned = len(assigned)

	var all, direct []time.Duration
	var lastAssign time.Time
	for ref, a := range first {
		at := time.Unix(0, a.At)
		if at.After(lastAssign) {
			lastAssign = at
		}
		t0, ok := openedAt[ref]
		if !ok {
			continue
		}
		all = append(all, at.Sub(t0))
		if !a.FromQueue {
			direct = append(direct, at.Sub(t0))
		}
	}
	slices.Sort(all)
	slices.Sort(direct)
	r.P50Ms, r.P99Ms, r.P99DirectMs = ms(percentile(all, 50)), ms(percentile(all, 99)), ms(percentile(direct, 99))
	if len(all) > 0 {
		r.MaxMs = ms(all[len(all)-1])
	}
	if span := lastAssign.Sub(firstOpen).Seconds(); span > 0 {
		r.ThroughputPerS = round2(float64(r.Assigned) / span)
	}
	if span := lastOpen.Sub(firstOpen).Seconds(); span > 0 && r.Dialogs > 1 {
		r.OpenRatePerS = round2(float64(r.Dialogs-1) / span)
	}
	var counts []int
	for _, acc := range s.accounts {
		for _, m := range acc.managers {
			counts = append(counts, perManager[managerRef{acc.id, m}])
		}
	}
	r.Fairness = round3(spread(counts))
	if len(counts) > 0 {
		r.FairnessRange = [2]int{slices.Min(counts), slices.Max(counts)}
	}
	if r.RawUpdatePerS > 0 {
		r.RawUpdatePerS = round2(r.RawUpdatePerS)
		r.Ratio = round3(r.ThroughputPerS / r.RawUpdatePerS)
	}
	r.HandlerErrors = rep.HandlerErrors
	r.RunsEnded = rep.RunsEnded
	r.Resyncs = rep.Resyncs
	r.StreamStarts = rep.StreamStarts
	if rep.Connects > rep.StreamStarts {
		r.Reconnects = rep.Connects - rep.StreamStarts
	}
	r.Shares = make([]memberShare, 0, len(rep.Shares))
	for _, m := range slices.Sorted(maps.Keys(rep.Shares)) {
		sh := rep.Shares[m]
		r.Shares = append(r.Shares, memberShare{Member: m, Assignments: sh.Assignments, Replies: sh.Replies})
	}
	r.Failures = rep.Failures
	if r.Failures == nil {
		r.Failures = map[string]int{}
	}
	r.Errors = append(rep.Errors, s.notes...)
}

func compareDialogRefs(a, b dialogRef) int {
	if c := strings.Compare(string(a.Account), string(b.Account)); c != 0 {
		return c
	}
	return cmp.Compare(a.Dialog, b.Dialog)
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }
func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
