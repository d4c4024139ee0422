package demo

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Print writes the summary as a short table.
func (s Summary) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nsummary of %s of customers writing (store %s, account %s)\n", s.Duration, s.Store, s.Account)
	fmt.Fprintf(tw, "  dialogs opened\t%d\n", s.Opened)
	fmt.Fprintf(tw, "  assigned\t%d (from the queue: %d)\n", s.Assigned, s.FromQueue)
	for _, r := range s.PerResponsible {
		if r.Capacity > 0 {
			fmt.Fprintf(tw, "    %s\t%d (peak %d of %d open)\n", r.Name, r.Assigned, r.Peak, r.Capacity)
		} else {
			fmt.Fprintf(tw, "    %s\t%d\n", r.Name, r.Assigned)
		}
	}
	fmt.Fprintf(tw, "  queued\t%d (still waiting: %d)\n", s.Queued, s.Waiting)
	fmt.Fprintf(tw, "  reassigned\t%d\n", s.Reassigned)
	fmt.Fprintf(tw, "  replies sent\t%d\n", s.Replies)
	fmt.Fprintf(tw, "  dialogs closed\t%d\n", s.Closed)
	errs := fmt.Sprint(s.Errors)
	if len(s.ErrorOps) > 0 {
		var parts []string
		for _, op := range slices.Sorted(maps.Keys(s.ErrorOps)) {
			parts = append(parts, fmt.Sprintf("%s %d", op, s.ErrorOps[op]))
		}
		errs += " (" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintf(tw, "  errors\t%s\n", errs)
	fmt.Fprintf(tw, "  capacity violations\t%d (MG state checked %d times)\n", s.CapacityViolations, s.Checks)
	fmt.Fprintf(tw, "  open dialogs neither assigned nor waiting\t%d\n", s.Unaccounted)
	fmt.Fprintf(tw, "  store and MG disagree on\t%d dialogs\n", s.Mismatches)
	fmt.Fprintf(tw, "  time to assign (distributor)\tp50 %s, p99 %s\n", round(s.WaitP50), round(s.WaitP99))
	fmt.Fprintf(tw, "  time until MG shows the responsible\tp50 %s, p99 %s\n", round(s.SeenP50), round(s.SeenP99))
	tw.Flush()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d
}
