package mgsource_test

import (
	"github.com/botdistributor/botdistributor/internal/leakcheck"

	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store/memory"
)

// notifying passes everything to the distributor and reports each
// finished call, so the test can wait for it.
type notifying struct {
	*distributor.Distributor
	w       *watch
	resyncs *atomic.Int32
}

func (n notifying) Handle(ctx context.Context, ev distributor.Event) error {
	defer n.w.Poke()
	return n.Distributor.Handle(ctx, ev)
}

func (n notifying) Resync(ctx context.Context, open []distributor.OpenDialog) error {
	defer n.w.Poke()
	err := n.Distributor.Resync(ctx, open)
	if err == nil {
		n.resyncs.Add(1)
	}
	return err
}

// The whole chain on the sandbox: 200 customers write through the real
// transport client on three channels, the websocket drops halfway (50
// dialogs open while it is down), and
// every dialog ends with the responsible its channel's rule asks for,
// with the automatic replies delivered to the transport's webhook.
func TestEndToEndOnSandbox(t *testing.T) {
	leakcheck.Check(t)
	m := newMG(t)
	c := newClient(t, m)
	ctx := testCtx(t)

	shop := channel(t, m, "telegram", "Shop")
	support := channel(t, m, "whatsapp", "Support")
	faq := channel(t, m, "vk", "FAQ")
	var mgrs []bd.ManagerID
	for i := range 4 {
		mgrs = append(mgrs, m.AddManager(sandbox.MGUser{FirstName: fmt.Sprint("Manager", i), LastName: "Doe", Online: true}))
	}
	m.AddManager(sandbox.MGUser{FirstName: "Robot", Online: true, Technical: true})
	faqBot, _, err := m.AddBot("FAQ bot", mg.RoleResponsible)
	if err != nil {
		t.Fatal(err)
	}
	settings := bd.Settings{
		Active:          true,
		Managers:        mgrs,
		DefaultCapacity: 100,
		Availability:    bd.StatusAndOnline,
		Reassign:        bd.ReassignOff,
		Replies: map[bd.Situation]string{
			bd.DialogReceived:      "Hello {{.Customer}}, we got your message.",
			bd.ManagerAssigned:     "{{.Manager}} will answer you.",
			bd.NoManagerOnline:     "Nobody is online.",
			bd.AllManagersBusy:     "Everyone is busy.",
			bd.OutsideWorkingHours: "We are closed.",
		},
		Channels: map[bd.ChannelID]bd.ChannelRule{
			shop:    {Target: bd.ToManagers, Managers: mgrs[:2]},
			support: {Target: bd.ToManagers, Managers: mgrs[2:]},
			faq:     {Target: bd.ToBot, Bot: faqBot},
		},
		DefaultRule: bd.ChannelRule{Target: bd.ToManagers},
	}
	st := memory.New()
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Domain: "https://shop.example", MGEndpoint: m.URL(), MGToken: m.BotToken(), Settings: settings}); err != nil {
		t.Fatal(err)
	}
	replier, err := reply.NewTemplate(c)
	if err != nil {
		t.Fatal(err)
	}
	d, err := distributor.New(acct, st, mgsource.Gateway{MG: c}, distributor.WithReplier(replier))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	w := newWatch()
	var resyncs atomic.Int32
	gap, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	src, err := mgsource.New(acct, c, notifying{d, w, &resyncs}, mgsource.WithStream(mg.WithBackoff(mg.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Sleep: func(ctx context.Context, _ time.Duration) error {
		// The reconnect waits until the test has written while the
		// stream was down.
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
	stop := runSource(t, src.Run)
	waitUntil(t, "the first resync", m, w, func() bool { return resyncs.Load() == 1 })

	channels := []bd.ChannelID{shop, support, faq}
	written := make([]sandbox.MGWritten, 200)
	write := func(from, to int) {
		var wg sync.WaitGroup
		work := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range work {
					cw, err := m.CustomerWrites(ctx, sandbox.MGCustomerMessage{
						Channel: channels[i%3], CustomerExternalID: fmt.Sprintf("cust-%03d", i),
						FirstName: "Customer", LastName: fmt.Sprint(i), Text: "Hello, I need help",
					})
					if err != nil {
						t.Error(err)
						continue
					}
					written[i] = cw
				}
			})
		}
		for i := from; i < to; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	write(0, 100)
	m.DropWebsockets()
	<-gap
	write(100, 150) // missed by the stream: only the resync can see them
	close(resume)
	write(150, 200)
	if t.Failed() {
		t.FailNow()
	}

	waitUntil(t, "every dialog assigned in MG", m, w, func() bool {
		ds := m.Dialogs()
		return len(ds) == 200 && !slices.ContainsFunc(ds, func(d sandbox.MGDialog) bool { return d.Responsible.IsZero() })
	})
	allowed := map[bd.ChannelID][]bd.Responsible{
		shop:    {bd.ManagerOf(mgrs[0]), bd.ManagerOf(mgrs[1])},
		support: {bd.ManagerOf(mgrs[2]), bd.ManagerOf(mgrs[3])},
		faq:     {bd.BotOf(faqBot)},
	}
	perResponsible := map[bd.Responsible]int{}
	for _, dl := range m.Dialogs() {
		if !slices.Contains(allowed[dl.Channel], dl.Responsible) {
			t.Errorf("dialog %d of channel %d went to %v, want one of %v", dl.ID, dl.Channel, dl.Responsible, allowed[dl.Channel])
		}
		perResponsible[dl.Responsible]++
		if got, err := st.Responsible(ctx, acct, dl.ID); err != nil || got != dl.Responsible {
			t.Errorf("dialog %d: store says %v (%v), MG says %v", dl.ID, got, err, dl.Responsible)
		}
	}
	for _, id := range mgrs {
		if perResponsible[bd.ManagerOf(id)] == 0 {
			t.Errorf("manager %d got no dialog: %v", id, perResponsible)
		}
	}

	// Managers' dialogs get "received" and "assigned" replies, delivered
	// to the customer's messenger through the transport webhook.
	managerChats := 0
	for i := range written {
		if channels[i%3] != faq {
			managerChats++
		}
	}
	waitUntil(t, "the replies", m, w, func() bool { return len(m.Delivered(0)) >= 2*managerChats })
	names := map[bd.Responsible]string{}
	for i, id := range mgrs {
		names[bd.ManagerOf(id)] = fmt.Sprintf("Manager%d Doe", i)
	}
	for i, cw := range written {
		dl, _ := m.Dialog(cw.Dialog)
		if dl.Channel == faq {
			continue
		}
		var texts []string
		for _, dv := range m.Delivered(cw.Chat) {
			texts = append(texts, dv.Text)
			if dv.Bot != "Distributor" || dv.CustomerExternalID != fmt.Sprintf("cust-%03d", i) {
				t.Errorf("chat %d: delivery %+v", cw.Chat, dv)
			}
		}
		want := []string{"Hello Customer " + fmt.Sprint(i) + ", we got your message.", names[dl.Responsible] + " will answer you."}
		if !slices.Equal(texts, want) {
			t.Errorf("chat %d: delivered %q, want %q", cw.Chat, texts, want)
		}
	}
	waitUntil(t, "every reply marked sent", m, w, func() bool {
		return !slices.ContainsFunc(m.Messages(0), func(msg sandbox.MGMessage) bool { return msg.FromType == "bot" && msg.Status != "sent" })
	})
	waitUntil(t, "the second resync to finish", m, w, func() bool { return resyncs.Load() == 2 })
	if st := src.Stats(); st.Stream.Connects != 2 || st.Stream.HandlerErrors != 0 {
		t.Errorf("source stats = %+v", st)
	}
	stop()
}
