// Command customstrategy wires a Distributor with a custom strategy, in
// memory, and prints who got which dialog and why.
//
// The strategy sends a dialog to the senior manager on duty while they hold
// fewer than two dialogs, and otherwise lets least-loaded decide: a small
// policy no built-in has, written in a dozen lines.
package main

import (
	"context"
	"fmt"
	"os"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
	"github.com/botdistributor/botdistributor/strategy"
)

// seniorFirst prefers the senior manager while they have room for easy
// work, then falls back to another strategy.
type seniorFirst struct {
	senior bd.ManagerID
	limit  int
	next   strategy.Strategy
}

func (s seniorFirst) Pick(ctx context.Context, req strategy.Request) (strategy.Choice, error) {
	for _, c := range req.Candidates {
		if c.Manager == s.senior && c.Open < s.limit {
			return strategy.Choice{Manager: c.Manager, Reason: fmt.Sprintf("senior manager on duty (%d open)", c.Open)}, nil
		}
	}
	return s.next.Pick(ctx, req)
}

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "customstrategy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	const account bd.AccountID = "demo-shop"
	st := memory.New()
	settings := bd.Settings{
		Active:          true,
		Managers:        []bd.ManagerID{1, 2, 3},
		DefaultCapacity: 3,
		Strategy:        "senior_first",
		Availability:    bd.StatusAndOnline,
		Reassign:        bd.ReassignOff,
		Replies: map[bd.Situation]string{
			bd.DialogReceived:      "Hello {{.Customer}}!",
			bd.ManagerAssigned:     "{{.Manager}} will answer you.",
			bd.NoManagerOnline:     "Nobody is online; we will answer soon.",
			bd.AllManagersBusy:     "All managers are busy; you are in the queue.",
			bd.OutsideWorkingHours: "We are closed now.",
		},
		DefaultRule: bd.ChannelRule{Target: bd.ToManagers},
	}
	if err := st.SaveAccount(ctx, bd.Account{ID: account, Domain: "https://demo-shop.example"}); err != nil {
		return err
	}

	registry := strategy.NewRegistry()
	if err := registry.Register("senior_first", seniorFirst{senior: 1, limit: 2, next: strategy.NewLeastLoaded()}); err != nil {
		return err
	}
	mg := &distributortest.Gateway{} // a real service passes its MG client here
	// One worker: the dialogs are distributed one after another, in the
	// order they opened, so the output is the same on every run. A service
	// keeps the default, working many dialogs at once.
	d, err := distributor.New(account, st, mg, distributor.WithStrategies(registry), distributor.WithWork(store.WorkOptions{Workers: 1}))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.SaveSettings(ctx, settings); err != nil {
		return err
	}
	if err := d.SetRoster(ctx, []bd.Manager{
		{ID: 1, FirstName: "Olga", LastName: "Senior", Status: bd.StatusFree, Online: true, Active: true},
		{ID: 2, FirstName: "Ivan", Status: bd.StatusFree, Online: true, Active: true},
		{ID: 3, FirstName: "Maria", Status: bd.StatusFree, Online: true, Active: true},
	}); err != nil {
		return err
	}

	for id := 1; id <= 10; id++ {
		dl := bd.Dialog{ID: bd.DialogID(id), Chat: bd.ChatID(100 + id), Channel: 1, Customer: bd.Customer{ID: bd.CustomerID(id), FirstName: fmt.Sprintf("Customer %d", id)}}
		if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: account, Dialog: dl}); err != nil {
			return err
		}
	}
	if err := d.Flush(ctx); err != nil { // wait for the workers to distribute them
		return err
	}
	traces, err := d.Recent(ctx)
	if err != nil {
		return err
	}
	for i := len(traces) - 1; i >= 0; i-- {
		t := traces[i]
		switch t.Outcome {
		case distributor.OutcomeAssigned:
			fmt.Printf("dialog %2d -> %s: %s\n", t.Dialog, t.Responsible, t.Choice.Reason)
		default:
			fmt.Printf("dialog %2d -> %s (%s)\n", t.Dialog, t.Outcome, t.Situation)
		}
	}
	waiting, err := st.QueueLen(ctx, account)
	if err != nil {
		return err
	}
	fmt.Printf("%d dialogs assigned, %d waiting\n", len(mg.Calls()), waiting)
	return nil
}
