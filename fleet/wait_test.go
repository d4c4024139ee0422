package fleet_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/store/memory"
)

// TestAwaitAndReady: an account saved while the fleet runs is waited for
// with Await (built with the credentials saved, or its build's error),
// found again with Value and Account, and is Ready once its stream has
// resynced; both waits give ErrStopped once Run has returned.
func TestAwaitAndReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 0)
		var mu sync.Mutex
		var built []bd.AccountID
		build := func(ctx context.Context, acc bd.Account) (fleet.Parts, error) {
			if acc.MGToken == "refused" {
				return fleet.Parts{}, errors.New("MG refused the token")
			}
			p, err := w.build("a")(ctx, acc)
			p.Value = string(acc.MGToken)
			return p, err
		}
		// A rescan only when asked: Await must ask for it.
		f, stop := start(t, w, "a", fleet.WithBuild(build), fleet.WithRescan(time.Hour),
			fleet.WithHooks(fleet.Hooks{Built: func(id bd.AccountID) {
				mu.Lock()
				built = append(built, id)
				mu.Unlock()
			}}))
		ctx := context.Background()
		time.Sleep(time.Second) // past the first rescan
		synctest.Wait()

		acc := bd.Account{ID: "shop", Domain: "https://shop.example", MGEndpoint: "https://mg.example", MGToken: "token-1", Settings: settings(1, 2)}
		if err := w.st.SaveAccount(ctx, acc); err != nil {
			t.Fatal(err)
		}
		begun := time.Now()
		if err := f.Await(ctx, acc); err != nil {
			t.Fatalf("Await: %v", err)
		}
		if took := time.Since(begun); took > time.Second {
			t.Errorf("Await took %s: it did not ask for a rescan", took)
		}
		if v, err := f.Value(acc.ID); err != nil || v != "token-1" {
			t.Errorf("Value = %v, %v; want the build's token-1", v, err)
		}
		if err := f.Ready(ctx, acc.ID); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		st, err := f.Account(ctx, acc.ID)
		if err != nil || !st.Running || !st.Holder || st.LastResync.IsZero() || st.Domain != acc.Domain || st.MGEndpoint != acc.MGEndpoint || len(st.Problems) != 0 {
			t.Errorf("Account = %+v, %v; want it running, held, resynced, with its domain and endpoint, no problem", st, err)
		}

		// New credentials: Await waits for the rebuild, not the old build.
		acc.MGToken = "token-2"
		if err := w.st.SaveAccount(ctx, acc); err != nil {
			t.Fatal(err)
		}
		begun = time.Now()
		if err := f.Await(ctx, acc); err != nil {
			t.Fatalf("Await after a new token: %v", err)
		}
		if took := time.Since(begun); took > time.Second {
			t.Errorf("Await after a new token took %s: it did not ask for a rescan", took)
		}
		if v, _ := f.Value(acc.ID); v != "token-2" {
			t.Errorf("Value after the new token = %v, want token-2", v)
		}
		mu.Lock()
		if len(built) != 2 {
			t.Errorf("Hooks.Built saw %v, want the account twice", built)
		}
		mu.Unlock()

		// A build that fails: Await, Ready and Value say why.
		bad := bd.Account{ID: "refusing", MGToken: "refused", Settings: settings(1)}
		if err := w.st.SaveAccount(ctx, bad); err != nil {
			t.Fatal(err)
		}
		if err := f.Await(ctx, bad); err == nil || !strings.Contains(err.Error(), "MG refused the token") {
			t.Errorf("Await of an account that cannot start: %v, want the build's error", err)
		}
		if err := f.Ready(ctx, bad.ID); err == nil || !strings.Contains(err.Error(), "MG refused the token") {
			t.Errorf("Ready of an account that cannot start: %v, want the build's error", err)
		}
		if _, err := f.Value(bad.ID); err == nil || errors.Is(err, fleet.ErrUnknownAccount) {
			t.Errorf("Value of an account that cannot start: %v, want why it does not run", err)
		}
		st, err = f.Account(ctx, bad.ID)
		if err != nil || st.Running || len(st.Problems) != 1 || st.Problems[0].Op != "build" || !strings.Contains(st.Problems[0].String(), "build: MG refused the token") {
			t.Errorf("Account of an account that cannot start = %+v, %v; want not running, with its build problem", st, err)
		}
		if _, err := f.Account(ctx, "nobody"); !errors.Is(err, fleet.ErrUnknownAccount) {
			t.Errorf("Account of an unknown account: %v, want ErrUnknownAccount", err)
		}

		stop()
		select {
		case <-f.Done():
		default:
			t.Error("Done is not closed after Run returned")
		}
		if err := f.Await(ctx, bd.Account{ID: "later"}); !errors.Is(err, fleet.ErrStopped) {
			t.Errorf("Await after Run returned: %v, want ErrStopped", err)
		}
		if err := f.Ready(ctx, acc.ID); !errors.Is(err, fleet.ErrStopped) {
			t.Errorf("Ready after Run returned: %v, want ErrStopped", err)
		}
	})
}

// TestAwaitBeforeRun: Await called before Run waits for Run to start and
// build the account; a canceled wait returns the context's error.
func TestAwaitBeforeRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memory.New()
		acc := bd.Account{ID: "shop", MGToken: "t", Settings: settings(1)}
		if err := st.SaveAccount(context.Background(), acc); err != nil {
			t.Fatal(err)
		}
		f, err := fleet.New(st, fleet.WithBuild(func(context.Context, bd.Account) (fleet.Parts, error) {
			return fleet.Parts{Gateway: &distributortest.Gateway{}}, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := f.Await(short, acc); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Await before Run with a short context: %v, want its deadline", err)
		}
		awaited := make(chan error, 1)
		go func() { awaited <- f.Await(context.Background(), acc) }()
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case err := <-awaited:
			t.Fatalf("Await returned %v before Run started", err)
		default:
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		if err := <-awaited; err != nil {
			t.Errorf("Await: %v", err)
		}
		// No stream: ready once held.
		if err := f.Ready(context.Background(), acc.ID); err != nil {
			t.Errorf("Ready of an account without a stream: %v", err)
		}
		stop()
		<-done
	})
}

// TestPollFollowsTheStream: Parts.Poll runs only in the member running the
// account's stream, once before the stream starts and then every
// WithPoll; its failures and the stream's are the account's problems
// until they succeed again. When the member stops, the other one polls.
func TestPollFollowsTheStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1)
		const acc = bd.AccountID("shop-0")
		type member struct {
			mu    sync.Mutex
			order []string // "poll" and "stream", as they began
			fails int      // polls and stream runs left to fail
		}
		build := func(name string, m *member) fleet.BuildFunc {
			return func(ctx context.Context, a bd.Account) (fleet.Parts, error) {
				p, err := w.build(name)(ctx, a)
				stream := p.Stream
				p.Stream = func(t mgsource.Target) (fleet.Stream, error) {
					m.mu.Lock()
					defer m.mu.Unlock()
					m.order = append(m.order, "stream")
					if m.fails > 0 {
						m.fails--
						return failing{}, nil
					}
					return stream(t)
				}
				p.Poll = func(ctx context.Context, t mgsource.Target) error {
					m.mu.Lock()
					defer m.mu.Unlock()
					m.order = append(m.order, "poll")
					if m.fails > 0 {
						m.fails--
						return errors.New("CRM unreachable")
					}
					return nil
				}
				return p, err
			}
		}
		count := func(m *member, what string) int {
			m.mu.Lock()
			defer m.mu.Unlock()
			n := 0
			for _, o := range m.order {
				if o == what {
					n++
				}
			}
			return n
		}
		problems := func(f *fleet.Fleet) string {
			st, err := f.Account(context.Background(), acc)
			if err != nil {
				t.Fatal(err)
			}
			var ops []string
			for _, p := range st.Problems {
				ops = append(ops, p.Op)
			}
			return strings.Join(ops, ",")
		}
		// a fails its first poll and its first stream run.
		ma, mb := &member{fails: 2}, &member{}
		var failed sync.Map
		a, stopA := start(t, w, "a", fleet.WithBuild(build("a", ma)), fleet.WithPoll(300*time.Millisecond),
			fleet.WithHooks(fleet.Hooks{Failed: func(_ bd.AccountID, op string, _ error) { failed.Store(op, true) }}))
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if got := problems(a); got != "poll,stream" {
			t.Errorf("after a failed poll and stream run, problems %q, want poll,stream", got)
		}
		for _, op := range []string{"poll", "stream"} {
			if _, ok := failed.Load(op); !ok {
				t.Errorf("Hooks.Failed did not see %q", op)
			}
		}
		ma.mu.Lock()
		if len(ma.order) == 0 || ma.order[0] != "poll" {
			t.Errorf("a began with %v, want the poll before the stream", ma.order)
		}
		ma.mu.Unlock()
		// The next poll (300 ms) and the stream restarted (after 1 s) succeed.
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if got := problems(a); got != "" {
			t.Errorf("after the poll and the stream recovered, problems %q, want none", got)
		}
		if n := count(ma, "poll"); n < 5 || n > 6 {
			t.Errorf("a polled %d times in 1.6 s every 300 ms, want 5 or 6", n)
		}

		// b joins: the account stays with a, and b never polls.
		b, _ := start(t, w, "b", fleet.WithBuild(build("b", mb)), fleet.WithPoll(300*time.Millisecond))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if len(b.Holding()) != 0 || count(mb, "poll") != 0 {
			t.Fatalf("b holds %v and polled %d times, want nothing and never", b.Holding(), count(mb, "poll"))
		}
		stopA()
		polled := count(ma, "poll")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if len(b.Holding()) != 1 || count(mb, "poll") == 0 {
			t.Errorf("after a stopped, b holds %v and polled %d times, want the account, polled", b.Holding(), count(mb, "poll"))
		}
		if n := count(ma, "poll"); n != polled {
			t.Errorf("a polled %d more times after it stopped", n-polled)
		}
		if o := w.overlaps(); len(o) > 0 {
			t.Fatalf("streams overlapped: %v", o)
		}
	})
}

// failing is a stream that stops at once, as one whose token MG refused.
type failing struct{}

func (failing) Run(context.Context) error { return errors.New("MG refused the token") }
