package retailcrm

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/binding"
)

// Pending keeps binds that failed because retailCRM was unavailable and
// retries them with backoff, so that no binding is lost while the dialog
// is distributed without it.
//
// Pending is itself a [binding.Binder], and wraps any: Bind calls the
// wrapped binder and, when that fails with [binding.ErrUnavailable], keeps
// the request and returns the error unchanged, so the caller goes on
// without the binding. [Pending.Run] retries kept requests until they
// succeed or fail for another reason. Requests are kept in memory, one per
// (account, customer): a later request for the same customer replaces the
// kept one (Create is kept if either asked for it). [Pending.Requests] and [Pending.Keep] let a caller save
// and restore them across restarts.
//
// All methods are safe for concurrent use; Run may be running at most once
// at a time.
type Pending struct {
	binder     binding.Binder
	backoff    time.Duration
	maxBackoff time.Duration
	now        func() time.Time
	onDone     func(binding.Request, binding.Result, error)
	log        *slog.Logger
	wake       chan struct{}

	mu      sync.Mutex
	running bool
	items   map[pendingKey]*pendingItem
}

type pendingKey struct {
	account  bd.AccountID
	customer bd.CustomerID
}

type pendingItem struct {
	req      binding.Request
	due      time.Time
	wait     time.Duration
	attempts int
}

var _ binding.Binder = (*Pending)(nil)

// NewPending wraps binder with a retry queue tuned by opts (see
// [PendingOption]; none means the defaults). It fails on a nil binder and on
// an option's bad argument, naming the option.
func NewPending(binder binding.Binder, opts ...PendingOption) (*Pending, error) {
	if binder == nil {
		return nil, errors.New("retailcrm: NewPending: nil binder")
	}
	cfg := pendingConfig{
		backoff:    DefaultPendingBackoff,
		maxBackoff: DefaultPendingMaxBackoff,
		now:        time.Now,
		logger:     slog.New(slog.DiscardHandler),
	}
	if err := applyAll("NewPending", opts, func(o PendingOption) error { return o.applyPending(&cfg) }); err != nil {
		return nil, err
	}
	return &Pending{
		binder:     binder,
		backoff:    cfg.backoff,
		maxBackoff: cfg.maxBackoff,
		now:        cfg.now,
		onDone:     cfg.onDone,
		log:        cfg.logger,
		wake:       make(chan struct{}, 1),
		items:      make(map[pendingKey]*pendingItem),
	}, nil
}

// Bind binds through the wrapped binder. When that fails with
// [binding.ErrUnavailable] the request is kept for [Pending.Run] to retry,
// and the error is returned as is. A success drops a kept request of the
// customer.
func (p *Pending) Bind(ctx context.Context, req binding.Request) (binding.Result, error) {
	res, err := p.binder.Bind(ctx, req)
	switch {
	case err == nil:
		p.mu.Lock()
		delete(p.items, pendingKey{req.Account, req.Customer.ID})
		p.mu.Unlock()
	case errors.Is(err, binding.ErrUnavailable):
		p.Keep(req)
	}
	return res, err
}

// Keep adds req to the requests to retry; its first retry is due after
// the first wait of [WithBackoff]. A request already kept for the customer is replaced by req,
// keeping its schedule and Create if either asked for it.
func (p *Pending) Keep(req binding.Request) {
	k := pendingKey{req.Account, req.Customer.ID}
	p.mu.Lock()
	if it, ok := p.items[k]; ok {
		req.Create = req.Create || it.req.Create
		it.req = req
	} else {
		p.items[k] = &pendingItem{req: req, due: p.now().Add(p.backoff), wait: p.backoff}
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Len returns how many requests are kept.
func (p *Pending) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.items)
}

// Requests returns the kept requests, ordered by account and customer id.
func (p *Pending) Requests() []binding.Request {
	p.mu.Lock()
	out := make([]binding.Request, 0, len(p.items))
	for _, it := range p.items {
		out = append(out, it.req)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b binding.Request) int {
		switch {
		case a.Account != b.Account:
			if a.Account < b.Account {
				return -1
			}
			return 1
		case a.Customer.ID < b.Customer.ID:
			return -1
		case a.Customer.ID > b.Customer.ID:
			return 1
		}
		return 0
	})
	return out
}

// Run retries kept requests as they fall due, until ctx ends; then it
// returns ctx.Err(), keeping the requests not yet bound. A request that
// fails with [binding.ErrUnavailable] again is retried after twice the
// previous wait (capped at the ceiling of [WithBackoff]); one that succeeds or fails
// otherwise is dropped and reported to OnDone. Run returns an error at once if another
// Run is in progress.
func (p *Pending) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return errors.New("retailcrm: Pending.Run is already running")
	}
	p.running = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.running = false
		p.mu.Unlock()
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		due, next := p.takeDue()
		for _, it := range due {
			p.retry(ctx, it)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if len(due) > 0 {
			continue
		}
		var tick <-chan time.Time
		if next > 0 {
			timer.Reset(next)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.wake:
		case <-tick:
		}
	}
}

// takeDue returns copies of the requests due now and how long until the
// next one is due (0 when none is kept).
func (p *Pending) takeDue() ([]pendingItem, time.Duration) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var due []pendingItem
	var next time.Duration
	for _, it := range p.items {
		if d := it.due.Sub(now); d > 0 {
			if next == 0 || d < next {
				next = d
			}
			continue
		}
		due = append(due, *it)
	}
	slices.SortFunc(due, func(a, b pendingItem) int { return a.due.Compare(b.due) })
	return due, next
}

func (p *Pending) retry(ctx context.Context, it pendingItem) {
	k := pendingKey{it.req.Account, it.req.Customer.ID}
	res, err := p.binder.Bind(ctx, it.req)
	if err != nil && ctx.Err() != nil {
		return // stopping: keep it for the next Run
	}
	p.mu.Lock()
	cur, ok := p.items[k]
	if !ok {
		p.mu.Unlock()
		return // bound meanwhile through Bind
	}
	if err != nil && errors.Is(err, binding.ErrUnavailable) {
		cur.attempts++
		cur.wait = min(2*cur.wait, p.maxBackoff)
		cur.due = p.now().Add(cur.wait)
		attempts, wait := cur.attempts, cur.wait
		p.mu.Unlock()
		p.log.LogAttrs(ctx, slog.LevelDebug, "binding: retry failed, retrying later",
			slog.String("account", string(k.account)), slog.Int64("customer", int64(k.customer)),
			slog.Int("attempts", attempts), slog.Duration("wait", wait), slog.String("error", err.Error()))
		return
	}
	req := cur.req
	delete(p.items, k)
	p.mu.Unlock()
	if err != nil {
		p.log.LogAttrs(ctx, slog.LevelWarn, "binding: kept bind failed for good",
			slog.String("account", string(k.account)), slog.Int64("customer", int64(k.customer)),
			slog.String("error", err.Error()))
	}
	if p.onDone != nil {
		p.onDone(req, res, err)
	}
}
