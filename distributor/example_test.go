package distributor_test

import (
	"context"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/store/memory"
	"github.com/botdistributor/botdistributor/strategy"
)

func Example() {
	ctx := context.Background()
	st := memory.New()
	_ = st.SaveAccount(ctx, bd.Account{ID: "shop", Settings: bd.Settings{
		Active:          true,
		Managers:        []bd.ManagerID{1, 2},
		DefaultCapacity: 1,
		Availability:    bd.OnlineOnly,
		Reassign:        bd.ReassignOff,
		Replies: map[bd.Situation]string{
			bd.DialogReceived: "Hi!", bd.ManagerAssigned: "{{.Manager}} is here.",
			bd.NoManagerOnline: "Nobody online.", bd.AllManagersBusy: "Please wait.",
			bd.OutsideWorkingHours: "Closed.",
		},
	}})
	mg := &distributortest.Gateway{} // in production: the mg package's client
	d, err := distributor.New("shop", st, mg, distributor.WithStrategy(strategy.NewLeastLoaded()))
	defer d.Close()
	if err != nil {
		panic(err)
	}
	_ = d.SetRoster(ctx, []bd.Manager{
		{ID: 1, FirstName: "Anna", Online: true, Active: true},
		{ID: 2, FirstName: "Boris", Online: true, Active: true},
	})
	for id := bd.DialogID(1); id <= 3; id++ {
		_ = d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: "shop", Dialog: bd.Dialog{ID: id, Chat: bd.ChatID(id)}})
		_ = d.Flush(ctx) // wait for the workers; a service would not
	}
	for _, c := range mg.Calls() {
		fmt.Printf("dialog %d -> %s\n", c.Dialog, c.To)
	}
	n, _ := st.QueueLen(ctx, "shop")
	fmt.Println("waiting:", n)
	// Output:
	// dialog 1 -> manager 1
	// dialog 2 -> manager 2
	// waiting: 1
}

func ExampleDistributor_Decide() {
	ctx := context.Background()
	st := memory.New()
	s := bd.Settings{
		Active:          true,
		Managers:        []bd.ManagerID{1, 2, 3},
		DefaultCapacity: 2,
		Availability:    bd.StatusAndOnline,
		Reassign:        bd.ReassignOff,
		Channels:        map[bd.ChannelID]bd.ChannelRule{5: {Target: bd.ToManagers, Managers: []bd.ManagerID{2, 3}}},
	}
	_ = st.SaveAccount(ctx, bd.Account{ID: "shop", Settings: s})
	d, _ := distributor.New("shop", st, &distributortest.Gateway{})
	defer d.Close()
	_ = d.SetRoster(ctx, []bd.Manager{
		{ID: 1, Status: bd.StatusFree, Online: true, Active: true},
		{ID: 2, Status: bd.StatusBusy, Online: true, Active: true},
		{ID: 3, Status: bd.StatusFree, Online: true, Active: true},
	})
	tr, _ := d.Decide(ctx, bd.Dialog{Account: "shop", ID: 10, Channel: 5})
	fmt.Println(tr.Outcome, tr.Responsible)
	for _, r := range tr.Removed {
		fmt.Println("removed", r.Manager, r.Filter)
	}
	// Output:
	// assigned manager 3
	// removed 1 not_in_channel
	// removed 2 status
}
