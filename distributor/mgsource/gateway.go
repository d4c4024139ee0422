package mgsource

import (
	"context"
	"errors"
	"fmt"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/mg"
)

// Assigner is what Gateway wraps: an *mg.Client, or mg.Accounts for several
// accounts.
type Assigner interface {
	Assign(ctx context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error
}

// Gateway adapts an MG client to distributor.Gateway. It marks the MG
// answers that mean a dialog can never be assigned again — not found,
// closed, not the latest dialog of its chat — with distributor.ErrDialogGone, so the
// distributor closes the dialog instead of letting it wait.
type Gateway struct {
	MG Assigner
}

var _ distributor.Gateway = Gateway{}

// Assign assigns through MG.
func (g Gateway) Assign(ctx context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error {
	err := g.MG.Assign(ctx, account, dialog, to)
	if errors.Is(err, mg.ErrNotFound) || errors.Is(err, mg.ErrDialogNotLatest) || errors.Is(err, mg.ErrDialogClosed) {
		return fmt.Errorf("%w: %w", distributor.ErrDialogGone, err)
	}
	return err
}
