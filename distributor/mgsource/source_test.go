package mgsource_test

import (
	"github.com/botdistributor/botdistributor/internal/leakcheck"
	"sync/atomic"

	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
)

const acct bd.AccountID = "shop.example"

func TestNewRejectsMissingParts(t *testing.T) {
	c, _ := mg.New("https://mg.example", "t")
	target := newFakeTarget()
	for _, tt := range []struct {
		name    string
		account bd.AccountID
		client  *mg.Client
		target  mgsource.Target
		opt     mgsource.Option
		want    string
	}{
		{"no account", "", c, target, nil, "mgsource: empty account id"},
		{"no client", acct, nil, target, nil, "mgsource: nil client"},
		{"no target", acct, c, nil, nil, "mgsource: nil target"},
		{"nil option", acct, c, target, nil, "mgsource: nil option"},
		{"bad stream", acct, c, target, mgsource.WithStream(mg.WithMaxBacklog(-1)), "mgsource: WithStream: "},
		{"negative lanes", acct, c, target, mgsource.WithLanes(-1), "mgsource: WithLanes: negative count -1"},
		{"negative deliver for", acct, c, target, mgsource.WithDeliverFor(-time.Second), "mgsource: WithDeliverFor: negative duration -1s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.name == "nil option" {
				_, err = mgsource.New(tt.account, tt.client, tt.target, nil)
			} else if tt.opt != nil {
				_, err = mgsource.New(tt.account, tt.client, tt.target, tt.opt)
			} else {
				_, err = mgsource.New(tt.account, tt.client, tt.target)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got %v, want an error starting %q", err, tt.want)
			}
		})
	}
	// Nil and zero arguments mean the defaults; a negative resync interval
	// turns the periodic resync off.
	if _, err := mgsource.New(acct, c, target, mgsource.WithStatus(nil), mgsource.WithLogger(nil),
		mgsource.WithResyncEvery(-1), mgsource.WithDeliverFor(0), mgsource.WithLanes(0)); err != nil {
		t.Errorf("default arguments: %v", err)
	}
}

func TestSourceResyncsThenStreams(t *testing.T) {
	leakcheck.Check(t)
	m := newMG(t)
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann", LastName: "Lee", Online: true})
	bob := m.AddManager(sandbox.MGUser{FirstName: "Bob", Inactive: true})
	m.AddManager(sandbox.MGUser{FirstName: "Robot", Online: true, Technical: true})
	assigned := customer(t, m, ch, "old1", "hello")
	if err := m.AssignAsPerson(assigned.Dialog, bd.ManagerOf(ann)); err != nil {
		t.Fatal(err)
	}
	waiting := customer(t, m, ch, "old2", "anyone?")
	closed := customer(t, m, ch, "old3", "bye")
	if err := m.CloseDialog(closed.Dialog); err != nil {
		t.Fatal(err)
	}

	target := newFakeTarget()
	src, err := mgsource.New(acct, c, target, mgsource.WithStream(mg.WithBackoff(mg.Backoff{Initial: time.Millisecond, Max: time.Millisecond})))
	if err != nil {
		t.Fatal(err)
	}
	stop := runSource(t, src.Run)
	waitUntil(t, "the first resync", m, target.w, func() bool { _, _, rs := target.snapshot(); return len(rs) == 1 })

	_, rosters, resyncs := target.snapshot()
	wantRoster := []bd.Manager{
		{ID: ann, FirstName: "Ann", LastName: "Lee", Status: bd.StatusFree, Online: true, Active: true},
		{ID: bob, FirstName: "Bob", Status: bd.StatusFree},
	}
	if len(rosters) != 1 || !slices.Equal(rosters[0], wantRoster) {
		t.Fatalf("roster = %+v, want %+v", rosters, wantRoster)
	}
	open := resyncs[0]
	if len(open) != 2 {
		t.Fatalf("open dialogs = %+v, want the assigned and the waiting one", open)
	}
	if o := open[0]; o.Dialog.ID != assigned.Dialog || o.Responsible != bd.ManagerOf(ann) || o.Dialog.Account != acct || o.Dialog.OpenedAt.IsZero() {
		t.Fatalf("assigned dialog = %+v", o)
	}
	if o := open[1]; o.Dialog.ID != waiting.Dialog || !o.Responsible.IsZero() || o.Dialog.Channel != ch || o.Dialog.Customer.ID != waiting.Customer ||
		o.Dialog.Customer.Phone != "+7900old2" || o.Dialog.Chat != waiting.Chat {
		t.Fatalf("waiting dialog = %+v", o)
	}

	// Live events: a new dialog, the own bot's reply (dropped), a
	// manager's answer, presence.
	w := customer(t, m, ch, "new1", "hi there")
	if err := c.Send(testCtx(t), acct, w.Chat, "automatic reply"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ManagerWrites(ann, w.Chat, "Ann here"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetOnline(ann, false); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "four events", m, target.w, func() bool { evs, _, _ := target.snapshot(); return len(evs) == 4 })
	all, _, _ := target.snapshot()
	// The chat's events keep their order; the manager's presence goes
	// through another lane and may come between them.
	var evs []distributor.Event
	var presence []distributor.Event
	for _, ev := range all {
		if ev.Kind == distributor.ManagerChanged {
			presence = append(presence, ev)
		} else {
			evs = append(evs, ev)
		}
	}
	if len(presence) != 1 {
		t.Fatalf("manager events = %+v, want one", presence)
	}
	evs = append(evs, presence[0])
	kinds := []distributor.EventKind{distributor.DialogOpened, distributor.CustomerMessage, distributor.ManagerMessage, distributor.ManagerChanged}
	for i, k := range kinds {
		if evs[i].Kind != k || evs[i].Account != acct {
			t.Fatalf("event %d = %+v, want %s", i, evs[i], k)
		}
	}
	if d := evs[0].Dialog; d.ID != w.Dialog || d.Channel != ch || d.Customer.ID != w.Customer || d.OpenedAt.IsZero() {
		t.Fatalf("opened = %+v", d)
	}
	if evs[1].MessageID != w.MessageID || evs[1].Dialog.ID != w.Dialog {
		t.Fatalf("customer message = %+v", evs[1])
	}
	if evs[3].Manager != (bd.Manager{ID: ann, FirstName: "Ann", LastName: "Lee", Status: bd.StatusFree, Online: false, Active: true}) {
		t.Fatalf("manager changed = %+v", evs[3].Manager)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if st := src.Stats(); st.Resyncs != 1 || st.Stream.Connects != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// Dialogs opened while the websocket is down reach the target through the
// resync that follows the reconnect.
func TestSourceResyncsAfterDrop(t *testing.T) {
	leakcheck.Check(t)
	m := newMG(t)
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")
	target := newFakeTarget()
	gap, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	src, err := mgsource.New(acct, c, target, mgsource.WithStream(mg.WithBackoff(mg.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Sleep: func(ctx context.Context, _ time.Duration) error {
		once.Do(func() {
			close(gap)
			select {
			case <-resume:
			case <-ctx.Done():
			}
		})
		return ctx.Err()
	}})))
	if err != nil {
		t.Fatal(err)
	}
	runSource(t, src.Run)
	waitUntil(t, "the first resync", m, target.w, func() bool { _, _, rs := target.snapshot(); return len(rs) == 1 })
	live := customer(t, m, ch, "live", "hi")
	waitUntil(t, "the live dialog", m, target.w, func() bool { evs, _, _ := target.snapshot(); return len(evs) == 2 })

	m.DropWebsockets()
	<-gap
	var missed []bd.DialogID
	for i := range 3 {
		missed = append(missed, customer(t, m, ch, fmt.Sprint("gap", i), "hello?").Dialog)
	}
	close(resume)
	waitUntil(t, "the second resync", m, target.w, func() bool { _, _, rs := target.snapshot(); return len(rs) == 2 })

	evs, _, resyncs := target.snapshot()
	var resynced []bd.DialogID
	for _, o := range resyncs[1] {
		resynced = append(resynced, o.Dialog.ID)
		if o.Dialog.Channel != ch || o.Dialog.Customer.ID == 0 {
			t.Errorf("resynced dialog lacks its channel or customer: %+v", o)
		}
	}
	if want := append([]bd.DialogID{live.Dialog}, missed...); !slices.Equal(resynced, want) {
		t.Fatalf("second resync = %v, want %v", resynced, want)
	}
	for _, ev := range evs {
		if slices.Contains(missed, ev.Dialog.ID) {
			t.Fatalf("dialog %d came as an event although the stream was down", ev.Dialog.ID)
		}
	}
}

// A message event without its dialog id (older MG) is completed over REST.
func TestSourceCompletesEventsOverREST(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")
	w := customer(t, m, ch, "x1", "hi")
	target := newFakeTarget()
	// One lane: events reach the target in arrival order, which the
	// waiting below relies on.
	src, err := mgsource.New(acct, c, target, mgsource.WithLanes(1))
	if err != nil {
		t.Fatal(err)
	}
	runSource(t, src.Run)
	waitUntil(t, "the first resync", m, target.w, func() bool { _, _, rs := target.snapshot(); return len(rs) == 1 })
	// The translator knows the chat from the resync (it was fetched for
	// the unassigned dialog); a chat it does not know is fetched.
	m.InjectFrame([]byte(fmt.Sprintf(`{"type":"message_new","meta":{"timestamp":1},"data":{"message":{"id":99,"type":"text","scope":"public",
		"chat_id":%d,"from":{"id":%d,"type":"customer","name":"C"},"content":"no dialog id"}}}`, w.Chat, w.Customer)))
	m.InjectFrame([]byte(`{"type":"message_new","meta":{"timestamp":1},"data":{"message":{"id":98,"type":"text","scope":"public",
		"chat_id":424242,"from":{"id":1,"type":"customer"},"content":"unknown chat"}}}`))
	// Events are handled in order: once a later one arrives, the two
	// injected ones have been handled.
	later := customer(t, m, ch, "x2", "later")
	waitUntil(t, "the later dialog", m, target.w, func() bool { evs, _, _ := target.snapshot(); return len(evs) == 3 })
	evs, _, _ := target.snapshot()
	if ev := evs[0]; ev.Kind != distributor.CustomerMessage || ev.Dialog.ID != w.Dialog || ev.Dialog.Channel != ch || ev.MessageID != 99 {
		t.Fatalf("completed event = %+v", ev)
	}
	if evs[1].Dialog.ID != later.Dialog || evs[2].Dialog.ID != later.Dialog {
		t.Fatalf("later events = %+v", evs[1:])
	}
	if st := src.Stats(); st.Stream.HandlerErrors != 1 {
		t.Fatalf("stats = %+v, want the event of an unknown chat to fail", st)
	}
}

// An event the target cannot store yet is offered again, not dropped.
func TestSourceOffersRefusedEventsAgain(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")
	target := newFakeTarget()
	src, err := mgsource.New(acct, c, target)
	if err != nil {
		t.Fatal(err)
	}
	runSource(t, src.Run)
	waitUntil(t, "the first resync", m, target.w, func() bool { _, _, rs := target.snapshot(); return len(rs) == 1 })
	target.mu.Lock()
	target.refuse = 3
	target.mu.Unlock()
	w := customer(t, m, ch, "x1", "hello")
	waitUntil(t, "the dialog's events", m, target.w, func() bool {
		evs, _, _ := target.snapshot()
		return slices.ContainsFunc(evs, func(ev distributor.Event) bool {
			return ev.Kind == distributor.DialogOpened && ev.Dialog.ID == w.Dialog
		})
	})
	target.mu.Lock()
	refused := target.refused
	target.mu.Unlock()
	if refused != 3 {
		t.Fatalf("the target refused %d events, want 3", refused)
	}
	if st := src.Stats(); st.Stream.HandlerErrors != 0 {
		t.Fatalf("stats = %+v: an event offered again until accepted is no handler error", st)
	}
}

func TestSourceRetriesFailedResync(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	target := newFakeTarget()
	if err := m.SetFaults(sandbox.MGFaults{FailNext: 50, Match: func(method, path string) bool { return path == "/users" }}); err != nil {
		t.Fatal(err)
	}
	src, _ := mgsource.New(acct, c, target, mgsource.WithStream(mg.WithBackoff(mg.Backoff{Initial: time.Millisecond, Max: time.Millisecond})))
	runSource(t, src.Run)
	waitUntil(t, "a resync despite failures", m, target.w, func() bool { _, _, rs := target.snapshot(); return len(rs) == 1 })
	if st := src.Stats(); st.Stream.ConnectErrors == 0 || st.Stream.Connects < 2 {
		t.Fatalf("stats = %+v, want failed resyncs followed by one good one", st)
	}
}

func TestSourceResyncsPeriodically(t *testing.T) {
	leakcheck.Check(t)
	m := newMG(t)
	c := newClient(t, m)
	target := newFakeTarget()
	src, err := mgsource.New(acct, c, target, mgsource.WithResyncEvery(20*time.Millisecond),
		mgsource.WithStream(mg.WithBackoff(mg.Backoff{Initial: time.Millisecond, Max: time.Millisecond})))
	if err != nil {
		t.Fatal(err)
	}
	stop := runSource(t, src.Run)
	// The periodic resyncs do not wait for the connection: on a loaded
	// machine the first ones may end before it is up.
	waitUntil(t, "three resyncs on one connection", m, target.w, func() bool {
		_, _, rs := target.snapshot()
		return len(rs) >= 3 && src.Stats().Stream.Connects >= 1
	})
	if st := src.Stats(); st.Stream.Connects != 1 {
		t.Fatalf("stats = %+v, want the resyncs on a single connection", st)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// stallingTarget holds the events of one chat until released, as a
// target whose store is slow for that dialog.
type stallingTarget struct {
	*fakeTarget
	chat    atomic.Int64
	release chan struct{}
}

func (s *stallingTarget) Handle(ctx context.Context, ev distributor.Event) error {
	if ev.Dialog.Chat == bd.ChatID(s.chat.Load()) {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.fakeTarget.Handle(ctx, ev)
}

// The events of one chat do not wait behind another chat's, and one
// chat's events keep their order.
func TestSourceLanesKeepChatsApart(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ch := channel(t, m, "telegram", "TG")
	target := &stallingTarget{fakeTarget: newFakeTarget(), release: make(chan struct{})}
	src, err := mgsource.New(acct, c, target, mgsource.WithLanes(4))
	if err != nil {
		t.Fatal(err)
	}
	runSource(t, src.Run)
	waitUntil(t, "the first resync", m, target.w, func() bool { _, _, rs := target.snapshot(); return len(rs) == 1 })
	// The chat that stalls is the next one the sandbox makes.
	next := customer(t, m, ch, "probe", "probe")
	waitUntil(t, "the probe's events", m, target.w, func() bool { evs, _, _ := target.snapshot(); return len(evs) == 2 })
	target.chat.Store(int64(next.Chat) + 1)
	slow := customer(t, m, ch, "slow", "first")
	if int64(slow.Chat) != target.chat.Load() {
		t.Fatalf("the sandbox numbered the new chat %d, not %d", slow.Chat, target.chat.Load())
	}
	fast := customer(t, m, ch, "fast", "hello")
	for fast.Chat%4 == slow.Chat%4 {
		fast = customer(t, m, ch, fmt.Sprintf("fast%d", fast.Chat), "hello")
	}
	if _, err := m.CustomerWrites(testCtx(t), sandbox.MGCustomerMessage{Channel: ch, CustomerExternalID: "slow", Text: "second"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the other chat's events while one chat stalls", m, target.w, func() bool {
		evs, _, _ := target.snapshot()
		for _, ev := range evs {
			if ev.Dialog.Chat == fast.Chat && ev.Kind == distributor.CustomerMessage {
				return true
			}
		}
		return false
	})
	close(target.release)
	waitUntil(t, "the stalled chat's events", m, target.w, func() bool {
		evs, _, _ := target.snapshot()
		n := 0
		for _, ev := range evs {
			if ev.Dialog.Chat == slow.Chat {
				n++
			}
		}
		return n == 3
	})
	evs, _, _ := target.snapshot()
	var kinds []distributor.EventKind
	var messages []int64
	for _, ev := range evs {
		if ev.Dialog.Chat == slow.Chat {
			kinds = append(kinds, ev.Kind)
			if ev.Kind == distributor.CustomerMessage {
				messages = append(messages, ev.MessageID)
			}
		}
	}
	if want := []distributor.EventKind{distributor.DialogOpened, distributor.CustomerMessage, distributor.CustomerMessage}; !slices.Equal(kinds, want) {
		t.Fatalf("the stalled chat's events = %v, want %v", kinds, want)
	}
	// MG numbers messages in order: "first" before "second".
	if len(messages) != 2 || messages[0] == 0 || messages[0] >= messages[1] {
		t.Fatalf("the stalled chat's messages arrived as %v, want the first before the second", messages)
	}
}

// A resync after the source missed many dialogs (an outage, a takeover)
// reads their chats a page at a time, not with one request each, and every
// dialog that may be distributed still reaches the target with its channel
// and customer.
func TestSourceResyncReadsUnknownChatsByPage(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	tg := channel(t, m, "telegram", "TG")
	wa := channel(t, m, "whatsapp", "WA")
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann", Online: true})
	const n = 300
	waiting := map[bd.DialogID]sandbox.MGWritten{}
	channels := map[bd.DialogID]bd.ChannelID{}
	for i := range n + n/3 {
		ch := []bd.ChannelID{tg, wa}[i%2]
		w := customer(t, m, ch, fmt.Sprintf("%04d", i), "hello")
		if i%4 == 3 {
			// Assigned in MG: its chat is not needed, and lies between
			// the others'.
			if err := m.AssignAsPerson(w.Dialog, bd.ManagerOf(ann)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		waiting[w.Dialog], channels[w.Dialog] = w, ch
	}
	if len(waiting) != n {
		t.Fatalf("%d unassigned dialogs, want %d", len(waiting), n)
	}

	target := newFakeTarget()
	src, err := mgsource.New(acct, c, target)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Resync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	_, _, resyncs := target.snapshot()
	if len(resyncs) != 1 {
		t.Fatalf("%d resyncs reached the target, want 1", len(resyncs))
	}
	seen := 0
	for _, o := range resyncs[0] {
		w, ok := waiting[o.Dialog.ID]
		if !ok {
			continue
		}
		seen++
		if !o.Responsible.IsZero() || o.Dialog.Chat != w.Chat || o.Dialog.Channel != channels[o.Dialog.ID] ||
			o.Dialog.Customer.ID != w.Customer || o.Dialog.Customer.Phone == "" {
			t.Fatalf("unassigned dialog %d = %+v; want chat %d, channel %d, customer %d", o.Dialog.ID, o, w.Chat, channels[o.Dialog.ID], w.Customer)
		}
	}
	if seen != n {
		t.Fatalf("%d of the %d unassigned dialogs reached the target", seen, n)
	}
	if got := m.CountRequests("GET", "/chats"); got > 5 {
		t.Fatalf("the resync read the chats of %d unknown dialogs with %d requests, want a few pages", n, got)
	}

	// The chats are known now: the next resync reads none.
	before := m.CountRequests("GET", "/chats")
	if err := src.Resync(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := m.CountRequests("GET", "/chats") - before; got != 0 {
		t.Fatalf("a second resync read chats %d times, want 0", got)
	}
}
