package bot

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/store"
)

// Minutes is how many one-minute buckets [Activity] keeps per account.
const Minutes = 60

// Activity counts, per account and minute, the assignments, replies and
// dead letters of the last hour, for the dashboard's charts. It is fed by
// its [Activity.Hooks] and safe for concurrent use. The counts live in
// memory: they start at zero when the process starts.
type Activity struct {
	now func() time.Time

	mu       sync.Mutex
	accounts map[bd.AccountID]*activitySeries
}

type activitySeries struct {
	minute                  [Minutes]int64 // the minute (Unix time / 60) each slot counts
	assigned, replies, dead [Minutes]int
}

// NewActivity returns an empty Activity reading the time from now (nil
// means time.Now).
func NewActivity(now func() time.Time) *Activity {
	if now == nil {
		now = time.Now
	}
	return &Activity{now: now, accounts: make(map[bd.AccountID]*activitySeries)}
}

type counter uint8

const (
	countAssigned counter = iota
	countReplies
	countDead
)

func (a *Activity) add(id bd.AccountID, c counter) {
	m := a.now().Unix() / 60
	i := int(m % Minutes)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.accounts[id]
	if s == nil {
		s = &activitySeries{}
		a.accounts[id] = s
	}
	if s.minute[i] != m {
		s.minute[i] = m
		s.assigned[i], s.replies[i], s.dead[i] = 0, 0, 0
	}
	switch c {
	case countAssigned:
		s.assigned[i]++
	case countReplies:
		s.replies[i]++
	case countDead:
		s.dead[i]++
	}
}

// Hooks returns distributor hooks that count into a.
func (a *Activity) Hooks() distributor.Hooks {
	return distributor.Hooks{
		Assigned: func(id bd.AccountID, _ bd.Responsible, _ time.Duration, _ bool) { a.add(id, countAssigned) },
		Reassigned: func(id bd.AccountID, _ bd.ManagerID, _ bd.Responsible) {
			a.add(id, countAssigned)
		},
		Replied: func(id bd.AccountID, _ bd.Situation) { a.add(id, countReplies) },
		Dead:    func(id bd.AccountID, _ store.Job, _ error) { a.add(id, countDead) },
	}
}

// Series are per-minute counts of the last hour, oldest first; the last
// value is the current minute.
type Series struct {
	Assigned, Replies, Dead []int
}

// Series returns the account's counts of the last [Minutes] minutes.
func (a *Activity) Series(id bd.AccountID) Series {
	now := a.now().Unix() / 60
	out := Series{Assigned: make([]int, Minutes), Replies: make([]int, Minutes), Dead: make([]int, Minutes)}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.accounts[id]
	if s == nil {
		return out
	}
	for k := range Minutes {
		m := now - int64(Minutes-1-k)
		i := int(m % Minutes)
		if s.minute[i] == m {
			out.Assigned[k], out.Replies[k], out.Dead[k] = s.assigned[i], s.replies[i], s.dead[i]
		}
	}
	return out
}

// ManagerLoad is one manager as the dashboard shows them.
type ManagerLoad struct {
	bd.Manager
	// InDistribution is true for managers the settings distribute to.
	InDistribution bool
	// Open is how many dialogs the manager holds; Capacity the most they may.
	Open, Capacity int
	// Available is true when the manager may take dialogs under the
	// account's availability mode.
	Available bool
}

// Dashboard is the state of an account at a glance.
type Dashboard struct {
	Account bd.AccountID
	// Active is whether the account is distributed (bd.Settings.Active).
	Active bool
	// Connected is whether the MG event stream is connected now in this
	// process (false where another process runs it).
	Connected bool
	Managers  []ManagerLoad
	// Waiting is the queue, oldest first (at most 50); Queue its length.
	Waiting []store.Waiting
	Queue   int
	// LongestWait is how long the oldest waiting dialog has waited, read
	// from the whole queue (the oldest may wait behind dialogs of higher
	// priority).
	LongestWait time.Duration
	// Open is how many dialogs managers and bots hold, summed over the
	// managers shown.
	Open int
	// DeadLetters counts the jobs given up (up to 1000).
	DeadLetters int
	Activity    Series
	At          time.Time
}

// Dashboard reads the account's state at a glance.
func (s *Supervisor) Dashboard(ctx context.Context, id bd.AccountID) (Dashboard, error) {
	st, err := s.fleet.Account(ctx, id)
	if err != nil {
		return Dashboard{}, err
	}
	return s.dashboard(ctx, st)
}

// dashboard reads the rest of the dashboard of an account the fleet
// described (stream, queue length, dead letters).
func (s *Supervisor) dashboard(ctx context.Context, st fleet.AccountState) (Dashboard, error) {
	id := st.ID
	dist, err := s.fleet.Distributor(id)
	if err != nil {
		return Dashboard{}, err
	}
	if st.Waiting < 0 {
		return Dashboard{}, fmt.Errorf("bot: the store did not count the queue of %s", id)
	}
	now := s.now()
	set, err := dist.Settings(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	d := Dashboard{Account: id, Active: set.Active, Connected: st.Connected, Queue: st.Waiting, DeadLetters: max(st.Dead, 0), At: now}
	var roster []bd.Manager
	if a, err := s.account(id); err == nil {
		roster = a.roster.managers()
	}
	ids := make([]bd.ManagerID, 0, len(roster))
	for _, m := range roster {
		ids = append(ids, m.ID)
	}
	loads, err := s.store.Loads(ctx, id, ids, nil)
	if err != nil {
		return Dashboard{}, err
	}
	for i, m := range roster {
		ml := ManagerLoad{Manager: m, InDistribution: slices.Contains(set.Managers, m.ID), Capacity: set.CapacityOf(m.ID)}
		if i < len(loads) {
			ml.Open = loads[i].Open
		}
		ml.Available = m.Active && availableIn(set.Availability, m)
		d.Open += ml.Open
		d.Managers = append(d.Managers, ml)
	}
	slices.SortStableFunc(d.Managers, func(a, b ManagerLoad) int {
		if a.InDistribution != b.InDistribution {
			if a.InDistribution {
				return -1
			}
			return 1
		}
		return 0
	})
	if d.Waiting, err = s.store.Waiting(ctx, id, 50); err != nil {
		return Dashboard{}, err
	}
	all := d.Waiting
	if d.Queue > len(all) { // priorities may put the oldest further back
		if all, err = s.store.Waiting(ctx, id, 1<<30); err != nil {
			return Dashboard{}, err
		}
	}
	for _, w := range all {
		if since := w.Since; !since.IsZero() && now.Sub(since) > d.LongestWait {
			d.LongestWait = now.Sub(since)
		}
	}
	if s.opts.Activity != nil {
		d.Activity = s.opts.Activity.Series(id)
	}
	return d, nil
}

// availableIn reports whether m is available under mode, as the
// distributor judges it.
func availableIn(mode bd.AvailabilityMode, m bd.Manager) bool {
	free := m.Status == bd.StatusFree
	switch mode {
	case bd.StatusOnly:
		return free
	case bd.OnlineOnly:
		return m.Online
	}
	return free && m.Online
}

// AccountState is what the metrics' gauges show of one account.
type AccountState struct {
	Account     bd.AccountID
	Queue       int
	LongestWait time.Duration
	Open        int
	Connected   bool
	Active      bool
	DeadLetters int
}

// States returns the state of every running account, for the gauges, as
// its dashboard reads it.
func (s *Supervisor) States(ctx context.Context) []AccountState {
	var out []AccountState
	for _, info := range s.Accounts(ctx) {
		if !info.Running {
			continue
		}
		d, err := s.dashboard(ctx, info)
		if err != nil {
			continue
		}
		out = append(out, AccountState{Account: d.Account, Queue: d.Queue, LongestWait: d.LongestWait, Open: d.Open,
			Connected: d.Connected, Active: d.Active, DeadLetters: d.DeadLetters})
	}
	return out
}
