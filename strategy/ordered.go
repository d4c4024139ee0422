package strategy

// Ordered is implemented by a strategy whose choice follows an order of the
// candidates: the distributor can then keep a large pool's managers in an
// index sorted by that order, updated as their loads change, and pass Pick
// only the few that come first instead of every manager (gRPC's balancer
// builds its picker once per state change the same way). A strategy that
// does not implement it gets every candidate, as before; an Ordered
// strategy must still choose correctly over any candidates it is given.
//
// Order returns the order, or nil when the strategy follows none (a wrapper
// around a strategy that is not Ordered returns nil). The order must be a
// strict total order over candidates of distinct managers (compare returns
// 0 only for the same manager), must depend on nothing but the two
// candidates, and must agree with Pick: given the first k candidates of any
// request in this order (k ≥ 1), plus the customer's last manager's
// candidate when that manager is a candidate, Pick chooses as it would over
// all of them. The conformance suite (strategytest) checks both.
type Ordered interface {
	Strategy
	Order() func(a, b Candidate) int
}

// compareRoundRobin is RoundRobin's order: never assigned first, then the
// oldest last assignment by the wall clock, then the lower manager id.
func compareRoundRobin(a, b Candidate) int {
	if c := compareIdle(a, b); c != 0 {
		return c
	}
	return compareIDs(a, b)
}

// compareLeastLoaded is LeastLoaded's order: fewest open dialogs first, then
// as RoundRobin.
func compareLeastLoaded(a, b Candidate) int {
	switch {
	case a.Open < b.Open:
		return -1
	case a.Open > b.Open:
		return 1
	}
	return compareRoundRobin(a, b)
}

// compareIdle orders by the time since the last assignment, longest first:
// never assigned before any time, then older wall-clock times first (a
// monotonic clock reading is ignored, as a shared store keeps none).
func compareIdle(a, b Candidate) int {
	an, bn := a.LastAssignedAt.IsZero(), b.LastAssignedAt.IsZero()
	switch {
	case an && bn:
		return 0
	case an:
		return -1
	case bn:
		return 1
	}
	as, bs := a.LastAssignedAt.Unix(), b.LastAssignedAt.Unix()
	switch {
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	an2, bn2 := a.LastAssignedAt.Nanosecond(), b.LastAssignedAt.Nanosecond()
	switch {
	case an2 < bn2:
		return -1
	case an2 > bn2:
		return 1
	}
	return 0
}

func compareIDs(a, b Candidate) int {
	switch {
	case a.Manager < b.Manager:
		return -1
	case a.Manager > b.Manager:
		return 1
	}
	return 0
}
