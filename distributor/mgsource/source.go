package mgsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/internal/option"
	"github.com/botdistributor/botdistributor/mg"
)

// Target is what a Source feeds. *distributor.Distributor implements it; a
// test may pass a fake. Its methods are called from the Source's Run
// goroutine, one at a time.
type Target interface {
	// Handle acts on one event.
	Handle(ctx context.Context, ev distributor.Event) error
	// SetRoster replaces the account's managers.
	SetRoster(ctx context.Context, managers []bd.Manager) error
	// Resync converges to MG's open dialogs.
	Resync(ctx context.Context, open []distributor.OpenDialog) error
}

var _ Target = (*distributor.Distributor)(nil)

// DefaultDeliverFor is how long a refused event is offered again, unless
// [WithDeliverFor] says otherwise.
const DefaultDeliverFor = 30 * time.Second

// DefaultResyncEvery is the periodic resync interval, unless
// [WithResyncEvery] says otherwise.
const DefaultResyncEvery = 5 * time.Minute

// Source runs the MG event stream of one account into a Target: every
// event the distributor acts on is translated and handed to
// Target.Handle, and after every (re)connect the Source re-reads MG's
// users and open dialogs over REST and calls Target.SetRoster, then
// Target.Resync (the roster first, so that dialogs found unassigned are
// distributed over the current managers). The websocket has no replay;
// this resync is what keeps dialogs opened during a disconnection from
// being missed.
//
// A Source's methods are safe for concurrent use, but Run must not be
// called again while it runs.
type Source struct {
	opts   config
	tr     *Translator
	stream *mg.Stream
	log    *slog.Logger

	lanes     *lanes
	selfKnown atomic.Bool
	resyncs   atomic.Uint64
	skipped   atomic.Uint64
}

// New returns the Source of account's events, read with client (the
// account's MG client, its bot token) and handed to target, tuned by opts
// (see [Option]; none means the defaults). It does not connect. It fails
// on an empty account, a nil client or target, and an option's bad
// argument, naming the option.
func New(account bd.AccountID, client *mg.Client, target Target, opts ...Option) (*Source, error) {
	var problems []string
	if account == "" {
		problems = append(problems, "empty account id")
	}
	if client == nil {
		problems = append(problems, "nil client")
	}
	if target == nil {
		problems = append(problems, "nil target")
	}
	if len(problems) > 0 {
		return nil, errors.New("mgsource: " + strings.Join(problems, "; "))
	}
	cfg := config{
		Account:     account,
		Client:      client,
		Target:      target,
		Logger:      slog.New(slog.DiscardHandler),
		ResyncEvery: DefaultResyncEvery,
		DeliverFor:  DefaultDeliverFor,
		Lanes:       DefaultLanes,
	}
	if err := option.Apply(opts, func(o Option) error { return o.apply(&cfg) }); err != nil {
		return nil, fmt.Errorf("mgsource: %w", err)
	}
	s := &Source{opts: cfg, tr: NewTranslator(cfg.Account, cfg.Status), log: cfg.Logger.With("account", string(cfg.Account))}
	s.lanes = newLanes(s, cfg.Lanes)
	so := append(slices.Clip(cfg.Stream), mg.WithOnConnect(s.resyncAfterConnect))
	stream, err := cfg.Client.Stream(mg.DistributorEvents(), s.handle, so...)
	if err != nil {
		return nil, fmt.Errorf("mgsource: WithStream: %w", err)
	}
	s.stream = stream
	return s, nil
}

// Translator returns the Source's translator, e.g. to inspect what it
// knows in a test.
func (s *Source) Translator() *Translator { return s.tr }

// Run streams events until ctx ends, reconnecting and resyncing as needed
// (see mg.Stream.Run) and resyncing every [WithResyncEvery], and returns
// ctx.Err() once every goroutine it started has exited. It returns earlier
// only when MG refuses the websocket for good (a wrong token).
func (s *Source) Run(ctx context.Context) error {
	lanesCtx, stopLanes := context.WithCancel(ctx)
	s.lanes.start(lanesCtx)
	defer func() {
		stopLanes()
		s.lanes.stop()
	}()
	if s.opts.ResyncEvery < 0 {
		return s.stream.Run(ctx)
	}
	periodic, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.opts.ResyncEvery)
		defer t.Stop()
		for {
			select {
			case <-periodic.Done():
				return
			case <-t.C:
			}
			if err := s.Resync(periodic); err != nil && periodic.Err() == nil {
				s.log.Warn("mgsource: periodic resync failed", slog.Any("error", err))
			}
		}
	})
	err := s.stream.Run(ctx)
	stop()
	wg.Wait()
	return err
}

// resyncAfterConnect lets the events that arrived before the connect reach
// the target, then resyncs.
func (s *Source) resyncAfterConnect(ctx context.Context) error {
	s.lanes.settle(ctx)
	return s.Resync(ctx)
}

// Stats reports the stream's counters, the number of completed resyncs,
// and the number of events dropped because their dialog could not be
// identified.
func (s *Source) Stats() Stats {
	st := Stats{Stream: s.stream.Stats(), Resyncs: s.resyncs.Load(), Skipped: s.skipped.Load()}
	st.Stream.HandlerErrors += s.lanes.errors.Load()
	return st
}

// Stats are a Source's counters.
type Stats struct {
	Stream  mg.StreamStats
	Resyncs uint64
	Skipped uint64
}

// Resync re-reads the own bot (once), every MG user and every open dialog
// (all pages), then calls Target.SetRoster and Target.Resync. Run calls it
// after every connect; call it directly at start-up without a stream, or
// from a periodic safety net. An error leaves the target as it was after
// the step that failed; the next resync starts over.
//
// An unassigned dialog needs its channel and customer to be distributed;
// the chats no event has shown yet are read with GET /chats a page of up
// to mg.MaxLimit at a time from the lowest id needed, while that costs
// fewer requests than reading the missing ones one by one, and the rest
// with one GET /chats?id= each (MG has no batch lookup by ids). A resync
// after a long outage so costs a few requests rather than one per
// unassigned dialog.
func (s *Source) Resync(ctx context.Context) error {
	c := s.opts.Client
	if !s.selfKnown.Load() {
		self, err := c.SelfBot(ctx)
		if err != nil {
			return fmt.Errorf("mgsource: own bot: %w", err)
		}
		s.tr.SetSelf(self.ID)
		s.selfKnown.Store(true)
	}
	users, err := mg.Collect(c.AllUsers(ctx, mg.UsersFilter{}))
	if err != nil {
		return fmt.Errorf("mgsource: users: %w", err)
	}
	if err := s.opts.Target.SetRoster(ctx, s.tr.SetUsers(users)); err != nil {
		return fmt.Errorf("mgsource: set roster: %w", err)
	}
	dialogs, err := mg.Collect(c.AllDialogs(ctx, mg.DialogsFilter{Active: mg.Yes}))
	if err != nil {
		return fmt.Errorf("mgsource: open dialogs: %w", err)
	}
	var need []bd.ChatID
	for _, d := range dialogs {
		if d.IsActive && d.Responsible.Who().IsZero() {
			if _, ok := s.tr.chat(d.ChatID); !ok {
				need = append(need, d.ChatID)
			}
		}
	}
	if err := s.prefetchChats(ctx, need); err != nil {
		return fmt.Errorf("mgsource: chats of unassigned dialogs: %w", err)
	}
	open := make([]distributor.OpenDialog, 0, len(dialogs))
	for _, d := range dialogs {
		if !d.IsActive {
			continue // the filter was not applied: a closed dialog is not open
		}
		od := distributor.OpenDialog{
			Dialog:      bd.Dialog{Account: s.opts.Account, ID: d.ID, Chat: d.ChatID, OpenedAt: d.CreatedAt.Time},
			Responsible: d.Responsible.Who(),
		}
		// Only a dialog that may be distributed needs its channel (for the
		// channel rule) and customer (for replies and binding); the others
		// are completed from the cache when it knows their chat.
		need := od.Responsible.IsZero()
		info, err := s.chatOf(ctx, d.ChatID, need)
		if err != nil {
			return fmt.Errorf("mgsource: chat %d of dialog %d: %w", d.ChatID, d.ID, err)
		}
		od.Dialog.Channel, od.Dialog.Customer = info.channel, info.customer
		open = append(open, od)
	}
	if err := s.opts.Target.Resync(ctx, open); err != nil {
		return fmt.Errorf("mgsource: resync: %w", err)
	}
	s.resyncs.Add(1)
	s.log.LogAttrs(ctx, slog.LevelInfo, "mg resync", slog.Int("users", len(users)), slog.Int("open_dialogs", len(open)))
	return nil
}

// prefetchChats reads the chats in need (of unassigned dialogs, unknown to
// the cache) a page of up to mg.MaxLimit chats at a time, in id order from
// the lowest, while that costs fewer requests than reading the chats still
// missing one by one (GET /chats?id=, which chatOf does for whatever is
// left). After an outage or a takeover, hundreds of dialogs opened unseen
// are so completed in a few requests rather than one round trip each.
func (s *Source) prefetchChats(ctx context.Context, need []bd.ChatID) error {
	if len(need) < 2 {
		return nil
	}
	slices.Sort(need)
	need = slices.Compact(need)
	missing := make(map[bd.ChatID]bool, len(need))
	for _, id := range need {
		missing[id] = true
	}
	last := need[len(need)-1]
	p := mg.Page{SinceID: int64(need[0]) - 1, Limit: mg.MaxLimit}
	for pages := 0; pages < len(missing); pages++ {
		chats, err := s.opts.Client.Chats(ctx, mg.ChatsFilter{Page: p})
		if err != nil {
			return err
		}
		top := bd.ChatID(p.SinceID)
		for _, c := range chats {
			top = max(top, c.ID)
			if missing[c.ID] {
				s.tr.rememberChat(c)
				delete(missing, c.ID)
			}
		}
		if len(missing) == 0 || len(chats) < p.Limit || top >= last || int64(top) <= p.SinceID {
			return nil
		}
		p.SinceID = int64(top)
	}
	return nil
}

// chatOf returns the chat's channel and customer from the cache, or, when
// fetch is set and the cache lacks them, from GET /chats?id=.
func (s *Source) chatOf(ctx context.Context, chat bd.ChatID, fetch bool) (chatInfo, error) {
	if info, ok := s.tr.chat(chat); ok || !fetch || chat <= 0 {
		return info, nil
	}
	chats, err := s.opts.Client.Chats(ctx, mg.ChatsFilter{ID: int64(chat)})
	if err != nil {
		return chatInfo{}, err
	}
	for _, c := range chats {
		if c.ID == chat {
			return s.tr.rememberChat(c), nil
		}
	}
	return chatInfo{}, fmt.Errorf("chat %d not found", chat)
}

// handle translates one event on the stream's goroutine and hands it to
// its chat's lane (see [WithLanes]).
func (s *Source) handle(ctx context.Context, ev mg.Event) error {
	de, ok := s.tr.Translate(ev)
	if !ok {
		return nil
	}
	return s.lanes.add(ctx, laneEvent{typ: ev.Type, ev: de})
}

// complete completes a translated event over REST when MG left out the
// chat or the dialog, and hands it to the target.
func (s *Source) complete(ctx context.Context, typ string, de distributor.Event) error {
	switch de.Kind {
	case distributor.DialogOpened, distributor.CustomerMessage, distributor.DialogAssigned:
		if de.Dialog.Channel == 0 || de.Dialog.Customer.ID == 0 {
			info, err := s.chatOf(ctx, de.Dialog.Chat, true)
			if err != nil {
				return fmt.Errorf("mgsource: %s: chat %d: %w", typ, de.Dialog.Chat, err)
			}
			if de.Dialog.Channel == 0 {
				de.Dialog.Channel = info.channel
			}
			de.Dialog.Customer = mergeCustomer(de.Dialog.Customer, info.customer)
		}
	}
	if de.Kind != distributor.ManagerChanged && de.Dialog.ID == 0 {
		id, err := s.openDialogOf(ctx, de.Dialog.Chat)
		if err != nil {
			return fmt.Errorf("mgsource: %s: dialog of chat %d: %w", typ, de.Dialog.Chat, err)
		}
		if id == 0 {
			s.skipped.Add(1)
			s.log.LogAttrs(ctx, slog.LevelDebug, "mg event without an open dialog", slog.String("type", typ), slog.Int64("chat", int64(de.Dialog.Chat)))
			return nil
		}
		de.Dialog.ID = id
	}
	return s.deliver(ctx, de)
}

// deliver hands an event to the target until it is accepted. The stream
// has no replay, so an event the target could not store (the database is
// briefly unreachable) is offered again with backoff rather than dropped;
// the events behind it wait, as they would have to anyway. Errors that
// another try cannot mend (a malformed event, an unknown account, a closed
// distributor) return at once; after DefaultDeliverFor the event is given
// up to the resync.
func (s *Source) deliver(ctx context.Context, ev distributor.Event) error {
	wait := 50 * time.Millisecond
	deadline := time.Now().Add(s.opts.DeliverFor)
	for {
		err := s.opts.Target.Handle(ctx, ev)
		if err == nil || errors.Is(err, distributor.ErrBadEvent) || errors.Is(err, distributor.ErrUnknownAccount) ||
			errors.Is(err, distributor.ErrClosed) || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "mgsource: event not accepted; offering it again", slog.String("event", ev.Kind.String()),
			slog.Int64("dialog", int64(ev.Dialog.ID)), slog.Duration("in", wait), slog.Any("error", err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// openDialogOf returns the chat's open dialog, for messages MG sent
// without their dialog id (older MG versions); 0 if it has none.
func (s *Source) openDialogOf(ctx context.Context, chat bd.ChatID) (bd.DialogID, error) {
	if chat <= 0 {
		return 0, nil
	}
	ds, err := s.opts.Client.Dialogs(ctx, mg.DialogsFilter{ChatID: int64(chat), Active: mg.Yes})
	if err != nil {
		return 0, err
	}
	var id bd.DialogID
	for _, d := range ds {
		if d.IsActive && d.ID > id {
			id = d.ID
		}
	}
	return id, nil
}
