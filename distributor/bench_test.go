package distributor_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

// discardSender is a reply.Sender that sends nowhere.
type discardSender struct{}

func (discardSender) Send(context.Context, bd.AccountID, bd.ChatID, string) error { return nil }

// discardGateway is a Gateway that accepts every assignment and keeps
// nothing, so that benchmarks measure the distributor and its store only.
type discardGateway struct{}

func (discardGateway) Assign(context.Context, bd.AccountID, bd.DialogID, bd.Responsible) error {
	return nil
}

func newBenchDistributor(b *testing.B, managers int, opts ...distributor.Option) *distributor.Distributor {
	b.Helper()
	ctx := context.Background()
	st := memory.New()
	ids := managerIDs(managers)
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, benchCapacity)}); err != nil {
		b.Fatal(err)
	}
	replier, err := reply.NewTemplate(discardSender{})
	if err != nil {
		b.Fatal(err)
	}
	d, err := distributor.New(acct, st, discardGateway{}, append([]distributor.Option{distributor.WithReplier(replier)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	if err := d.SetRoster(ctx, onlineManagers(ids)); err != nil {
		b.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return d
}

// benchCapacity is every manager's capacity in the benchmarks.
const benchCapacity = 5

// cycleBatch is how many dialogs a cycle benchmark opens before it waits
// for the workers, then closes: at most 256, and never more than the
// managers can hold, so that no dialog waits in the queue.
func cycleBatch(managers int) int { return min(256, managers*benchCapacity) }

// BenchmarkCycle measures a full cycle through the work pipeline: a dialog
// opens (claim and distribute job stored, then worked: decision over every
// manager, atomic reservation, MG assignment, two templated replies as
// jobs, a recorded trace) and closes (release, drain job). Dialogs go in
// batches of cycleBatch: opened, worked to the end, closed, worked to the
// end. The memory store keeps every event claim and closed dialog (nothing
// prunes them here), as a busy service does within its retention window.
func BenchmarkCycle(b *testing.B) {
	for _, managers := range []int{10, 100, 300, 1000, 10000} {
		b.Run(fmt.Sprintf("managers=%d", managers), func(b *testing.B) {
			runCycles(b, newBenchDistributor(b, managers), managers)
		})
	}
}

// BenchmarkCycleIndex compares a cycle decided over the manager index with
// one that reads every manager's load, around the pool size from which a
// pool gets the index.
func BenchmarkCycleIndex(b *testing.B) {
	for _, managers := range []int{100, 300, 1000} {
		for _, mode := range []struct {
			name string
			from int
		}{{"index", 0}, {"whole-pool", math.MaxInt}} {
			b.Run(fmt.Sprintf("managers=%d/%s", managers, mode.name), func(b *testing.B) {
				runCycles(b, newBenchDistributor(b, managers, distributor.WithIndexFrom(mode.from)), managers)
			})
		}
	}
}

// BenchmarkCycleOneWorker is BenchmarkCycle at 100 managers with one
// worker instead of store.DefaultWorkers: the cycle without contention on
// the store's lock. Its CPU per cycle (a -cpuprofile's samples over b.N)
// set beside BenchmarkCycle's is what the contention costs.
func BenchmarkCycleOneWorker(b *testing.B) {
	runCycles(b, newBenchDistributor(b, 100, distributor.WithWork(store.WorkOptions{Workers: 1})), 100)
}

// runCycles runs b.N cycles over d, whose pool has managers managers.
func runCycles(b *testing.B, d *distributor.Distributor, managers int) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	batch := cycleBatch(managers)
	for start := 0; start < b.N; start += batch {
		end := min(start+batch, b.N)
		for i := start; i < end; i++ {
			if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(i+1, 1)}); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		for i := start; i < end; i++ {
			if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogClosed, Account: acct, Dialog: bd.Dialog{ID: bd.DialogID(i + 1)}}); err != nil {
				b.Fatal(err)
			}
		}
		if err := d.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
}

// BenchmarkHandle measures accepting an event: what the event source waits
// for before it reads the next one. Each iteration accepts two events, a
// dialog's opening and its closing, while the workers do their jobs.
func BenchmarkHandle(b *testing.B) {
	d := newBenchDistributor(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		dl := dialog(i+1, 1)
		if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dl}); err != nil {
			b.Fatal(err)
		}
		if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogClosed, Account: acct, Dialog: bd.Dialog{ID: dl.ID}}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := d.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}
