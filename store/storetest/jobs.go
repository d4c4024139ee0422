package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// jobWait bounds how long a case waits for a job engine to pick work up. A
// SQL engine polls, so this is generous; a case that passes waits far less.
const jobWait = 30 * time.Second

// fastRetry keeps retries quick in the suite.
func fastRetry(int) time.Duration { return 5 * time.Millisecond }

// runs collects the jobs a handler was given.
type runs struct {
	mu   sync.Mutex
	jobs []store.Job
	ch   chan store.Job
}

func newRuns() *runs { return &runs{ch: make(chan store.Job, 4096)} }

func (r *runs) note(j store.Job) {
	r.mu.Lock()
	r.jobs = append(r.jobs, j)
	r.mu.Unlock()
	r.ch <- j
}

func (r *runs) all() []store.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Job(nil), r.jobs...)
}

// next waits for the next job run.
func (r *runs) next(t *testing.T) store.Job {
	t.Helper()
	select {
	case j := <-r.ch:
		return j
	case <-time.After(jobWait):
		t.Fatalf("no job ran within %s", jobWait)
		return store.Job{}
	}
}

// work runs s.Work in the background until the test ends.
func work(t *testing.T, s store.Store, h store.JobHandler, o store.WorkOptions) (stop func()) {
	t.Helper()
	if o.Backoff == nil {
		o.Backoff = fastRetry
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Work(ctx, h, o) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("Work returned %v, want context.Canceled", err)
				}
			case <-time.After(jobWait):
				t.Errorf("Work did not return within %s of its context ending", jobWait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitPending waits until the account has want pending jobs.
func waitPending(t *testing.T, s store.Store, acc bd.AccountID, want int) {
	t.Helper()
	deadline := time.Now().Add(jobWait)
	for {
		n, err := s.PendingJobs(context.Background(), acc)
		noErr(t, err, "PendingJobs(%q)", acc)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PendingJobs(%q) = %d after %s, want %d", acc, n, jobWait, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func jobDialog(acc bd.AccountID, id int) bd.Dialog {
	return bd.Dialog{
		Account: acc, ID: bd.DialogID(id), Chat: bd.ChatID(7000 + id), Channel: 3,
		Customer: bd.Customer{ID: bd.CustomerID(9000 + id), FirstName: "Ann", LastName: "Lee", Phone: "+79990001122"},
		OpenedAt: at(time.Duration(id) * time.Second),
	}
}

func jobCases() []testCase {
	return []testCase{
		{"RoundTrip", func(t *testing.T, s store.Store) {
			acc := newAccount(t)
			want := []store.Job{
				{Kind: store.JobDistribute, Account: acc, Dialog: jobDialog(acc, 1)},
				{Kind: store.JobReply, Account: acc, Dialog: jobDialog(acc, 1), Situation: bd.ManagerAssigned, First: bd.DialogReceived, Manager: 42},
				{Kind: store.JobMove, Account: acc, Dialog: jobDialog(acc, 2), Manager: 7, Why: "manager unavailable"},
				{Kind: store.JobBind, Account: acc, Dialog: jobDialog(acc, 3)},
				{Kind: store.JobDrain, Account: acc},
			}
			noErr(t, s.Submit(context.Background(), want...), "Submit")
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error { r.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			got := map[string]store.Job{}
			for range want {
				j := r.next(t)
				got[j.Key()] = j
			}
			for _, w := range want {
				g, ok := got[w.Key()]
				if !ok {
					t.Fatalf("job %s never ran; ran %v", w.Key(), keys(r.all()))
				}
				if g.ID == 0 || g.Attempt != 1 {
					t.Errorf("job %s: ID %d, Attempt %d; want a non-zero ID and attempt 1", w.Key(), g.ID, g.Attempt)
				}
				if g.Kind != w.Kind || g.Account != w.Account || g.Situation != w.Situation || g.First != w.First || g.Manager != w.Manager || g.Why != w.Why {
					t.Errorf("job %s came back as %+v, want %+v", w.Key(), g, w)
				}
				gd, wd := g.Dialog, w.Dialog
				if gd.ID != wd.ID || gd.Chat != wd.Chat || gd.Channel != wd.Channel || gd.Customer != wd.Customer || !gd.OpenedAt.Equal(wd.OpenedAt) {
					t.Errorf("job %s: dialog came back as %+v, want %+v", w.Key(), gd, wd)
				}
			}
			waitPending(t, s, acc, 0)
		}},
		{"Invalid", func(t *testing.T, s store.Store) {
			acc := newAccount(t)
			ctx := context.Background()
			for _, bad := range []store.Job{
				{Kind: "sing", Account: acc, Dialog: jobDialog(acc, 1)},
				{Kind: store.JobDistribute, Dialog: jobDialog(acc, 1)},
				{Kind: store.JobDistribute, Account: acc},
				{Kind: store.JobReply, Account: acc, Dialog: jobDialog(acc, 1)},
				{Kind: store.JobMove, Account: acc, Dialog: jobDialog(acc, 1)},
				{Kind: store.JobDistribute, Account: acc, Dialog: jobDialog(acc+"-other", 1)},
				{Kind: store.JobBind, Account: acc, Dialog: jobDialog(acc, 1), First: bd.DialogReceived},
				{Kind: store.JobReply, Account: acc, Dialog: jobDialog(acc, 1), Situation: bd.DialogReceived, First: bd.DialogReceived},
			} {
				good := store.Job{Kind: store.JobDrain, Account: acc}
				isErr(t, s.Submit(ctx, good, bad), store.ErrInvalid, "Submit(%+v)", bad)
				_, err := s.ClaimEvent(ctx, acc, "opened:1", at(0), bad)
				isErr(t, err, store.ErrInvalid, "ClaimEvent with %+v", bad)
			}
			n, err := s.PendingJobs(ctx, acc)
			noErr(t, err, "PendingJobs")
			if n != 0 {
				t.Fatalf("PendingJobs = %d after refused submissions, want 0", n)
			}
			first, err := s.ClaimEvent(ctx, acc, "opened:1", at(0))
			noErr(t, err, "ClaimEvent")
			if !first {
				t.Fatal("an event claim refused for a bad job was taken anyway")
			}
		}},
		{"RetryThenDone", func(t *testing.T, s store.Store) {
			acc := newAccount(t)
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error {
				r.note(j)
				if j.Attempt < 3 {
					return fmt.Errorf("attempt %d fails", j.Attempt)
				}
				return nil
			}, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			noErr(t, s.Submit(context.Background(), store.Job{Kind: store.JobBind, Account: acc, Dialog: jobDialog(acc, 1)}), "Submit")
			for want := 1; want <= 3; want++ {
				if j := r.next(t); j.Attempt != want {
					t.Fatalf("run %d has Attempt %d", want, j.Attempt)
				}
			}
			waitPending(t, s, acc, 0)
			dead, err := s.DeadJobs(context.Background(), acc, 10)
			noErr(t, err, "DeadJobs")
			if len(dead) != 0 {
				t.Fatalf("DeadJobs = %v after the job succeeded", dead)
			}
		}},
		{"DeadLetter", func(t *testing.T, s store.Store) {
			acc := newAccount(t)
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error {
				r.note(j)
				return &store.RetryAfterError{Delay: time.Millisecond, Err: errors.New("MG says 429")}
			}, store.WorkOptions{Accounts: []bd.AccountID{acc}, MaxAttempts: 3})
			job := store.Job{Kind: store.JobReply, Account: acc, Dialog: jobDialog(acc, 1), Situation: bd.DialogReceived}
			noErr(t, s.Submit(context.Background(), job), "Submit")
			for range 3 {
				r.next(t)
			}
			waitPending(t, s, acc, 0)
			dead, err := s.DeadJobs(context.Background(), acc, 10)
			noErr(t, err, "DeadJobs")
			if len(dead) != 1 || dead[0].Key() != job.Key() || dead[0].Err == "" || dead[0].At.IsZero() {
				t.Fatalf("DeadJobs = %+v, want the reply job with its error and time", dead)
			}
			select {
			case j := <-r.ch:
				t.Fatalf("a dead job ran again: attempt %d", j.Attempt)
			default:
			}
			if n := len(r.all()); n != 3 {
				t.Fatalf("the job ran %d times, want MaxAttempts = 3", n)
			}
		}},
		{"UniqueReply", func(t *testing.T, s store.Store) {
			acc := newAccount(t)
			ctx := context.Background()
			reply := store.Job{Kind: store.JobReply, Account: acc, Dialog: jobDialog(acc, 1), Situation: bd.AllManagersBusy}
			noErr(t, s.Submit(ctx, reply, reply), "Submit")
			_, err := s.Enqueue(ctx, store.Waiting{Dialog: jobDialog(acc, 1), Reason: bd.AllManagersBusy, Since: at(0)}, reply)
			noErr(t, err, "Enqueue")
			first, err := s.ClaimReply(ctx, acc, 1, bd.AllManagersBusy)
			noErr(t, err, "ClaimReply")
			if first {
				t.Error("ClaimReply after a stored reply job = true; the job holds the claim")
			}
			claimed, err := s.ClaimReply(ctx, acc, 2, bd.DialogReceived)
			noErr(t, err, "ClaimReply")
			if !claimed {
				t.Fatal("ClaimReply of a fresh reply = false")
			}
			noErr(t, s.Submit(ctx, store.Job{Kind: store.JobReply, Account: acc, Dialog: jobDialog(acc, 2), Situation: bd.DialogReceived}), "Submit")
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error { r.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			r.next(t)
			waitPending(t, s, acc, 0)
			noErr(t, s.Submit(ctx, reply), "Submit")
			waitPending(t, s, acc, 0)
			if got := keys(r.all()); len(got) != 1 || got[0] != reply.Key() {
				t.Fatalf("ran %v, want the one reply job once", got)
			}
		}},
		{"ReplyWithFirst", func(t *testing.T, s store.Store) {
			// A job of two replies keeps those not claimed before: both,
			// the second only, the first only (as its situation), or none.
			acc := newAccount(t)
			ctx := context.Background()
			both := func(id int) store.Job {
				return store.Job{Kind: store.JobReply, Account: acc, Dialog: jobDialog(acc, id), Situation: bd.ManagerAssigned, First: bd.DialogReceived, Manager: 42}
			}
			for _, c := range []struct {
				dialog int
				sit    bd.Situation
			}{{2, bd.DialogReceived}, {3, bd.ManagerAssigned}, {4, bd.DialogReceived}, {4, bd.ManagerAssigned}} {
				claimed, err := s.ClaimReply(ctx, acc, bd.DialogID(c.dialog), c.sit)
				noErr(t, err, "ClaimReply")
				if !claimed {
					t.Fatalf("ClaimReply(%d, %s) of a fresh reply = false", c.dialog, c.sit)
				}
			}
			noErr(t, s.Submit(ctx, both(1), both(2), both(3), both(4)), "Submit")
			_, err := s.Enqueue(ctx, store.Waiting{Dialog: jobDialog(acc, 1), Reason: bd.AllManagersBusy, Since: at(0)}, both(1))
			noErr(t, err, "Enqueue")
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error { r.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			waitPending(t, s, acc, 0)
			got := map[bd.DialogID][2]bd.Situation{}
			for _, j := range r.all() {
				if _, twice := got[j.Dialog.ID]; twice {
					t.Errorf("dialog %d: a second reply job ran: %+v", j.Dialog.ID, j)
				}
				got[j.Dialog.ID] = [2]bd.Situation{j.First, j.Situation}
			}
			want := map[bd.DialogID][2]bd.Situation{
				1: {bd.DialogReceived, bd.ManagerAssigned},
				2: {"", bd.ManagerAssigned},
				3: {"", bd.DialogReceived},
			}
			if !maps.Equal(got, want) {
				t.Fatalf("reply jobs ran as (first, situation) per dialog %v, want %v", got, want)
			}
			for _, id := range []bd.DialogID{1, 2, 3} {
				for _, sit := range []bd.Situation{bd.DialogReceived, bd.ManagerAssigned} {
					claimed, err := s.ClaimReply(ctx, acc, id, sit)
					noErr(t, err, "ClaimReply")
					if claimed {
						t.Errorf("dialog %d: the %s reply was not claimed by its job", id, sit)
					}
				}
			}
		}},
		{"UniqueWhilePending", func(t *testing.T, s store.Store) {
			acc := newAccount(t)
			ctx := context.Background()
			dist := store.Job{Kind: store.JobDistribute, Account: acc, Dialog: jobDialog(acc, 1)}
			drain := store.Job{Kind: store.JobDrain, Account: acc}
			noErr(t, s.Submit(ctx, dist, dist, drain, drain), "Submit")
			_, err := s.ClaimEvent(ctx, acc, "message:1", at(0), dist)
			noErr(t, err, "ClaimEvent")
			n, err := s.PendingJobs(ctx, acc)
			noErr(t, err, "PendingJobs")
			if n != 3 {
				t.Fatalf("PendingJobs = %d, want 3: one distribute job and two drain jobs", n)
			}
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error { r.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			for range 3 {
				r.next(t)
			}
			waitPending(t, s, acc, 0)
			noErr(t, s.Submit(ctx, dist), "Submit")
			if j := r.next(t); j.Key() != dist.Key() {
				t.Fatalf("ran %s, want a distribute job submitted after the first finished", j.Key())
			}
		}},
		{"SameStepAsChange", func(t *testing.T, s store.Store) {
			acc := newAccount(t)
			ctx := context.Background()
			job := func(id int) store.Job {
				return store.Job{Kind: store.JobBind, Account: acc, Dialog: jobDialog(acc, id)}
			}
			// Stored with the change.
			first, err := s.ClaimEvent(ctx, acc, "opened:1", at(0), job(1))
			noErr(t, err, "ClaimEvent")
			if !first {
				t.Fatal("first ClaimEvent = false")
			}
			assign(t, s, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(1), Capacity: 1, At: at(0), Then: []store.Job{job(2)}})
			_, err = s.Record(ctx, store.Assignment{Account: acc, Dialog: 3, To: bd.ManagerOf(2), At: at(0), Then: []store.Job{job(3)}})
			noErr(t, err, "Record")
			_, err = s.Enqueue(ctx, store.Waiting{Dialog: jobDialog(acc, 4), Reason: bd.NoManagerOnline, Since: at(0)}, job(4))
			noErr(t, err, "Enqueue")
			_, err = s.Close(ctx, acc, 5, at(0), job(5))
			noErr(t, err, "Close")
			// Not stored when the change is not made.
			first, err = s.ClaimEvent(ctx, acc, "opened:1", at(0), job(6))
			noErr(t, err, "ClaimEvent")
			if first {
				t.Fatal("second ClaimEvent = true")
			}
			err = s.Assign(ctx, store.Assignment{Account: acc, Dialog: 7, To: bd.ManagerOf(1), Capacity: 1, At: at(0), Then: []store.Job{job(7)}})
			isErr(t, err, store.ErrCapacity, "Assign over capacity")
			err = s.Assign(ctx, store.Assignment{Account: acc, Dialog: 2, To: bd.ManagerOf(3), Capacity: 5, At: at(0), Then: []store.Job{job(8)}})
			isErr(t, err, store.ErrAssigned, "Assign of an assigned dialog")
			_, err = s.Enqueue(ctx, store.Waiting{Dialog: bd.Dialog{Account: acc, ID: 5}, Reason: bd.NoManagerOnline, Since: at(0)}, job(9))
			isErr(t, err, store.ErrClosed, "Enqueue of a closed dialog")
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error { r.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			for range 5 {
				r.next(t)
			}
			waitPending(t, s, acc, 0)
			got := map[bd.DialogID]bool{}
			for _, j := range r.all() {
				got[j.Dialog.ID] = true
			}
			for id := bd.DialogID(1); id <= 9; id++ {
				if want := id <= 5; got[id] != want {
					t.Errorf("job of dialog %d ran: %v, want %v", id, got[id], want)
				}
			}
		}},
		{"IfWaiting", func(t *testing.T, s store.Store) {
			// A job marked IfWaiting, stored with a change made while
			// dialogs wait, is kept (a store may keep it when none wait).
			acc := newAccount(t)
			ctx := context.Background()
			drain := store.Job{Kind: store.JobDrain, Account: acc, IfWaiting: true}
			assign(t, s, store.Assignment{Account: acc, Dialog: 1, To: bd.ManagerOf(1), Capacity: 1, At: at(0)})
			_, err := s.Enqueue(ctx, store.Waiting{Dialog: jobDialog(acc, 2), Reason: bd.AllManagersBusy, Since: at(0)})
			noErr(t, err, "Enqueue")
			_, err = s.Close(ctx, acc, 1, at(time.Second), drain)
			noErr(t, err, "Close")
			n, err := s.PendingJobs(ctx, acc)
			noErr(t, err, "PendingJobs")
			if n != 1 {
				t.Fatalf("PendingJobs after a close with a dialog waiting = %d, want 1: the IfWaiting drain was dropped", n)
			}
			// Submit keeps it whatever waits.
			_, err = s.Close(ctx, acc, 2, at(2*time.Second))
			noErr(t, err, "Close")
			noErr(t, s.Submit(ctx, drain), "Submit")
			waitPending(t, s, acc, 2)
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error { r.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			waitPending(t, s, acc, 0)
		}},
		{"WaitIdle", func(t *testing.T, s store.Store) {
			w, ok := s.(store.IdleWaiter)
			if !ok {
				t.Skip("the store does not implement store.IdleWaiter")
			}
			acc := newAccount(t)
			ctx := context.Background()
			noErr(t, w.WaitIdle(ctx, acc), "WaitIdle with nothing pending")
			for i := 1; i <= 3; i++ {
				noErr(t, s.Submit(ctx, store.Job{Kind: store.JobBind, Account: acc, Dialog: jobDialog(acc, i)}), "Submit")
			}
			// Nobody works the jobs: WaitIdle waits until ctx ends.
			short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			err := w.WaitIdle(short, acc)
			cancel()
			isErr(t, err, context.DeadlineExceeded, "WaitIdle with jobs pending and no worker")
			work(t, s, func(_ context.Context, j store.Job) error {
				if j.Dialog.ID == 2 && j.Attempt == 1 {
					return errors.New("once more")
				}
				return nil
			}, store.WorkOptions{Accounts: []bd.AccountID{acc}, Backoff: fastRetry})
			long, cancel := context.WithTimeout(ctx, jobWait)
			defer cancel()
			noErr(t, w.WaitIdle(long, acc), "WaitIdle")
			n, err := s.PendingJobs(ctx, acc)
			noErr(t, err, "PendingJobs")
			if n != 0 {
				t.Fatalf("PendingJobs after WaitIdle = %d, want 0", n)
			}
		}},
		{"Delay", func(t *testing.T, s store.Store) {
			acc := newAccount(t)
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error { r.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			start := time.Now()
			noErr(t, s.Submit(context.Background(), store.Job{Kind: store.JobDrain, Account: acc, Delay: 300 * time.Millisecond}), "Submit")
			r.next(t)
			if waited := time.Since(start); waited < 300*time.Millisecond {
				t.Fatalf("a job delayed by 300ms ran after %s", waited)
			}
		}},
		{"Accounts", func(t *testing.T, s store.Store) {
			a, b := newAccount(t), newAccount(t)
			ra, rb := newRuns(), newRuns()
			work(t, s, func(_ context.Context, j store.Job) error { ra.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{a}})
			work(t, s, func(_ context.Context, j store.Job) error { rb.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{b}})
			var jobs []store.Job
			for i := 1; i <= 10; i++ {
				jobs = append(jobs, store.Job{Kind: store.JobDistribute, Account: a, Dialog: jobDialog(a, i)},
					store.Job{Kind: store.JobDistribute, Account: b, Dialog: jobDialog(b, i)})
			}
			noErr(t, s.Submit(context.Background(), jobs...), "Submit")
			for range 10 {
				if j := ra.next(t); j.Account != a {
					t.Fatalf("the worker of %q got a job of %q", a, j.Account)
				}
				if j := rb.next(t); j.Account != b {
					t.Fatalf("the worker of %q got a job of %q", b, j.Account)
				}
			}
			waitPending(t, s, a, 0)
			waitPending(t, s, b, 0)
		}},
		{"OnceAcrossWorkers", func(t *testing.T, s store.Store) {
			acc := newAccount(t)
			const n = 200
			var (
				mu      sync.Mutex
				count   = map[int64]int{}
				running atomic.Int64
				overlap atomic.Bool
			)
			h := func(_ context.Context, j store.Job) error {
				if running.Add(1) > 8 {
					overlap.Store(true) // more at once than the two workers allow
				}
				defer running.Add(-1)
				mu.Lock()
				count[int64(j.Dialog.ID)]++
				mu.Unlock()
				return nil
			}
			work(t, s, h, store.WorkOptions{Accounts: []bd.AccountID{acc}, Workers: 4})
			work(t, s, h, store.WorkOptions{Accounts: []bd.AccountID{acc}, Workers: 4})
			var jobs []store.Job
			for i := 1; i <= n; i++ {
				jobs = append(jobs, store.Job{Kind: store.JobDistribute, Account: acc, Dialog: jobDialog(acc, i)})
			}
			noErr(t, s.Submit(context.Background(), jobs...), "Submit")
			waitPending(t, s, acc, 0)
			mu.Lock()
			defer mu.Unlock()
			for i := 1; i <= n; i++ {
				if c := count[int64(i)]; c != 1 {
					t.Errorf("the job of dialog %d ran %d times, want once", i, c)
				}
			}
			if overlap.Load() {
				t.Error("more handlers ran at once than WorkOptions.Workers allow")
			}
		}},
		{"AllWorkersRun", func(t *testing.T, s store.Store) {
			// Every worker takes a job while the others are blocked in
			// theirs (as they are when MessageGateway is slow), however
			// many more workers there are than processors.
			acc := newAccount(t)
			n := runtime.GOMAXPROCS(0) + 4
			started := make(chan struct{}, n)
			release := make(chan struct{})
			defer close(release)
			work(t, s, func(ctx context.Context, _ store.Job) error {
				started <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil
			}, store.WorkOptions{Accounts: []bd.AccountID{acc}, Workers: n})
			// The workers fall asleep first, with nothing to do, so that
			// the jobs have to wake them.
			time.Sleep(50 * time.Millisecond)
			var jobs []store.Job
			for i := 1; i <= n; i++ {
				jobs = append(jobs, store.Job{Kind: store.JobDistribute, Account: acc, Dialog: jobDialog(acc, i)})
			}
			noErr(t, s.Submit(context.Background(), jobs...), "Submit")
			wait := time.NewTimer(30 * time.Second)
			defer wait.Stop()
			for i := range n {
				select {
				case <-started:
				case <-wait.C:
					t.Fatalf("%d of %d jobs started while the first ones stayed blocked; want all %d, one per worker", i, n, n)
				}
			}
		}},
		{"TakenUpAfterStop", func(t *testing.T, s store.Store) {
			acc := newAccount(t)
			started := make(chan struct{})
			stop := work(t, s, func(ctx context.Context, j store.Job) error {
				close(started)
				<-ctx.Done() // the worker dies mid-job
				return ctx.Err()
			}, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			noErr(t, s.Submit(context.Background(), store.Job{Kind: store.JobDistribute, Account: acc, Dialog: jobDialog(acc, 1)}), "Submit")
			select {
			case <-started:
			case <-time.After(jobWait):
				t.Fatal("the job never started")
			}
			stop()
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error { r.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			j := r.next(t)
			if j.Dialog.ID != 1 {
				t.Fatalf("ran the job of dialog %d", j.Dialog.ID)
			}
			if j.Attempt != 1 {
				t.Errorf("an attempt cut short by a stop counted: the next is attempt %d, want 1", j.Attempt)
			}
			waitPending(t, s, acc, 0)
		}},
		{"InterruptedAttemptCounts", func(t *testing.T, s store.Store) {
			// A handler stopped mid-job whose attempt may have had an
			// effect returns an error that is not the context's: the
			// attempt counts, and the next one knows it is a retry.
			acc := newAccount(t)
			started := make(chan struct{})
			stop := work(t, s, func(ctx context.Context, j store.Job) error {
				close(started)
				<-ctx.Done()
				return fmt.Errorf("interrupted, may have had an effect: %v", ctx.Err())
			}, store.WorkOptions{Accounts: []bd.AccountID{acc}, Backoff: fastRetry})
			noErr(t, s.Submit(context.Background(), store.Job{Kind: store.JobReply, Account: acc, Dialog: jobDialog(acc, 1), Situation: bd.DialogReceived}), "Submit")
			select {
			case <-started:
			case <-time.After(jobWait):
				t.Fatal("the job never started")
			}
			stop()
			r := newRuns()
			work(t, s, func(_ context.Context, j store.Job) error { r.note(j); return nil }, store.WorkOptions{Accounts: []bd.AccountID{acc}})
			if j := r.next(t); j.Attempt != 2 {
				t.Fatalf("the attempt after an interrupted one is %d, want 2", j.Attempt)
			}
			waitPending(t, s, acc, 0)
		}},
	}
}

func keys(js []store.Job) []string {
	out := make([]string, len(js))
	for i, j := range js {
		out[i] = j.Key()
	}
	return out
}
