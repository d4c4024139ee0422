package mgsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
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

// Options configure a Source. Account, Client and Target are required.
type Options struct {
	// Account is the account the events belong to.
	Account bd.AccountID
	// Client is the account's MG client (its bot token).
	Client *mg.Client
	// Target receives the events, the roster and the resyncs.
	Target Target
	// Status, when set, gives a manager's retailCRM status for the roster
	// and for ManagerChanged events; without it every manager is free (MG
	// knows no CRM status; see NewTranslator).
	Status func(bd.ManagerID) (bd.ManagerStatus, bool)
	// Stream tunes the websocket: Backoff, PingInterval, PongTimeout,
	// MaxBacklog, MaxFrameBytes, OnUnknown, OnMalformed. Types, Handler
	// and OnConnect are set by the Source.
	Stream mg.StreamOptions
	// Logger receives the Source's diagnostics; nil discards them. The
	// Source adds the attribute account (Account) to every record, so give
	// it a logger that does not carry one already.
	Logger *slog.Logger
	// ResyncEvery is how often Run resyncs while connected, as a safety
	// net for events lost before the target accepted them. Zero means 5
	// minutes; a negative value turns the periodic resync off.
	ResyncEvery time.Duration
	// DeliverFor is how long an event the target refuses with a transient
	// error (its store is unreachable) is offered again before it is left
	// to the resync. Zero means DefaultDeliverFor.
	DeliverFor time.Duration
	// Lanes is how many events are handed to the target at once. The
	// events of one chat always go through one lane, in the order MG sent
	// them; other chats' events do not wait behind them. Zero means
	// DefaultLanes; 1 hands every event over in arrival order.
	Lanes int
}

// DefaultDeliverFor is Options.DeliverFor when it is zero.
const DefaultDeliverFor = 30 * time.Second

// DefaultResyncEvery is the periodic resync interval when
// Options.ResyncEvery is zero.
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
	opts   Options
	tr     *Translator
	stream *mg.Stream
	log    *slog.Logger

	lanes     *lanes
	selfKnown atomic.Bool
	resyncs   atomic.Uint64
	skipped   atomic.Uint64
}

// New checks the options and returns a Source; it does not connect.
func New(opts Options) (*Source, error) {
	var problems []string
	if opts.Account == "" {
		problems = append(problems, "no Account")
	}
	if opts.Client == nil {
		problems = append(problems, "no Client")
	}
	if opts.Target == nil {
		problems = append(problems, "no Target")
	}
	if len(problems) > 0 {
		return nil, errors.New("mgsource: " + strings.Join(problems, "; "))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ResyncEvery == 0 {
		opts.ResyncEvery = DefaultResyncEvery
	}
	if opts.DeliverFor <= 0 {
		opts.DeliverFor = DefaultDeliverFor
	}
	if opts.Lanes < 0 {
		return nil, fmt.Errorf("mgsource: Lanes must not be negative, got %d", opts.Lanes)
	}
	if opts.Lanes == 0 {
		opts.Lanes = DefaultLanes
	}
	s := &Source{opts: opts, tr: NewTranslator(opts.Account, opts.Status), log: opts.Logger.With("account", string(opts.Account))}
	s.lanes = newLanes(s, opts.Lanes)
	so := opts.Stream
	so.Types = mg.DistributorEvents()
	so.Handler = s.handle
	so.OnConnect = s.resyncAfterConnect
	stream, err := opts.Client.Stream(so)
	if err != nil {
		return nil, fmt.Errorf("mgsource: %w", err)
	}
	s.stream = stream
	return s, nil
}

// Translator returns the Source's translator, e.g. to inspect what it
// knows in a test.
func (s *Source) Translator() *Translator { return s.tr }

// Run streams events until ctx ends, reconnecting and resyncing as needed
// (see mg.Stream.Run) and resyncing every Options.ResyncEvery, and returns
// ctx.Err() once every goroutine it started has exited. It returns earlier
// only when MG refuses the websocket for good (a wrong token).
func (s *Source) Run(ctx context.Context) error {
	lanesCtx, stopLanes := context.WithCancel(ctx)
	var lanes sync.WaitGroup
	lanes.Go(func() { s.lanes.run(lanesCtx) })
	defer func() {
		stopLanes()
		lanes.Wait()
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
// when no event has shown its chat yet, the chat is read with one
// GET /chats?id= each (MG has no batch lookup), so a resync after a long
// outage costs one request per unassigned dialog, paced by the client's
// rate limiter.
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
// its chat's lane (see Options.Lanes).
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
