package memory

import (
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
)

// TestPlanReplacedWhenOutdated covers a list whose plan the table's growth
// outdated: its new plan takes the old one's slot, so that find, which
// reads the slots without the lock, returns the plan in use and the
// shard's loads go through it again.
func TestPlanReplacedWhenOutdated(t *testing.T) {
	sh := newShard()
	list := []bd.ManagerID{1, 2, 3}
	out := make([]store.Load, len(list))
	read := func() *loadsPlan {
		p := sh.plans.find(list)
		sh.loads(list, p, out)
		return p
	}
	read()
	read() // asked for twice: planned
	if p := sh.plans.find(list); p == nil || p.table != len(sh.managers) {
		t.Fatalf("after two reads: plan %+v for a table of %d rows, want a current one", p, len(sh.managers))
	}
	sh.manager(9) // a manager outside the list: the plan is outdated
	read()
	read() // planned again
	if p := sh.plans.find(list); p == nil || p.table != len(sh.managers) {
		t.Fatalf("after the table grew: find returned plan %+v for a table of %d rows, want the current one", p, len(sh.managers))
	}
	n := 0
	for i := range sh.plans.slots {
		if sh.plans.slots[i].Load() != nil {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d plans kept for one list, want 1", n)
	}
}
