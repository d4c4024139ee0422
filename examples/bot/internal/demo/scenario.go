package demo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store"
)

var firstNames = []string{"Alla", "Denis", "Elena", "Fedor", "Irina", "Kirill", "Lada", "Maxim", "Nina", "Oleg", "Polina", "Roman", "Sofia", "Timur", "Ulyana", "Yakov"}

// customers makes customers write through the sandbox's transport client
// (the real mg-transport-api-client-go) at about rate per second, on the
// channels by weight. Some are returning customers writing again; a few
// carry the phone of a customer retailCRM knows.
func (w *world) customers(ctx context.Context, seed uint64, rate float64, st *stats, say func(string, ...any)) {
	rng := rand.New(rand.NewPCG(seed, 1))
	total := 0
	for _, c := range w.channels {
		total += c.weight
	}
	pick := func() channel {
		n := rng.IntN(total)
		for _, c := range w.channels {
			if n < c.weight {
				return c
			}
			n -= c.weight
		}
		return w.channels[0]
	}
	type known struct {
		ext     string
		channel channel
		first   string
	}
	var seen []known
	mean := time.Duration(float64(time.Second) / rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(mean/2 + time.Duration(rng.Int64N(int64(mean))))
		var who known
		if len(seen) > 3 && rng.IntN(5) == 0 {
			who = seen[rng.IntN(len(seen))]
		} else {
			who = known{ext: fmt.Sprintf("customer-%d", n), channel: pick(), first: firstNames[rng.IntN(len(firstNames))]}
			seen = append(seen, who)
		}
		msg := sandbox.MGCustomerMessage{
			Channel: who.channel.id, CustomerExternalID: who.ext, FirstName: who.first,
			Text: "Hello, I have a question about my order.",
		}
		switch rng.IntN(6) {
		case 0:
			msg.Phone = fmt.Sprintf("+7 916 000 00 %02d", rng.IntN(3)+1) // a customer retailCRM knows
		case 1, 2:
			msg.Email = who.ext + "@example.com"
		}
		written, err := w.mg.CustomerWrites(ctx, msg)
		if err != nil {
			if ctx.Err() == nil {
				say("customer could not write: %v", err)
			}
			continue
		}
		if written.Opened {
			st.addOpened()
		}
	}
}

// lifecycle plays the managers' side of open dialogs: a manager answers a
// dialog some time after getting it (or not before it closes), and closes
// it after a while; the bot's dialogs close quickly. A dialog that moves to
// another manager starts over.
func (w *world) lifecycle(ctx context.Context, seed uint64, st *stats) {
	rng := rand.New(rand.NewPCG(seed, 2))
	type state struct {
		since    time.Time
		who      bd.Responsible
		answered bool
		answer   time.Duration // when the manager answers; some never do before closing
		hold     time.Duration // when the dialog closes
	}
	dialogs := make(map[bd.DialogID]*state)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, d := range w.mg.Dialogs() {
			if !d.Active {
				delete(dialogs, d.ID)
				continue
			}
			if d.Responsible.IsZero() {
				continue
			}
			s := dialogs[d.ID]
			if s == nil || s.who != d.Responsible {
				s = &state{since: now, who: d.Responsible,
					answer: 300*time.Millisecond + time.Duration(rng.Int64N(int64(4*time.Second))),
					hold:   1500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond)))}
				if _, bot := d.Responsible.Bot(); bot {
					s.hold = 700 * time.Millisecond
				}
				dialogs[d.ID] = s
			}
			age := now.Sub(s.since)
			if m, ok := d.Responsible.Manager(); ok && !s.answered && age > s.answer {
				if _, err := w.mg.ManagerWrites(m, d.Chat, "Hello! Let me check that for you."); err == nil {
					s.answered = true
				}
			}
			if age > s.hold {
				if err := w.mg.CloseDialog(d.ID); err == nil {
					st.addClosed()
					delete(dialogs, d.ID)
				}
			}
		}
	}
}

// script changes the managers' availability during the run, and drops the
// websocket once (the bot resyncs over REST when it reconnects).
func (w *world) script(ctx context.Context, d time.Duration, say func(string, ...any)) {
	steps := []struct {
		at   float64
		what func() string
	}{
		{0.20, func() string { return w.setOnline("Boris", false) }},
		{0.35, func() string { return w.setStatus("Gleb", "dinner") }},
		{0.45, func() string { return w.setOnline("Egor", true) }},
		{0.50, func() string {
			n := w.mg.DropWebsockets()
			return fmt.Sprintf("MessageGateway drops %d websocket(s); the bot reconnects and resyncs", n)
		}},
		{0.60, func() string { return w.setOnline("Boris", true) }},
		{0.65, func() string { return w.setOnline("Vera", false) }},
		{0.75, func() string { return w.setStatus("Gleb", "free") }},
		{0.85, func() string { return w.setOnline("Vera", true) }},
	}
	start := time.Now()
	for _, s := range steps {
		t := time.NewTimer(time.Until(start.Add(time.Duration(s.at * float64(d)))))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		say("%s", s.what())
	}
}

func (w *world) setOnline(first string, online bool) string {
	p := w.byName(first)
	if err := w.mg.SetOnline(p.id, online); err != nil {
		return err.Error()
	}
	if online {
		return p.name() + " comes online"
	}
	return p.name() + " goes offline"
}

func (w *world) setStatus(first, status string) string {
	p := w.byName(first)
	if err := w.crm.SetStatus(p.crmID, status); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s's retailCRM status becomes %q", p.name(), status)
}

// progress prints a line every second.
func progress(ctx context.Context, storage *bot.Storage, account bd.AccountID, st *stats, say func(string, ...any)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := st.snapshot()
		waiting, err := storage.Store.QueueLen(context.WithoutCancel(ctx), account)
		if err != nil {
			waiting = -1
		}
		say("opened %d, assigned %d (from queue %d), queued %d, waiting now %d, reassigned %d, replies %d, closed %d, errors %d",
			s.opened, s.assigned, s.fromQueue, s.queued, waiting, s.reassigned, s.replies, s.closed, s.errors)
	}
}

// settle waits until every open dialog in MG has a responsible or waits in
// the queue (or ctx ends), then returns how many do not, and for how many
// the store's responsible differs from MG's.
func settle(ctx context.Context, w *world, storage *bot.Storage, account bd.AccountID) (unaccounted, mismatches int) {
	check := func() (int, int) {
		waiting, err := storage.Store.Waiting(ctx, account, 1<<20)
		if err != nil {
			return -1, -1
		}
		queued := make(map[bd.DialogID]bool, len(waiting))
		for _, wt := range waiting {
			queued[wt.Dialog.ID] = true
		}
		u, m := 0, 0
		for _, d := range w.mg.Dialogs() {
			if !d.Active {
				continue
			}
			if d.Responsible.IsZero() && !queued[d.ID] {
				u++
			}
			r, err := storage.Store.Responsible(ctx, account, d.ID)
			if errors.Is(err, store.ErrNotFound) {
				r = bd.Responsible{}
			} else if err != nil {
				return -1, -1
			}
			if r != d.Responsible {
				m++
			}
		}
		return u, m
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		u, m := check()
		if u == 0 && m == 0 {
			return 0, 0
		}
		select {
		case <-ctx.Done():
			return u, m
		case <-t.C:
		}
	}
}
