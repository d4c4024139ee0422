package distributor_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/strategy"
)

// profiler is a binding.Profiler over a fixed map of profiles by customer;
// while block is non-nil, reads wait for it to close.
type profiler struct {
	mu       sync.Mutex
	profiles map[bd.CustomerID]bd.CustomerProfile
	reads    map[bd.CustomerID]int
	block    chan struct{}
}

func newProfiler() *profiler {
	return &profiler{profiles: map[bd.CustomerID]bd.CustomerProfile{}, reads: map[bd.CustomerID]int{}}
}

func (p *profiler) set(c bd.CustomerID, prof bd.CustomerProfile) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prof.CRMCustomer = 900_000 + int64(c)
	p.profiles[c] = prof
}

func (p *profiler) readsOf(c bd.CustomerID) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads[c]
}

func (p *profiler) Profile(ctx context.Context, req binding.ProfileRequest) (bd.CustomerProfile, error) {
	p.mu.Lock()
	p.reads[req.Customer.ID]++
	block := p.block
	p.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return bd.CustomerProfile{}, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	prof, ok := p.profiles[req.Customer.ID]
	if !ok {
		return bd.CustomerProfile{}, fmt.Errorf("customer %d: %w", req.Customer.ID, binding.ErrNoMatch)
	}
	return prof, nil
}

// openAt opens dialog id of a customer of its own at the fixture's clock.
func (f *fixture) openNow(t *testing.T, id int) bd.Dialog {
	t.Helper()
	dl := dialog(id, 1)
	dl.OpenedAt = f.clock.Now()
	f.open(t, dl)
	return dl
}

// decide returns the dry run's trace of the dialog now (queued dialogs
// decided again by a drain leave no trace while they still wait).
func (f *fixture) decide(t *testing.T, dl bd.Dialog) distributor.Trace {
	t.Helper()
	tr, err := f.d.Decide(context.Background(), dl)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func (f *fixture) sweep(t *testing.T) {
	t.Helper()
	f.d.Sweep(context.Background())
	f.flush(t)
}

func wantResponsible(t *testing.T, f *fixture, id bd.DialogID, want bd.Responsible, why string) {
	t.Helper()
	if got := f.responsible(t, id); got != want {
		t.Fatalf("dialog %d: responsible %v, want %v (%s)\n%s", id, got, want, why, f.traceOf(t, id))
	}
}

func TestStrictOrderFollowsTheAdminsOrder(t *testing.T) {
	for _, n := range []int{3, 80} { // 80: a pool decided over its index (from 64)
		t.Run(fmt.Sprintf("managers=%d", n), func(t *testing.T) {
			ids := managerIDs(n)
			order := slices.Clone(ids)
			slices.Reverse(order) // the admin put the highest ids first
			s := settingsFor(order, 1)
			s.Strategy = strategy.NameStrictOrder
			f := newFixture(t, s, onlineManagers(ids), distributor.WithIndexFrom(64))
			for i := range 3 {
				f.openNow(t, i+1)
				wantResponsible(t, f, bd.DialogID(i+1), bd.ManagerOf(order[i]), "the next in the set order with room")
			}
			tr := f.traceOf(t, 3)
			if want := "first in the set order (place 3)"; tr.Choice.Reason != want {
				t.Fatalf("reason %q, want %q", tr.Choice.Reason, want)
			}
			if n >= 64 && tr.CandidateCount > 9 { // the index's head of 8, and the last manager
				t.Fatalf("dialog 3 was decided over %d candidates, not over the index's head", tr.CandidateCount)
			}
			f.close(t, 1) // the first in the order has room again
			f.openNow(t, 4)
			wantResponsible(t, f, 4, bd.ManagerOf(order[0]), "the first in the order again")
			f.checkInvariants(t, ids, 1)
		})
	}
}

// escalation: groups sales {1} and support {2}, manager 3 in neither;
// the default rule offers a dialog to sales for 60 s, to support for
// 120 s, then to everyone.
func escalation() bd.Settings {
	s := settingsFor(managerIDs(3), 1)
	s.Groups = map[string][]bd.ManagerID{"sales": {1}, "support": {2}}
	s.DefaultRule.Steps = []bd.Step{{Group: "sales", Wait: time.Minute}, {Group: "support", Wait: 2 * time.Minute}, {}}
	return s
}

func TestEscalationStepsAdvance(t *testing.T) {
	s := escalation()
	f := newFixture(t, s, onlineManagers(managerIDs(3)))
	f.openNow(t, 1)
	wantResponsible(t, f, 1, bd.ManagerOf(1), "sales has room")

	// Sales is full: the dialog waits for sales while the others are free.
	f.openNow(t, 2)
	tr := f.traceOf(t, 2)
	if st, _ := tr.AtStep(); tr.Outcome != distributor.OutcomeQueued || tr.Step != 0 || st.Group != "sales" || tr.NextStepIn != time.Minute {
		t.Fatalf("trace: outcome %s, step %d (%q), next in %s; want queued at step 0 (sales), next in 1m\n%s", tr.Outcome, tr.Step, st.Group, tr.NextStepIn, tr)
	}
	f.clock.Add(59 * time.Second)
	f.sweep(t)
	wantResponsible(t, f, 2, bd.Responsible{}, "still sales' turn")

	// The sales step is over and support has room: taken at once.
	f.clock.Add(2 * time.Second)
	f.sweep(t)
	wantResponsible(t, f, 2, bd.ManagerOf(2), "support's turn")

	// Sales and support full: a new dialog goes through both steps and
	// reaches everyone after 3 minutes.
	third := f.openNow(t, 3)
	f.clock.Add(61 * time.Second)
	f.sweep(t)
	wantResponsible(t, f, 3, bd.Responsible{}, "support is full")
	tr = f.decide(t, third)
	if st, _ := tr.AtStep(); tr.Step != 1 || st.Group != "support" {
		t.Fatalf("trace: step %d (%q), want 1 (support)\n%s", tr.Step, st.Group, tr)
	}
	f.clock.Add(2 * time.Minute)
	f.sweep(t)
	wantResponsible(t, f, 3, bd.ManagerOf(3), "everyone's turn")
	f.checkInvariants(t, managerIDs(3), 1)
}

func TestEscalationStepFreedSlotGoesToTheStepsDialog(t *testing.T) {
	s := escalation()
	f := newFixture(t, s, onlineManagers(managerIDs(3)))
	f.openNow(t, 1)
	f.openNow(t, 2) // waits for sales
	f.clock.Add(10 * time.Second)
	f.close(t, 1) // sales has room again within the step
	wantResponsible(t, f, 2, bd.ManagerOf(1), "sales freed up during its step")
}

// The wake the distributor sets for a step's end decides the dialog again
// without a sweep.
func TestEscalationStepEndWakesTheQueue(t *testing.T) {
	s := escalation()
	s.DefaultRule.Steps[0].Wait = 50 * time.Millisecond
	// The real clock: the wake is set in real time.
	f := newFixture(t, s, onlineManagers(managerIDs(3)), distributor.WithClock(time.Now))
	ctx := context.Background()
	for _, id := range []int{1, 2} {
		dl := dialog(id, 1)
		dl.OpenedAt = time.Now()
		f.open(t, dl)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.flush(t)
		r, err := f.st.Responsible(ctx, acct, 2)
		if err == nil && r == bd.ManagerOf(2) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dialog 2 not moved to support after its sales step ended: responsible %v, %v", r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func personal(t *testing.T, s bd.Settings) (*fixture, *profiler) {
	t.Helper()
	s.PersonalManager = true
	p := newProfiler()
	f := newFixture(t, s, onlineManagers(managerIDs(3)), distributor.WithProfiler(p, 0, 0))
	return f, p
}

func TestPersonalManagerAvailable(t *testing.T) {
	f, p := personal(t, settingsFor(managerIDs(3), 2))
	p.set(dialog(1, 1).Customer.ID, bd.CustomerProfile{Manager: 3})
	f.openNow(t, 1)
	wantResponsible(t, f, 1, bd.ManagerOf(3), "the personal manager has room")
	tr := f.traceOf(t, 1)
	if tr.Personal != 3 || tr.Profile != "read" || tr.Choice.Reason != "the customer's personal manager in retailCRM" {
		t.Fatalf("trace: personal %d, profile %q, reason %q\n%s", tr.Personal, tr.Profile, tr.Choice.Reason, tr)
	}
	// Without a personal manager in the card, the rule decides.
	f.openNow(t, 2)
	if r := f.responsible(t, 2); r.IsZero() {
		t.Fatalf("dialog 2 not assigned\n%s", f.traceOf(t, 2))
	}
	if tr := f.traceOf(t, 2); tr.Personal != 0 || tr.Profile != "none" {
		t.Fatalf("dialog 2 trace: personal %d, profile %q; want none\n%s", tr.Personal, tr.Profile, tr)
	}
	// That retailCRM has no card for the customer is remembered too.
	again := dialog(3, 1)
	again.Customer, again.OpenedAt = dialog(2, 1).Customer, f.clock.Now()
	f.open(t, again)
	if tr := f.traceOf(t, 3); tr.Profile != "none" || p.readsOf(again.Customer.ID) != 1 {
		t.Fatalf("dialog 3 trace: profile %q after %d reads; want none after one read\n%s", tr.Profile, p.readsOf(again.Customer.ID), tr)
	}
}

func TestPersonalManagerBusyThenFreeWithinTheWait(t *testing.T) {
	f, p := personal(t, settingsFor(managerIDs(3), 1))
	for _, id := range []int{1, 2} {
		p.set(dialog(id, 1).Customer.ID, bd.CustomerProfile{Manager: 3})
	}
	f.openNow(t, 1)
	wantResponsible(t, f, 1, bd.ManagerOf(3), "free")
	f.openNow(t, 2)
	wantResponsible(t, f, 2, bd.Responsible{}, "waits for the personal manager while 1 and 2 are free")
	tr := f.traceOf(t, 2)
	if tr.Personal != 3 || tr.PersonalWait != bd.DefaultPersonalWait || tr.Situation != bd.AllManagersBusy {
		t.Fatalf("trace: personal %d, wait %s, situation %s\n%s", tr.Personal, tr.PersonalWait, tr.Situation, tr)
	}
	f.clock.Add(time.Minute)
	f.sweep(t)
	wantResponsible(t, f, 2, bd.Responsible{}, "still within the wait")
	f.close(t, 1)
	wantResponsible(t, f, 2, bd.ManagerOf(3), "the personal manager freed up within the wait")
}

func TestPersonalManagerBusyPastTheWait(t *testing.T) {
	s := settingsFor(managerIDs(3), 1)
	s.PersonalWait = 30 * time.Second
	f, p := personal(t, s)
	for _, id := range []int{1, 2} {
		p.set(dialog(id, 1).Customer.ID, bd.CustomerProfile{Manager: 3})
	}
	f.openNow(t, 1)
	f.openNow(t, 2)
	wantResponsible(t, f, 2, bd.Responsible{}, "waits for the personal manager")
	f.clock.Add(31 * time.Second)
	f.sweep(t)
	r := f.responsible(t, 2)
	if m, ok := r.Manager(); !ok || m == 3 {
		t.Fatalf("dialog 2: responsible %v, want manager 1 or 2 once the wait is over\n%s", r, f.traceOf(t, 2))
	}
	f.checkInvariants(t, managerIDs(3), 1)
}

// The personal wait comes first, then the rule's steps, counted from its end.
func TestPersonalManagerThenEscalation(t *testing.T) {
	s := escalation()
	s.PersonalWait = 30 * time.Second
	f, p := personal(t, s)
	for _, id := range []int{1, 2, 3} {
		p.set(dialog(id, 1).Customer.ID, bd.CustomerProfile{Manager: 3})
	}
	f.openNow(t, 1) // to 3
	f.openNow(t, 2) // to nobody: waits for 3
	f.clock.Add(31 * time.Second)
	f.sweep(t)
	wantResponsible(t, f, 2, bd.ManagerOf(1), "the wait is over: the sales step")
	third := f.openNow(t, 3) // waits for 3, then sales (full), then support
	f.clock.Add(31 * time.Second)
	f.sweep(t)
	wantResponsible(t, f, 3, bd.Responsible{}, "sales' step")
	if tr := f.decide(t, third); tr.Step != 0 || tr.NextStepIn != 59*time.Second {
		t.Fatalf("trace: step %d, next in %s; want 0, 59s\n%s", tr.Step, tr.NextStepIn, tr)
	}
	f.clock.Add(60 * time.Second)
	f.sweep(t)
	wantResponsible(t, f, 3, bd.ManagerOf(2), "support's step")
}

// bind records that the customer is bound to retailCRM customer
// 900000+id, as the profiler's cards say.
func (f *fixture) bind(t *testing.T, c bd.CustomerID) {
	t.Helper()
	if err := f.st.SaveBinding(context.Background(), store.Binding{Account: acct, Customer: c, CRMCustomer: 900_000 + int64(c), Rule: "phone", At: t0}); err != nil {
		t.Fatal(err)
	}
}

// A bound customer's profile is kept with the binding: another process
// routes by it without reading retailCRM again.
func TestPersonalManagerProfileKeptWithTheBinding(t *testing.T) {
	f, p := personal(t, settingsFor(managerIDs(3), 5))
	c := dialog(1, 1).Customer
	p.set(c.ID, bd.CustomerProfile{Manager: 2, Segments: []string{"vip"}})
	f.bind(t, c.ID)
	f.openNow(t, 1)
	wantResponsible(t, f, 1, bd.ManagerOf(2), "the personal manager")
	b, err := f.st.Binding(context.Background(), acct, c.ID)
	if err != nil || b.Profile.Manager != 2 || b.Rule != "phone" || b.Profile.ReadAt.IsZero() {
		t.Fatalf("binding %+v, %v: want the profile kept with the binder's binding", b, err)
	}

	other := newProfiler() // another process's: it knows no card
	d, err := distributor.New(acct, f.st, f.gw, distributor.WithProfiler(other, 0, 0), distributor.WithClock(f.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.SetRoster(context.Background(), onlineManagers(managerIDs(3))); err != nil {
		t.Fatal(err)
	}
	dl := dialog(2, 1)
	dl.Customer, dl.OpenedAt = c, f.clock.Now()
	tr, err := d.Decide(context.Background(), dl)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Profile != "cached" || tr.Choice.Manager != 2 || other.readsOf(c.ID) != 0 {
		t.Fatalf("the other process: profile %q, choice %d, %d reads of retailCRM; want the stored profile\n%s", tr.Profile, tr.Choice.Manager, other.readsOf(c.ID), tr)
	}
	// A customer bound to no card of theirs: the store keeps no binding
	// of the profile's own (the binder decides what is linked).
	u := dialog(3, 1)
	p.set(u.Customer.ID, bd.CustomerProfile{Manager: 1})
	f.openNow(t, 3)
	if _, err := f.st.Binding(context.Background(), acct, u.Customer.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("binding of an unbound customer: %v, want none", err)
	}
}

func TestPersonalManagerProfileReadOnce(t *testing.T) {
	f, p := personal(t, settingsFor(managerIDs(3), 5))
	c := dialog(1, 1).Customer
	p.set(c.ID, bd.CustomerProfile{Manager: 2})
	for id := 1; id <= 3; id++ {
		dl := dialog(id, 1)
		dl.Customer = c
		dl.OpenedAt = f.clock.Now()
		f.open(t, dl)
		wantResponsible(t, f, bd.DialogID(id), bd.ManagerOf(2), "the personal manager")
		f.close(t, bd.DialogID(id))
	}
	if n := p.readsOf(c.ID); n != 1 {
		t.Fatalf("profile read %d times, want once (then kept with the binding)", n)
	}
	if tr := f.traceOf(t, 3); tr.Profile != "cached" {
		t.Fatalf("third dialog's profile %q, want cached", tr.Profile)
	}
	// An old profile is read again.
	f.clock.Add(distributor.DefaultProfileMaxAge + time.Minute)
	dl := dialog(4, 1)
	dl.Customer, dl.OpenedAt = c, f.clock.Now()
	f.open(t, dl)
	if n := p.readsOf(c.ID); n != 2 {
		t.Fatalf("profile read %d times after it aged, want 2", n)
	}
}

// A slow CRM does not hold the dialog: it is routed by the rule, and the
// read, finished in the background, serves the next dialog.
func TestPersonalManagerSlowCRMDoesNotHoldTheDialog(t *testing.T) {
	s := settingsFor(managerIDs(3), 5)
	s.PersonalManager = true
	p := newProfiler()
	c := dialog(1, 1).Customer
	p.set(c.ID, bd.CustomerProfile{Manager: 3})
	p.block = make(chan struct{})
	f := newFixture(t, s, onlineManagers(managerIDs(3)), distributor.WithProfiler(p, 20*time.Millisecond, 0))
	f.bind(t, c.ID)
	f.openNow(t, 1)
	r := f.responsible(t, 1)
	if r.IsZero() {
		t.Fatalf("dialog 1 waits for a slow CRM\n%s", f.traceOf(t, 1))
	}
	if tr := f.traceOf(t, 1); tr.Profile != "timed out" {
		t.Fatalf("profile %q, want timed out\n%s", tr.Profile, tr)
	}
	p.mu.Lock()
	close(p.block)
	p.block = nil
	p.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := f.st.Binding(context.Background(), acct, c.ID)
		if err == nil && b.Profile.Manager == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background read kept nothing: %+v, %v", b, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	dl := dialog(2, 1)
	dl.Customer, dl.OpenedAt = c, f.clock.Now()
	f.open(t, dl)
	wantResponsible(t, f, 2, bd.ManagerOf(3), "the profile read in the background")
}

func TestPriorityCustomersWaitAhead(t *testing.T) {
	for _, by := range []string{"segment", "tag"} {
		t.Run(by, func(t *testing.T) {
			s := settingsFor(managerIDs(1), 1)
			s.ReturningFirst = true
			s.PrioritySegments, s.PriorityTags = []string{"vip"}, []string{"gold"}
			p := newProfiler()
			vip := bd.CustomerProfile{Segments: []string{"wholesale", "vip"}}
			if by == "tag" {
				vip = bd.CustomerProfile{Tags: []string{"gold"}}
			}
			p.set(dialog(4, 1).Customer.ID, vip)
			p.set(dialog(3, 1).Customer.ID, bd.CustomerProfile{Segments: []string{"wholesale"}, Tags: []string{"silver"}})
			f := newFixture(t, s, onlineManagers(managerIDs(1)), distributor.WithProfiler(p, 0, 0))
			known := dialog(2, 1)
			f.openNow(t, 1) // holds the only slot
			f.openNow(t, 2)
			f.close(t, 1) // 2 takes it; its customer is now a returning one
			f.close(t, 2)
			f.openNow(t, 5) // holds the slot
			back := dialog(6, 1)
			back.Customer, back.OpenedAt = known.Customer, f.clock.Now()
			f.openNow(t, 3) // not a priority customer
			f.open(t, back) // returning
			f.clock.Add(time.Second)
			f.openNow(t, 4) // a priority customer, last to come
			if tr := f.traceOf(t, 4); tr.Priority != 2 || !tr.PriorityCustomer {
				t.Fatalf("priority %d, want 2\n%s", tr.Priority, tr)
			}
			holder := bd.DialogID(5)
			for _, want := range []bd.DialogID{4, 6, 3} {
				f.close(t, holder)
				wantResponsible(t, f, want, bd.ManagerOf(1), "the queue's order: priority, returning, the rest")
				holder = want
			}
		})
	}
}

// With as many reads under way as retailCRM serves in a second, a new
// customer's dialog does not wait for its card at all.
func TestPersonalManagerBusyCRMSkipsTheWait(t *testing.T) {
	s := settingsFor(managerIDs(3), 50)
	s.PersonalManager = true
	p := newProfiler()
	p.block = make(chan struct{})
	f := newFixture(t, s, onlineManagers(managerIDs(3)), distributor.WithProfiler(p, 20*time.Millisecond, 0))
	for id := 1; id <= 11; id++ {
		f.openNow(t, id)
		want := "timed out"
		if id == 11 {
			want = "skipped"
		}
		if tr := f.traceOf(t, bd.DialogID(id)); tr.Profile != want || tr.Outcome != distributor.OutcomeAssigned {
			t.Fatalf("dialog %d: profile %q, outcome %s; want %q, assigned\n%s", id, tr.Profile, tr.Outcome, want, tr)
		}
	}
	p.mu.Lock()
	close(p.block)
	p.block = nil
	p.mu.Unlock()
}

// A bot as the last step: the dialog goes to the bot when the managers'
// steps are over.
func TestEscalationToABot(t *testing.T) {
	s := settingsFor(managerIDs(2), 1)
	s.Groups = map[string][]bd.ManagerID{"sales": {1}}
	s.DefaultRule.Steps = []bd.Step{{Group: "sales", Wait: 30 * time.Second}, {Bot: 77}}
	f := newFixture(t, s, onlineManagers(managerIDs(2)))
	f.openNow(t, 1)
	wantResponsible(t, f, 1, bd.ManagerOf(1), "sales has room")
	f.openNow(t, 2)
	wantResponsible(t, f, 2, bd.Responsible{}, "waits for sales; manager 2 is in no step")
	f.clock.Add(31 * time.Second)
	f.sweep(t)
	wantResponsible(t, f, 2, bd.BotOf(77), "the bot's step")
	if n := f.queueLen(t); n != 0 {
		t.Fatalf("%d dialogs wait, want none", n)
	}
	if got := f.gw.Responsible(2); got != bd.BotOf(77) {
		t.Fatalf("MG has dialog 2 with %v, want the bot", got)
	}
}

// A changed card (retailCRM's customer history says so) is read again at
// the next decision: the personal manager moved from 2 to 3.
func TestPersonalManagerCardChanged(t *testing.T) {
	for _, bound := range []bool{true, false} {
		t.Run(fmt.Sprintf("bound=%v", bound), func(t *testing.T) {
			f, p := personal(t, settingsFor(managerIDs(3), 5))
			c := dialog(1, 1).Customer
			p.set(c.ID, bd.CustomerProfile{Manager: 2})
			if bound {
				f.bind(t, c.ID)
			}
			f.openNow(t, 1)
			wantResponsible(t, f, 1, bd.ManagerOf(2), "the personal manager")
			p.set(c.ID, bd.CustomerProfile{Manager: 3})
			if err := f.d.CardChanged(context.Background(), 900_000+int64(c.ID)); err != nil {
				t.Fatal(err)
			}
			dl := dialog(2, 1)
			dl.Customer, dl.OpenedAt = c, f.clock.Now()
			f.open(t, dl)
			wantResponsible(t, f, 2, bd.ManagerOf(3), "the new personal manager")
			if n := p.readsOf(c.ID); n != 2 {
				t.Fatalf("card read %d times, want 2", n)
			}
			if err := f.d.CardChanged(context.Background(), 0); !errors.Is(err, distributor.ErrBadEvent) {
				t.Fatalf("CardChanged(0) = %v, want ErrBadEvent", err)
			}
		})
	}
}
