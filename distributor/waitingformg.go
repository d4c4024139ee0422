package distributor

import (
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// refusedHold is how long a dialog MG refused counts as waiting for MG
// rather than for a free manager (account.refusedWaits), unless it leaves the
// queue sooner here: longer than the retry it waits for, so that the entry
// of a dialog another process assigned meanwhile does not linger.
const refusedHold = 30 * time.Second

// dialogSince is a set of waiting dialogs, each with since when. An
// account keeps two, of dialogs that wait for MG rather than for a manager
// with room: those this process put back in the queue because MG refused
// or paused their assignment, and those a drain here reserved that MG has
// not answered yet. A new dialog that finds a manager free does not join
// the queue behind them, as it does behind dialogs waiting for room (the
// next free slot is theirs): otherwise one refusal would send every new
// dialog through the queue, and the drain's reservations in flight would
// keep it from emptying.
type dialogSince struct {
	mu sync.Mutex
	at map[bd.DialogID]time.Time
}

// add notes that dialog id waits for MG since now.
func (r *dialogSince) add(id bd.DialogID, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = make(map[bd.DialogID]time.Time)
	}
	r.at[id] = now
}

// remove notes that dialog id left the queue.
func (r *dialogSince) remove(id bd.DialogID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.at, id)
}

// count returns how many dialogs wait for MG as of now, forgetting those
// noted refusedHold ago or longer.
func (r *dialogSince) count(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, at := range r.at {
		if now.Sub(at) >= refusedHold {
			delete(r.at, id)
		}
	}
	return len(r.at)
}
