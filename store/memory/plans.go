package memory

import (
	"slices"
	"sync/atomic"

	bd "github.com/botdistributor/botdistributor"
)

// A loadsPlan remembers where the managers of one Loads request live in a
// shard's managers table, so that the next request for the same list (the
// distributor asks for the same roster dialog after dialog) reads the rows
// directly instead of looking every id up in the index.
//
// Making a plan gives every manager of the list a row, so a plan has no
// holes. Rows are only ever appended to the table, so a plan stays exact as
// long as the table keeps the length it had when the plan was made; a
// manager outside every planned list getting a first dialog outdates the
// plans, and the next two requests for a list make a new one.
type loadsPlan struct {
	ids   []bd.ManagerID // a private copy of the request
	rows  []int          // the row of each id in the table
	table int            // the length of the table the plan was made for
}

// newPlan makes the plan of ids, adding rows for managers without one.
// Callers hold sh.mu.
func (sh *shard) newPlan(ids []bd.ManagerID) *loadsPlan {
	rows := make([]int, len(ids))
	for i, m := range ids {
		sh.manager(m)
		rows[i] = sh.index[m]
	}
	return &loadsPlan{ids: slices.Clone(ids), rows: rows, table: len(sh.managers)}
}

// loadsPlans holds a shard's few most recent plans. The slots are read
// without the shard's lock, so that comparing a request with the plans
// (hundreds of ids) does not hold up the account; the rest is under the
// lock, which also keeps a plan's use exact: the table's length is checked
// there. A plan is never changed once made.
type loadsPlans struct {
	slots [4]atomic.Pointer[loadsPlan]
	next  int
	// lastMiss is the hash of the last list no plan matched; a list missed
	// twice in a row gets a plan, so one-off lists do not churn the slots.
	lastMiss idHash
}

// find returns a plan of ids, or nil; it holds only for a table of the
// length in its table field. Callers need not hold the shard's lock.
func (ps *loadsPlans) find(ids []bd.ManagerID) *loadsPlan {
	for i := range ps.slots {
		if p := ps.slots[i].Load(); p != nil && slices.Equal(p.ids, ids) {
			return p
		}
	}
	return nil
}

// missed records a list, by hash, that no plan matched and reports whether
// the previous miss was the same list.
func (ps *loadsPlans) missed(h idHash) bool {
	again := ps.lastMiss == h
	ps.lastMiss = h
	return again
}

// add puts p in place of an outdated plan of the same list, or else of
// the oldest plan, under the shard's lock. A list thus has one plan at
// most, and find, which cannot tell an outdated plan without the lock,
// finds the current one.
func (ps *loadsPlans) add(p *loadsPlan) {
	for i := range ps.slots {
		if old := ps.slots[i].Load(); old != nil && slices.Equal(old.ids, p.ids) {
			ps.slots[i].Store(p)
			return
		}
	}
	ps.slots[ps.next].Store(p)
	ps.next = (ps.next + 1) % len(ps.slots)
}

// idHash is an FNV-1a hash over manager ids.
type idHash uint64

func newIDHash() idHash { return 14695981039346656037 }

func (h *idHash) add(m bd.ManagerID) {
	*h = (*h ^ idHash(m)) * 1099511628211
}
