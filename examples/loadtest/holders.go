package main

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
)

// holders follows which fleet member runs which account's stream, from
// the members' stream events (each stamped by its process with the wall
// clock, which all processes of the run share) and the harness's kills of
// worker processes. A member reports a stream's start before it starts and
// its stop once it has stopped, so the intervals it reports cover the
// stream's real run: an overlap of two members' intervals is never missed.
//
// It is safe for concurrent use.
type holders struct {
	mu     sync.Mutex
	events []streamEvent
	// pidOf is the process of each member.
	pidOf map[string]int
	kills []kill
}

// kill is a worker process killed with SIGKILL at At (Unix nanoseconds).
type kill struct {
	pid int
	at  int64
}

func newHolders() *holders { return &holders{pidOf: map[string]int{}} }

// add records a stream event of a member of process pid.
func (h *holders) add(pid int, ev streamEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pidOf[ev.Member] = pid
	h.events = append(h.events, ev)
}

// killed records that process pid was killed at t.
func (h *holders) killed(pid int, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kills = append(h.kills, kill{pid: pid, at: t.UnixNano()})
}

// holdings are the results of a replay of the events.
type holdings struct {
	// ownersMax is the most members seen running one account's stream at
	// the same time.
	ownersMax int
	// overlaps describe up to three times two members ran one stream.
	overlaps []string
	// failoverMax is the longest time from the kill of an account's holder
	// to another member starting its stream (to the end of the run for an
	// account never taken over; untaken counts those).
	failoverMax time.Duration
	failovers   int
	untaken     int
	// current maps each account to the members running its stream at the
	// end of the events, with whether they resynced since they started.
	current map[bd.AccountID]map[string]bool
}

// replay goes through the events and kills in time order up to end. At one
// instant, starts count before stops: a tie counts as an overlap.
func (h *holders) replay(end time.Time) holdings {
	h.mu.Lock()
	type step struct {
		ev   streamEvent
		kill *kill
	}
	steps := make([]step, 0, len(h.events)+len(h.kills))
	for _, ev := range h.events {
		steps = append(steps, step{ev: ev})
	}
	for i := range h.kills {
		steps = append(steps, step{kill: &h.kills[i], ev: streamEvent{At: h.kills[i].at, Kind: "kill"}})
	}
	pidOf := make(map[string]int, len(h.pidOf))
	for k, v := range h.pidOf {
		pidOf[k] = v
	}
	h.mu.Unlock()
	order := map[string]int{streamHold: 0, streamSynced: 1, "kill": 2, streamRelease: 3}
	slices.SortStableFunc(steps, func(a, b step) int {
		if c := cmp.Compare(a.ev.At, b.ev.At); c != 0 {
			return c
		}
		return cmp.Compare(order[a.ev.Kind], order[b.ev.Kind])
	})

	out := holdings{current: map[bd.AccountID]map[string]bool{}}
	dead := map[int]bool{}
	// orphaned maps an account whose holder was killed to the kill's time,
	// until another member starts its stream.
	orphaned := map[bd.AccountID]int64{}
	for _, s := range steps {
		if s.kill != nil {
			dead[s.kill.pid] = true
			for acc, ms := range out.current {
				for m := range ms {
					if pidOf[m] == s.kill.pid {
						delete(ms, m)
						if _, ok := orphaned[acc]; !ok {
							orphaned[acc] = s.kill.at
						}
					}
				}
			}
			continue
		}
		ev := s.ev
		if dead[pidOf[ev.Member]] {
			continue // reported before the kill, read after it
		}
		ms := out.current[ev.Account]
		if ms == nil {
			ms = map[string]bool{}
			out.current[ev.Account] = ms
		}
		switch ev.Kind {
		case streamHold:
			ms[ev.Member] = false
			out.ownersMax = max(out.ownersMax, len(ms))
			if len(ms) > 1 && len(out.overlaps) < 3 {
				others := make([]string, 0, len(ms)-1)
				for m := range ms {
					if m != ev.Member {
						others = append(others, m)
					}
				}
				slices.Sort(others)
				out.overlaps = append(out.overlaps, fmt.Sprintf("%s started %s's stream at %s while %v ran it",
					ev.Member, ev.Account, time.Unix(0, ev.At).Format("15:04:05.000000"), others))
			}
			if at, ok := orphaned[ev.Account]; ok {
				out.failoverMax = max(out.failoverMax, time.Duration(ev.At-at))
				out.failovers++
				delete(orphaned, ev.Account)
			}
		case streamSynced:
			if _, ok := ms[ev.Member]; ok {
				ms[ev.Member] = true
			}
		case streamRelease:
			delete(ms, ev.Member)
		}
	}
	for _, at := range orphaned {
		out.failoverMax = max(out.failoverMax, time.Duration(end.UnixNano()-at))
		out.untaken++
	}
	return out
}

// ready reports whether every account's stream runs in a member that
// resynced it since it started (the account is connected and caught up),
// and no member holds more than its share of the accounts among members:
// the members have joined and the leases are spread, so that the load
// does not start while streams move from one member to another.
func (h *holders) ready(accounts []bd.AccountID, members int) bool {
	cur := h.replay(time.Now()).current
	held := map[string]int{}
	for _, a := range accounts {
		synced := false
		for m, ok := range cur[a] {
			synced = synced || ok
			held[m]++
		}
		if !synced {
			return false
		}
	}
	share := (len(accounts) + members - 1) / max(members, 1)
	for _, n := range held {
		if n > share {
			return false
		}
	}
	return true
}
