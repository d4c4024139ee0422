package demo

import (
	"context"
	"slices"
	"sync"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/sandbox"
)

// monitor checks MessageGateway's state against the managers' capacities
// after every change of the sandbox MG: no manager may ever be responsible
// for more open dialogs than their capacity.
type monitor struct {
	mg       *sandbox.MG
	capacity map[bd.ManagerID]int

	mu         sync.Mutex
	checks     int
	violations int
	peak       map[bd.ManagerID]int
	offenders  map[bd.ManagerID]int // most open dialogs seen above capacity
	seen       map[bd.DialogID]bool // dialogs seen with a responsible
	latencies  []time.Duration      // from opening to the first responsible in MG
}

func newMonitor(m *sandbox.MG, capacity map[bd.ManagerID]int) *monitor {
	return &monitor{mg: m, capacity: capacity, peak: make(map[bd.ManagerID]int),
		offenders: make(map[bd.ManagerID]int), seen: make(map[bd.DialogID]bool)}
}

// run checks after every change until ctx ends.
func (m *monitor) run(ctx context.Context) {
	for {
		changed := m.mg.Changed()
		m.check()
		select {
		case <-ctx.Done():
			m.check()
			return
		case <-changed:
		}
	}
}

// check counts each manager's open dialogs in MG once, and notes how long
// each dialog took to get its first responsible.
func (m *monitor) check() {
	now := time.Now()
	dialogs := m.mg.Dialogs()
	open := make(map[bd.ManagerID]int)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range dialogs {
		if !d.Active {
			continue
		}
		if id, ok := d.Responsible.Manager(); ok {
			open[id]++
		}
		if !d.Responsible.IsZero() && !m.seen[d.ID] {
			m.seen[d.ID] = true
			m.latencies = append(m.latencies, now.Sub(d.OpenedAt))
		}
	}
	m.checks++
	for id, n := range open {
		m.peak[id] = max(m.peak[id], n)
		if c, ok := m.capacity[id]; ok && n > c {
			m.violations++
			m.offenders[id] = max(m.offenders[id], n)
		}
	}
}

// toResponsible returns the p50 and p99 of the time from a dialog's
// opening to MG showing its first responsible.
func (m *monitor) toResponsible() (p50, p99 time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.latencies) == 0 {
		return 0, 0
	}
	l := slices.Clone(m.latencies)
	slices.Sort(l)
	return quantile(l, 0.50), quantile(l, 0.99)
}

func (m *monitor) result() (checks, violations int, peak map[bd.ManagerID]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	peak = make(map[bd.ManagerID]int, len(m.peak))
	for k, v := range m.peak {
		peak[k] = v
	}
	return m.checks, m.violations, peak
}
