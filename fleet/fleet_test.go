package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

func settings(managers ...bd.ManagerID) bd.Settings {
	return bd.Settings{
		Active:          true,
		Managers:        managers,
		DefaultCapacity: 1000,
		Availability:    bd.OnlineOnly,
		Reassign:        bd.ReassignOff,
		Replies: map[bd.Situation]string{
			bd.DialogReceived: "Hi!", bd.ManagerAssigned: "{{.Manager}} is here.",
			bd.NoManagerOnline: "Nobody online.", bd.AllManagersBusy: "Please wait.",
			bd.OutsideWorkingHours: "Closed.",
		},
	}
}

// world is what the fleets under test share, as processes share MG and a
// database: the store, each account's gateway and event feed, and a
// tracker of the streams running.
type world struct {
	st    *memory.Store
	gw    *distributortest.Gateway // every account's assignments
	feeds map[bd.AccountID]chan distributor.Event

	mu      sync.Mutex
	running map[bd.AccountID]string // account → the member running its stream
	starts  map[bd.AccountID]int
	overlap []string
	builds  atomic.Int64
}

func newWorld(t *testing.T, accounts int) *world {
	w := &world{st: memory.New(), gw: &distributortest.Gateway{}, feeds: map[bd.AccountID]chan distributor.Event{},
		running: map[bd.AccountID]string{}, starts: map[bd.AccountID]int{}}
	for i := range accounts {
		id := bd.AccountID(fmt.Sprintf("shop-%d", i))
		if err := w.st.SaveAccount(context.Background(), bd.Account{ID: id, MGToken: "token-1", Settings: settings(1, 2)}); err != nil {
			t.Fatal(err)
		}
		w.feeds[id] = make(chan distributor.Event, 1000)
	}
	return w
}

// build is the fleets' BuildFunc: the shared recording gateway, and a
// stream that marks the account as run by member while it runs, sets a
// roster of two online managers, resyncs, and hands on the account's
// events.
func (w *world) build(member string) fleet.BuildFunc {
	return func(_ context.Context, acc bd.Account) (fleet.Parts, error) {
		w.builds.Add(1)
		return fleet.Parts{
			Gateway: w.gw,
			Stream: func(t mgsource.Target) (fleet.Stream, error) {
				return stream{w: w, member: member, acc: acc.ID, t: t}, nil
			},
		}, nil
	}
}

type stream struct {
	w      *world
	member string
	acc    bd.AccountID
	t      mgsource.Target
}

func (s stream) Run(ctx context.Context) error {
	w := s.w
	w.mu.Lock()
	if o, ok := w.running[s.acc]; ok {
		w.overlap = append(w.overlap, fmt.Sprintf("%s started %s's stream while %s ran it", s.member, s.acc, o))
	}
	w.running[s.acc] = s.member
	w.starts[s.acc]++
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		if w.running[s.acc] == s.member {
			delete(w.running, s.acc)
		}
		w.mu.Unlock()
	}()
	if err := s.t.SetRoster(ctx, []bd.Manager{{ID: 1, Online: true, Active: true}, {ID: 2, Online: true, Active: true}}); err != nil {
		return err
	}
	if err := s.t.Resync(ctx, nil); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-w.feeds[s.acc]:
			for s.t.Handle(ctx, ev) != nil && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond) // offered again, as mgsource does
			}
		}
	}
}

func (w *world) overlaps() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.overlap)
}

// start runs a fleet until the returned stop is called (or the test ends).
func start(t *testing.T, w *world, member string, opts ...fleet.Option) (*fleet.Fleet, func()) {
	t.Helper()
	opts = append([]fleet.Option{fleet.WithBuild(w.build(member)), fleet.WithMember(member),
		fleet.WithLeaseTTL(time.Second), fleet.WithRescan(time.Second)}, opts...)
	f, err := fleet.New(w.st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run of %s returned %v, want context.Canceled", member, err)
			}
		})
	}
	t.Cleanup(stop)
	return f, stop
}

func TestNewValidates(t *testing.T) {
	st := memory.New()
	build := func(context.Context, bd.Account) (fleet.Parts, error) { return fleet.Parts{}, nil }
	for _, c := range []struct {
		name string
		st   store.Store
		opts []fleet.Option
		want string
	}{
		{"nil store", nil, []fleet.Option{fleet.WithBuild(build)}, "nil store"},
		{"no build", st, nil, "no WithBuild"},
		{"nil option", st, []fleet.Option{fleet.WithBuild(build), nil}, "nil option"},
		{"short TTL", st, []fleet.Option{fleet.WithBuild(build), fleet.WithLeaseTTL(time.Millisecond)}, "WithLeaseTTL"},
		{"accounts in work", st, []fleet.Option{fleet.WithBuild(build), fleet.WithWork(store.WorkOptions{Accounts: []bd.AccountID{"a"}})}, "Accounts must be empty"},
		{"empty member", st, []fleet.Option{fleet.WithBuild(build), fleet.WithMember("")}, "empty member"},
	} {
		_, err := fleet.New(c.st, c.opts...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New returned %v, want an error naming %q", c.name, err, c.want)
		}
	}
}

// TestRebalance: one fleet holds every account; a second one joining gets
// half of them; once it leaves, the first holds them all again. No
// account's stream ever runs twice at once.
func TestRebalance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 6)
		a, _ := start(t, w, "a")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := a.Holding(); len(got) != 6 {
			t.Fatalf("a alone holds %v, want all 6", got)
		}
		b, stopB := start(t, w, "b")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		ha, hb := a.Holding(), b.Holding()
		if len(ha) != 3 || len(hb) != 3 {
			t.Fatalf("after b joined: a holds %v, b holds %v; want 3 each", ha, hb)
		}
		stopB()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := a.Holding(); len(got) != 6 {
			t.Fatalf("after b left: a holds %v, want all 6", got)
		}
		if o := w.overlaps(); len(o) > 0 {
			t.Fatalf("streams overlapped: %v", o)
		}
	})
}

// partition makes a member's lease rounds fail while cut is set, as when
// its database connection is gone while the process lives on.
type partition struct {
	store.Leases
	cut atomic.Bool
}

func (p *partition) Lease(ctx context.Context, r store.LeaseRound) (store.LeaseState, error) {
	if p.cut.Load() {
		return store.LeaseState{}, errors.New("database unreachable")
	}
	return p.Leases.Lease(ctx, r)
}

// TestLeaseLost: a member that cannot renew its leases stops its streams
// before they lapse, and the other member takes the accounts over after
// they lapsed: never both at once, and within a TTL and a heartbeat.
func TestLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 4)
		p := &partition{Leases: w.st}
		a, _ := start(t, w, "a", fleet.WithLeases(p))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		b, _ := start(t, w, "b")
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if len(a.Holding()) != 2 || len(b.Holding()) != 2 {
			t.Fatalf("a holds %v, b holds %v; want 2 each", a.Holding(), b.Holding())
		}
		p.cut.Store(true)
		cut := time.Now()
		for len(b.Holding()) < 4 {
			if time.Since(cut) > 5*time.Second {
				t.Fatalf("b holds %v %s after a was cut off; want all 4", b.Holding(), time.Since(cut))
			}
			time.Sleep(50 * time.Millisecond)
		}
		// TTL 1s, heartbeat 250ms: a's leases lapse at most 1s after its
		// last renewal, b takes them at its next round.
		if took := time.Since(cut); took > 1500*time.Millisecond {
			t.Errorf("b took a's accounts %s after the cut, want at most 1.5s", took)
		}
		if got := a.Holding(); len(got) != 0 {
			t.Errorf("a, cut off, still runs the streams of %v", got)
		}
		if o := w.overlaps(); len(o) > 0 {
			t.Fatalf("streams overlapped: %v", o)
		}
	})
}

// TestSettingsChange: settings saved in the store are put in force, and a
// changed token rebuilds the account and restarts its stream, while
// dialogs keep arriving: every dialog is assigned once, none lost, none
// twice.
func TestSettingsChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1)
		const acc = bd.AccountID("shop-0")
		f, _ := start(t, w, "a")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		open := func(from, to int) {
			for id := from; id <= to; id++ {
				w.feeds[acc] <- distributor.Event{Kind: distributor.DialogOpened, Account: acc, Dialog: bd.Dialog{ID: bd.DialogID(id), Chat: bd.ChatID(id)}}
			}
		}
		open(1, 30)
		// New settings: manager 2 leaves the distribution.
		if err := w.st.SaveSettings(context.Background(), acc, settings(1)); err != nil {
			t.Fatal(err)
		}
		f.Rescan()
		open(31, 60)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		d, err := f.Distributor(acc)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := d.Settings(context.Background()); err != nil || !slices.Equal(s.Managers, []bd.ManagerID{1}) {
			t.Fatalf("settings in force: managers %v, %v; want [1]", s.Managers, err)
		}
		// A new token: the account is built anew, its stream restarted.
		a, err := w.st.Account(context.Background(), acc)
		if err != nil {
			t.Fatal(err)
		}
		a.MGToken = "token-2"
		if err := w.st.SaveAccount(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		builds := w.builds.Load()
		f.Rescan()
		open(61, 90)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if w.builds.Load() != builds+1 {
			t.Errorf("a changed token built the account %d times, want once", w.builds.Load()-builds)
		}
		if d2, _ := f.Distributor(acc); d2 == d {
			t.Error("the distributor was not replaced after the token changed")
		}
		seen := map[bd.DialogID]int{}
		late := 0
		for _, c := range w.gw.Calls() {
			seen[c.Dialog]++
			if c.Dialog > 60 && c.To != bd.ManagerOf(1) {
				late++
			}
		}
		for id := bd.DialogID(1); id <= 90; id++ {
			if seen[id] != 1 {
				t.Errorf("dialog %d was assigned %d times, want once", id, seen[id])
			}
		}
		if late > 0 {
			t.Errorf("%d dialogs after the settings change went to someone but manager 1", late)
		}
		w.mu.Lock()
		starts := w.starts[acc]
		w.mu.Unlock()
		if starts != 2 {
			t.Errorf("the stream started %d times, want twice (before and after the new token)", starts)
		}
		if o := w.overlaps(); len(o) > 0 {
			t.Fatalf("streams overlapped: %v", o)
		}
	})
}

// TestAccountRemoved: an account deleted from the store... the memory
// store cannot delete accounts, so removal is seen through a store that
// hides one.
type hiding struct {
	*memory.Store
	hide atomic.Value // bd.AccountID
}

func (h *hiding) Accounts(ctx context.Context) ([]bd.Account, error) {
	all, err := h.Store.Accounts(ctx)
	hidden, _ := h.hide.Load().(bd.AccountID)
	return slices.DeleteFunc(all, func(a bd.Account) bool { return a.ID == hidden }), err
}

func TestAccountRemoved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 2)
		hs := &hiding{Store: w.st}
		f, err := fleet.New(hs, fleet.WithBuild(w.build("a")), fleet.WithMember("a"), fleet.WithLeaseTTL(time.Second), fleet.WithRescan(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := f.Holding(); len(got) != 2 {
			t.Fatalf("holds %v, want both accounts", got)
		}
		hs.hide.Store(bd.AccountID("shop-1"))
		f.Rescan()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := f.Holding(); !slices.Equal(got, []bd.AccountID{"shop-0"}) {
			t.Errorf("after shop-1 was removed, holds %v, want [shop-0]", got)
		}
		if _, err := f.Distributor("shop-1"); !errors.Is(err, fleet.ErrUnknownAccount) {
			t.Errorf("Distributor of a removed account: %v, want ErrUnknownAccount", err)
		}
		states := f.Accounts(context.Background())
		if len(states) != 1 || !states[0].Holder || !states[0].Running || states[0].LastResync.IsZero() || states[0].Waiting != 0 || states[0].Dead != 0 {
			t.Errorf("Accounts = %+v, want shop-0 running, held, resynced, nothing waiting or dead", states)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
		if hs, _ := w.st.Holders(context.Background()); len(hs) != 0 {
			t.Errorf("after Run returned, leases still held: %v", hs)
		}
	})
}
