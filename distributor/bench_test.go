package distributor_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/reply"
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

func newBenchDistributor(b *testing.B, managers int) *distributor.Distributor {
	b.Helper()
	ctx := context.Background()
	st := memory.New()
	ids := managerIDs(managers)
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Settings: settingsFor(ids, 5)}); err != nil {
		b.Fatal(err)
	}
	replier, err := reply.NewTemplate(discardSender{})
	if err != nil {
		b.Fatal(err)
	}
	d, err := distributor.New(st, discardGateway{}, distributor.WithReplier(replier))
	if err != nil {
		b.Fatal(err)
	}
	if err := d.SetRoster(ctx, acct, onlineManagers(ids)); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkCycle measures a full cycle: a dialog opens (claim, decision over
// every manager, atomic reservation, MG assignment, two templated replies,
// a recorded trace) and closes (release, queue check). The memory store
// keeps every event claim and closed dialog (nothing prunes them here), as
// a busy service does within its retention window.
func BenchmarkCycle(b *testing.B) {
	for _, managers := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("managers=%d", managers), func(b *testing.B) {
			d := newBenchDistributor(b, managers)
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
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
		})
	}
}

// BenchmarkCycleParallel runs cycles from every available core at once.
func BenchmarkCycleParallel(b *testing.B) {
	d := newBenchDistributor(b, 100)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			dl := dialog(int(next.Add(1)), 1)
			if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dl}); err != nil {
				b.Error(err)
				return
			}
			if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogClosed, Account: acct, Dialog: bd.Dialog{ID: dl.ID}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cycles/s")
}
