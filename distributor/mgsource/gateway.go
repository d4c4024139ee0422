package mgsource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/mg"
)

// Assigner is what Gateway wraps: the account's *mg.Client, which also
// implements [DialogChecker], used to learn from MG's state why an
// assignment was refused.
type Assigner interface {
	Assign(ctx context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error
}

// DialogChecker is implemented by an [Assigner] that can read a dialog's
// state from MG (*mg.Client does, with GET /dialogs?id= and
// the chat's last_dialog). DialogOpen reports whether the dialog exists,
// is open and is the latest dialog of its chat, i.e. whether it can still
// be assigned; an error means MG could not be asked. It is safe for
// concurrent use and may block on I/O.
type DialogChecker interface {
	DialogOpen(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bool, error)
}

// ResponsibleReader is implemented by an [Assigner] that can read who
// holds a dialog in MG (*mg.Client does, with GET /dialogs?id=); zero for
// nobody. It is safe for concurrent use and may block on I/O.
type ResponsibleReader interface {
	DialogResponsible(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bd.Responsible, error)
}

// Gateway adapts an MG client to distributor.Gateway.
//
// When an assignment's outcome is unknown — it failed with a server error
// (5xx) or without an answer (a network error, a timeout), possibly after
// the client's own retries, so MG may have applied one of its attempts —
// and MG implements [ResponsibleReader], Gateway reads who holds the
// dialog: when it is to, MG applied the assignment and Assign returns nil,
// so that the dialog is not queued and then given to someone else while
// MG has it with to. Otherwise, or when the read fails, the error is
// returned (with the read's failure joined).
//
// When MG refuses an assignment — any 4xx answer but 429, a not-found
// included — Gateway asks MG for the dialog's state (when MG implements
// [DialogChecker]) and decides from it, not from the wording of the
// refusal, which the Bot API does not fix: a dialog that is gone (not
// found, closed, or no longer the latest of its chat) gives an error
// wrapping distributor.ErrDialogGone, so the distributor closes it instead
// of letting it wait; a dialog still open gives MG's refusal unchanged, so
// the distributor puts the dialog back in the queue. When the state cannot
// be read, the refusal is returned unchanged too (with the reason joined):
// keeping a dialog by mistake only delays it, dropping one loses it.
// Throttling (429) is returned as it is, without a state check.
//
// An Assigner that is not a DialogChecker is judged by MG's error classes
// (not found, dialog not the latest, dialog closed), the old way.
type Gateway struct {
	MG Assigner
}

var _ distributor.Gateway = Gateway{}

// Assign assigns through MG; see [Gateway] for the errors.
func (g Gateway) Assign(ctx context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error {
	err := g.MG.Assign(ctx, account, dialog, to)
	if err == nil {
		return nil
	}
	if r, ok := g.MG.(ResponsibleReader); ok && unknownOutcome(err) {
		return applied(ctx, r, account, dialog, to, err)
	}
	c, ok := g.MG.(DialogChecker)
	if !ok {
		if errors.Is(err, mg.ErrNotFound) || errors.Is(err, mg.ErrDialogNotLatest) || errors.Is(err, mg.ErrDialogClosed) {
			return fmt.Errorf("%w: %w", distributor.ErrDialogGone, err)
		}
		return err
	}
	if !refusal(err) {
		return err
	}
	open, cerr := c.DialogOpen(ctx, account, dialog)
	switch {
	case cerr != nil:
		return errors.Join(err, fmt.Errorf("mgsource: reading the state of dialog %d after the refusal: %w", dialog, cerr))
	case !open:
		return fmt.Errorf("%w: MG reports dialog %d missing, closed or not the latest of its chat: %w", distributor.ErrDialogGone, dialog, err)
	}
	return err
}

// applied learns from MG whether an assignment whose call failed with err
// (its outcome unknown) was applied: nil when MG has the dialog with to.
func applied(ctx context.Context, r ResponsibleReader, account bd.AccountID, dialog bd.DialogID, to bd.Responsible, err error) error {
	// Asked even when ctx ended (a deadline that cut the call short):
	// what MG did decides what the distributor may do next.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateReadTimeout)
	defer cancel()
	now, rerr := r.DialogResponsible(rctx, account, dialog)
	switch {
	case rerr != nil:
		return errors.Join(err, fmt.Errorf("mgsource: reading who holds dialog %d after the failed assignment: %w", dialog, rerr))
	case now == to:
		return nil
	}
	return err
}

// DialogOpen reports whether the dialog can still be assigned: it exists,
// is open and is the latest dialog of its chat. It asks the wrapped MG
// client, and fails with an error wrapping errors.ErrUnsupported when that
// is not a [DialogChecker].
func (g Gateway) DialogOpen(ctx context.Context, account bd.AccountID, dialog bd.DialogID) (bool, error) {
	c, ok := g.MG.(DialogChecker)
	if !ok {
		return false, fmt.Errorf("mgsource: %T cannot read dialog state: %w", g.MG, errors.ErrUnsupported)
	}
	return c.DialogOpen(ctx, account, dialog)
}

// stateReadTimeout bounds the read of who holds a dialog after an
// assignment whose outcome is unknown.
const stateReadTimeout = 10 * time.Second

// unknownOutcome reports whether MG may have applied the call that failed
// with err: it was not answered with a 4xx status (a refusal or
// throttling, which MG answers without applying the call).
func unknownOutcome(err error) bool {
	switch {
	case errors.Is(err, mg.ErrAmbiguous):
		return true
	case errors.Is(err, mg.ErrNotFound), errors.Is(err, mg.ErrDialogNotLatest), errors.Is(err, mg.ErrDialogClosed):
		return false
	}
	var e *mg.APIError
	return !errors.As(err, &e) || e.Status >= 500
}

// refusal reports whether err is MG refusing the call: a 4xx answer other
// than 429.
func refusal(err error) bool {
	var e *mg.APIError
	return errors.As(err, &e) && e.Status >= 400 && e.Status <= 499 && e.Status != http.StatusTooManyRequests
}
