package fleet_test

import (
	"context"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/store/memory"
)

// A fleet hosting two accounts of a memory store. The build function
// gives each account a recording gateway and no stream; in production,
// fleet.MG builds MessageGateway clients and event streams.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	st := memory.New()
	for _, id := range []bd.AccountID{"shop-a", "shop-b"} {
		_ = st.SaveAccount(ctx, bd.Account{ID: id, Settings: settings(1, 2)})
	}
	gateways := map[bd.AccountID]*distributortest.Gateway{}
	f, err := fleet.New(st, fleet.WithBuild(func(_ context.Context, acc bd.Account) (fleet.Parts, error) {
		gateways[acc.ID] = &distributortest.Gateway{}
		return fleet.Parts{Gateway: gateways[acc.ID]}, nil
	}))
	if err != nil {
		panic(err)
	}
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	for _, id := range []bd.AccountID{"shop-a", "shop-b"} {
		if err := f.Ready(ctx, id); err != nil { // held here: the first lease round takes both
			panic(err)
		}
		d, _ := f.Distributor(id)
		_ = d.SetRoster(ctx, []bd.Manager{{ID: 2, Online: true, Active: true}})
		_ = d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: id, Dialog: bd.Dialog{ID: 7, Chat: 7}})
		_ = d.Flush(ctx) // the fleet's workers did the job
		fmt.Println(id, "dialog 7 ->", gateways[id].Responsible(7))
	}
	cancel()
	<-done
	// Output:
	// shop-a dialog 7 -> manager 2
	// shop-b dialog 7 -> manager 2
}
