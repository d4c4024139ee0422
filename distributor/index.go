package distributor

import (
	"sync"
	"time"

	"github.com/google/btree"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/strategy"
)

// A large pool whose strategy is [strategy.Ordered] keeps an index: its
// managers with room, sorted in the strategy's order. A decision then reads
// the fresh loads of only the first indexHead managers who are not away
// (and of the customer's last manager), and the strategy chooses among
// them — as it would over the whole pool, by the Ordered contract — so the
// cost of a decision hardly grows with the pool.
//
// The index is a guide, never the truth: the store is. Loads it shows may
// be stale (another process assigned or closed meanwhile), so a decision
// reads the head's loads from the store and corrects the index with them;
// the store's atomic reservation keeps capacity whatever the index said;
// and a dialog is only ever put in the queue after a read of every
// manager's load (a decision whose head is full, or whose reservations all
// failed, reads the whole pool), so a stale index never leaves a dialog
// waiting beside a free slot. This process's own assignments update the
// index at once; the whole pool is read again every indexRefresh, which
// brings in other processes' changes and closed dialogs.
const (
	// indexMin is the smallest pool that gets an index. Below it a
	// decision that reads every manager's load is cheaper than keeping
	// the index in order as loads change (BenchmarkCycle: the two cost
	// the same between 100 and 300 managers), and it lists every
	// candidate in the trace.
	indexMin = 256
	// indexHead is how many managers a decision over an index reads.
	indexHead = 8
	// indexRefresh is how old an index may get before a decision reads
	// the whole pool again.
	indexRefresh = time.Second
)

// index holds a pool's managers with room in a strategy's order.
type index struct {
	mu     sync.Mutex
	tree   *btree.BTreeG[strategy.Candidate] // managers with room, in order
	known  map[bd.ManagerID]strategy.Candidate
	filled time.Time // real time of the last read of the whole pool; zero: none yet
}

func newIndex(order func(a, b strategy.Candidate) int, size int) *index {
	return &index{
		tree:  btree.NewG(32, func(a, b strategy.Candidate) bool { return order(a, b) < 0 }),
		known: make(map[bd.ManagerID]strategy.Candidate, size),
	}
}

// fresh reports whether the index was filled from a read of the whole pool
// less than indexRefresh ago.
func (x *index) fresh() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return !x.filled.IsZero() && time.Since(x.filled) < indexRefresh
}

// fill sets every manager of the pool from a read of all their loads.
func (x *index) fill(ids []bd.ManagerID, caps, ranks []int, loads []store.Load) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range loads {
		x.set(strategy.Candidate{Manager: ids[i], Open: loads[i].Open, Capacity: caps[i], LastAssignedAt: loads[i].LastAssignedAt, Rank: ranks[i]})
	}
	x.filled = time.Now()
}

// update sets managers from fresh reads of their loads.
func (x *index) update(cs []strategy.Candidate) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range cs {
		x.set(c)
	}
}

// set records c, with x.mu held; only a change touches the tree.
func (x *index) set(c strategy.Candidate) {
	old, ok := x.known[c.Manager]
	if ok && old.Open == c.Open && old.Capacity == c.Capacity && old.LastAssignedAt.Equal(c.LastAssignedAt) {
		return
	}
	if ok && old.Open < old.Capacity {
		x.tree.Delete(old)
	}
	x.known[c.Manager] = c
	if c.Open < c.Capacity {
		x.tree.ReplaceOrInsert(c)
	}
}

// assigned records that manager m took one more dialog at at.
func (x *index) assigned(m bd.ManagerID, at time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if c, ok := x.known[m]; ok {
		c.Open++
		c.LastAssignedAt = at
		x.set(c)
	}
}

// head appends to dst the first n managers with room in the order for whom
// skip is false.
func (x *index) head(n int, skip func(bd.ManagerID) bool, dst []bd.ManagerID) []bd.ManagerID {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.tree.Ascend(func(c strategy.Candidate) bool {
		if !skip(c.Manager) {
			dst = append(dst, c.Manager)
		}
		return len(dst) < n
	})
	return dst
}

// released records that manager m holds one dialog fewer.
func (x *index) released(m bd.ManagerID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if c, ok := x.known[m]; ok && c.Open > 0 {
		c.Open--
		x.set(c)
	}
}

// released records in every index of the snapshot that r, when a manager,
// holds one dialog fewer: a closed, released or moved dialog.
func (s *snapshot) released(r bd.Responsible) {
	m, ok := r.Manager()
	if !ok {
		return
	}
	for _, p := range s.all {
		if p.index != nil {
			p.index.released(m)
		}
	}
}
