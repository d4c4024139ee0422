package memory

import (
	"context"
	"fmt"
	"slices"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// Not-found errors of the hot paths are allocated once.
var (
	errNoResponsible = fmt.Errorf("%w: memory: the dialog has no responsible", store.ErrNotFound)
	errNoLastManager = fmt.Errorf("%w: memory: no manager was ever given a dialog of the customer", store.ErrNotFound)
)

// managerState is one manager's row in a shard's managers table.
type managerState struct {
	// dialogs holds the dialogs the manager is responsible for, ascending;
	// its length is the manager's load.
	dialogs []bd.DialogID
	// last is when the manager was last given a dialog by Assign, by the
	// wall clock (a monotonic clock reading is dropped, as the SQL stores
	// drop it): strategies compare the times of managers that different
	// processes assigned.
	last time.Time
}

// add makes m responsible for d.
func (m *managerState) add(d bd.DialogID) {
	if i, found := slices.BinarySearch(m.dialogs, d); !found {
		m.dialogs = slices.Insert(m.dialogs, i, d)
	}
}

// remove takes d away from m.
func (m *managerState) remove(d bd.DialogID) {
	if i, found := slices.BinarySearch(m.dialogs, d); found {
		m.dialogs = slices.Delete(m.dialogs, i, i+1)
	}
}

// manager returns the row of m, adding it when absent. Callers hold sh.mu.
func (sh *shard) manager(m bd.ManagerID) *managerState {
	i, ok := sh.index[m]
	if !ok {
		i = len(sh.managers)
		sh.index[m] = i
		sh.managers = append(sh.managers, managerState{})
	}
	return &sh.managers[i]
}

// checkResponsible rejects a responsible of unknown kind or non-positive id;
// zero is accepted only when allowZero is set.
func checkResponsible(op string, r bd.Responsible, allowZero bool) error {
	switch {
	case r.IsZero():
		if !allowZero {
			return invalid(op, "responsible is nobody")
		}
	case r.Kind != bd.ManagerResponsible && r.Kind != bd.BotResponsible:
		return invalid(op, "unknown responsible kind %d", r.Kind)
	case r.ID <= 0:
		return invalid(op, "%s: id must be positive", r)
	}
	return nil
}

// Assign implements [store.Assignments]: it makes a.To responsible for
// a.Dialog unless the dialog has a responsible ([store.ErrAssigned]) or a.To
// is a manager holding a.Capacity dialogs or more ([store.ErrCapacity]). The
// check and the write happen under the account's lock. A request with an
// empty account, a non-positive dialog id, a zero or malformed responsible
// or a negative capacity fails with [store.ErrInvalid]. Nothing changes when
// it fails.
func (s *Store) Assign(_ context.Context, a store.Assignment) error {
	if err := store.CheckJobs(a.Then); err != nil {
		return fmt.Errorf("memory: assign: %w", err)
	}
	if err := s.assign(a); err != nil {
		return err
	}
	s.submit(a.Then)
	return nil
}

func (s *Store) assign(a store.Assignment) error {
	const op = "assign"
	if err := checkDialog(op, a.Account, a.Dialog); err != nil {
		return err
	}
	if err := checkResponsible(op, a.To, false); err != nil {
		return err
	}
	if a.Capacity < 0 {
		return invalid(op, "capacity must not be negative, got %d", a.Capacity)
	}
	if !a.From.IsZero() {
		if err := checkResponsible(op, a.From, false); err != nil {
			return err
		}
	}
	sh := s.shardFor(a.Account)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.isClosed(a.Dialog) {
		return closedErr(a.Dialog)
	}
	if cur, ok := sh.resp[a.Dialog]; ok != !a.From.IsZero() || cur != a.From {
		if !ok {
			return fmt.Errorf("%w: memory: dialog %d is with nobody, not %s", store.ErrAssigned, a.Dialog, a.From)
		}
		return fmt.Errorf("%w: memory: dialog %d is with %s", store.ErrAssigned, a.Dialog, cur)
	}
	if a.From == a.To {
		return fmt.Errorf("%w: memory: dialog %d is with %s already", store.ErrAssigned, a.Dialog, a.To)
	}
	if m, ok := a.To.Manager(); ok {
		open := 0
		if i, ok := sh.index[m]; ok {
			open = len(sh.managers[i].dialogs)
		}
		if open >= a.Capacity {
			return fmt.Errorf("%w: memory: manager %d holds %d dialogs, capacity %d", store.ErrCapacity, m, open, a.Capacity)
		}
		ms := sh.manager(m)
		ms.add(a.Dialog)
		ms.last = a.At.Round(0)
		if a.Customer != 0 {
			sh.last.set(a.Customer, m)
		}
	}
	if m, ok := a.From.Manager(); ok {
		sh.managers[sh.index[m]].remove(a.Dialog)
	}
	sh.resp[a.Dialog] = a.To
	return nil
}

// closedErr is the error for an operation on a closed dialog.
func closedErr(d bd.DialogID) error {
	return fmt.Errorf("%w: memory: dialog %d", store.ErrClosed, d)
}

// Close implements [store.Assignments]: under the account's lock it removes
// the dialog's responsible and their load, takes it out of the queue and
// marks it closed.
func (s *Store) Close(_ context.Context, acc bd.AccountID, d bd.DialogID, at time.Time, then ...store.Job) (bd.Responsible, error) {
	if err := checkDialog("close", acc, d); err != nil {
		return bd.Responsible{}, err
	}
	if err := store.CheckJobs(then); err != nil {
		return bd.Responsible{}, fmt.Errorf("memory: close: %w", err)
	}
	prev, waiting := s.close(acc, d, at)
	// A dialog queued after the close is in the queue along with its own
	// drain: the close's IfWaiting jobs are needed only if some wait now.
	s.submitIf(then, waiting)
	return prev, nil
}

// close closes the dialog and reports its previous responsible and whether
// other dialogs of the account wait.
func (s *Store) close(acc bd.AccountID, d bd.DialogID, at time.Time) (prev bd.Responsible, waiting bool) {
	sh := s.shardFor(acc)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	prev = sh.resp[d]
	if !prev.IsZero() {
		delete(sh.resp, d)
		if m, ok := prev.Manager(); ok {
			sh.managers[sh.index[m]].remove(d)
		}
	}
	sh.queue.remove(d)
	if r := sh.dialogs[d]; !r.closed {
		r.closed, r.closedAt = true, unixNanos(at)
		sh.dialogs[d] = r
	}
	return prev, len(sh.queue.entries) > 0
}

// Record implements [store.Assignments]: it makes a.To, or nobody when a.To
// is zero, responsible for a.Dialog whatever the loads, moves the load from
// the previous manager and returns the previous responsible. A manager
// recorded this way becomes the customer's last manager; their
// LastAssignedAt, which only Assign sets, does not change. An empty account,
// a non-positive dialog id or a malformed responsible fail with
// [store.ErrInvalid].
func (s *Store) Record(_ context.Context, a store.Assignment) (bd.Responsible, error) {
	if err := store.CheckJobs(a.Then); err != nil {
		return bd.Responsible{}, fmt.Errorf("memory: record: %w", err)
	}
	prev, err := s.record(a)
	if err != nil {
		return prev, err
	}
	s.submit(a.Then)
	return prev, nil
}

func (s *Store) record(a store.Assignment) (bd.Responsible, error) {
	const op = "record"
	if err := checkDialog(op, a.Account, a.Dialog); err != nil {
		return bd.Responsible{}, err
	}
	if err := checkResponsible(op, a.To, true); err != nil {
		return bd.Responsible{}, err
	}
	sh := s.shardFor(a.Account)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.isClosed(a.Dialog) {
		return bd.Responsible{}, closedErr(a.Dialog)
	}
	prev := sh.resp[a.Dialog]
	if m, ok := prev.Manager(); ok && prev != a.To {
		sh.managers[sh.index[m]].remove(a.Dialog)
	}
	if m, ok := a.To.Manager(); ok {
		sh.manager(m).add(a.Dialog)
		if a.Customer != 0 {
			sh.last.set(a.Customer, m)
		}
	}
	if a.To.IsZero() {
		delete(sh.resp, a.Dialog)
	} else {
		sh.resp[a.Dialog] = a.To
	}
	return prev, nil
}

// Release implements [store.Assignments]: it removes the dialog's
// responsible, frees their load and returns them, or fails with
// [store.ErrNotFound] when the dialog has none.
func (s *Store) Release(_ context.Context, acc bd.AccountID, d bd.DialogID) (bd.Responsible, error) {
	if err := checkDialog("release", acc, d); err != nil {
		return bd.Responsible{}, err
	}
	sh := s.shardOf(acc)
	if sh == nil {
		return bd.Responsible{}, errNoResponsible
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	prev, ok := sh.resp[d]
	if !ok {
		return bd.Responsible{}, errNoResponsible
	}
	delete(sh.resp, d)
	if m, ok := prev.Manager(); ok {
		sh.managers[sh.index[m]].remove(d)
	}
	return prev, nil
}

// Responsible implements [store.Assignments]; it fails with
// [store.ErrNotFound] when the dialog has no responsible.
func (s *Store) Responsible(_ context.Context, acc bd.AccountID, d bd.DialogID) (bd.Responsible, error) {
	if err := checkDialog("responsible", acc, d); err != nil {
		return bd.Responsible{}, err
	}
	sh := s.shardOf(acc)
	if sh == nil {
		return bd.Responsible{}, errNoResponsible
	}
	sh.mu.Lock()
	r, ok := sh.resp[d]
	sh.mu.Unlock()
	if !ok {
		return bd.Responsible{}, errNoResponsible
	}
	return r, nil
}

// Loads implements [store.Assignments]. It makes one pass over managers
// under the account's lock and allocates only the result, and only
// when dst is too small. A list asked
// for twice in a row is remembered (a few lists per account), so that later
// requests for the same list skip looking each manager up.
func (s *Store) Loads(_ context.Context, acc bd.AccountID, managers []bd.ManagerID, dst []store.Load) ([]store.Load, error) {
	if err := checkAccount("loads", acc); err != nil {
		return nil, err
	}
	out := emptyLoads(managers, dst)
	if sh := s.shardOf(acc); sh != nil {
		p := sh.plans.find(managers)
		sh.mu.Lock()
		sh.loads(managers, p, out)
		sh.mu.Unlock()
	}
	return out, nil
}

// emptyLoads returns the loads of managers who hold nothing, in dst when
// it is large enough.
func emptyLoads(managers []bd.ManagerID, dst []store.Load) []store.Load {
	out := dst[:0]
	if cap(out) < len(managers) {
		out = make([]store.Load, len(managers))
	} else {
		out = out[:len(managers)]
		clear(out)
	}
	for i, m := range managers {
		out[i].Manager = m
	}
	return out
}

// loads fills out (as long as managers) with the managers' loads, with
// sh.mu held; p is the plan found for managers before, if any.
func (sh *shard) loads(managers []bd.ManagerID, p *loadsPlan, out []store.Load) {
	if p != nil && p.table == len(sh.managers) {
		for i, row := range p.rows {
			ms := &sh.managers[row]
			l := &out[i]
			l.Manager = managers[i]
			l.Open = len(ms.dialogs)
			l.LastAssignedAt = ms.last
		}
		return
	}
	h := newIDHash()
	for i, m := range managers {
		out[i].Manager = m
		h.add(m)
		if row, ok := sh.index[m]; ok {
			ms := &sh.managers[row]
			out[i].Open = len(ms.dialogs)
			out[i].LastAssignedAt = ms.last
		}
	}
	if sh.plans.missed(h) {
		sh.plans.add(sh.newPlan(managers))
	}
}

// DialogsOf implements [store.Assignments]. It returns nil when the manager
// holds no dialog.
func (s *Store) DialogsOf(_ context.Context, acc bd.AccountID, m bd.ManagerID) ([]bd.DialogID, error) {
	if err := checkAccount("dialogs of", acc); err != nil {
		return nil, err
	}
	sh := s.shardOf(acc)
	if sh == nil {
		return nil, nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, ok := sh.index[m]
	if !ok || len(sh.managers[i].dialogs) == 0 {
		return nil, nil
	}
	return slices.Clone(sh.managers[i].dialogs), nil
}

// LastManager implements [store.Assignments]; it fails with
// [store.ErrNotFound] when no manager was ever given a dialog of the customer.
func (s *Store) LastManager(_ context.Context, acc bd.AccountID, c bd.CustomerID) (bd.ManagerID, error) {
	if err := checkAccount("last manager", acc); err != nil {
		return 0, err
	}
	sh := s.shardOf(acc)
	if sh == nil {
		return 0, errNoLastManager
	}
	m, ok := sh.last.get(c)
	if !ok {
		return 0, errNoLastManager
	}
	return m, nil
}

// ReadDecision implements [store.DecisionReader]: the loads and the
// queue's length under one hold of the account's lock, which the decisions
// of every worker share, and the customer's last manager after it.
func (s *Store) ReadDecision(_ context.Context, acc bd.AccountID, managers []bd.ManagerID, c bd.CustomerID, dst []store.Load) (store.DecisionReads, error) {
	if err := checkAccount("read decision", acc); err != nil {
		return store.DecisionReads{}, err
	}
	out := emptyLoads(managers, dst)
	r := store.DecisionReads{Loads: out}
	sh := s.shardOf(acc)
	if sh == nil {
		return r, nil
	}
	p := sh.plans.find(managers)
	sh.mu.Lock()
	sh.loads(managers, p, out)
	r.Waiting = len(sh.queue.entries)
	sh.mu.Unlock()
	if c != 0 {
		r.LastManager, _ = sh.last.get(c)
	}
	return r, nil
}
