package distributor_test

import (
	"context"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/reply/replytest"
	"github.com/botdistributor/botdistributor/store/memory"
)

// applyThenHang is an MG that takes an assignment and then gives no
// answer until the caller stops waiting, as when a job's deadline or a
// stop cuts the call short after MG applied it.
type applyThenHang struct {
	distributortest.Gateway
	took chan struct{}
}

func (g *applyThenHang) Assign(ctx context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error {
	if err := g.Gateway.Assign(ctx, account, dialog, to); err != nil {
		return err
	}
	close(g.took)
	<-ctx.Done()
	return ctx.Err()
}

// An assignment cut short after MG took it keeps its reservation: the
// retry finishes it with the same manager, and nobody else gets the
// dialog meanwhile.
func TestAssignmentCutShortIsFinishedByTheRetry(t *testing.T) {
	ids := managerIDs(2)
	s := settingsFor(ids, 1)
	st := memory.New()
	ctx := context.Background()
	if err := st.SaveAccount(ctx, bd.Account{ID: acct, Domain: "https://shop.example", Settings: s}); err != nil {
		t.Fatal(err)
	}
	hang := &applyThenHang{took: make(chan struct{})}
	first, err := distributor.New(acct, st, hang)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.SetRoster(ctx, onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	if err := first.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: acct, Dialog: dialog(1, 1)}); err != nil {
		t.Fatal(err)
	}
	<-hang.took
	mgHolds := hang.Responsible(1)
	if err := first.Close(); err != nil { // the call is cut short
		t.Fatal(err)
	}
	if r, err := st.Responsible(ctx, acct, 1); err != nil || r != mgHolds {
		t.Fatalf("after the cut: the store holds the dialog for %v (%v), MG for %v; want the reservation kept", r, err, mgHolds)
	}

	gw := &distributortest.Gateway{}
	second, err := distributor.New(acct, st, gw, distributor.WithReplier(&replytest.Recorder{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	if err := second.SetRoster(ctx, onlineManagers(ids)); err != nil {
		t.Fatal(err)
	}
	flushDistributor(t, second, "the retry did not finish")
	if r, _ := st.Responsible(ctx, acct, 1); r != mgHolds {
		t.Fatalf("the store holds the dialog for %v, MG for %v", r, mgHolds)
	}
	for _, c := range gw.Calls() {
		if c.Dialog == 1 && c.To != mgHolds {
			t.Fatalf("dialog 1 given to %v while MG held it for %v", c.To, mgHolds)
		}
	}
	if n, _ := st.QueueLen(ctx, acct); n != 0 {
		t.Fatalf("%d dialogs wait, want none", n)
	}
}
