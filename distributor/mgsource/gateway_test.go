package mgsource_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/mg"
)

type assignerFunc func() error

func (f assignerFunc) Assign(context.Context, bd.AccountID, bd.DialogID, bd.Responsible) error {
	return f()
}

func TestGatewayMarksGoneDialogs(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		gone bool
	}{
		{"ok", nil, false},
		{"not found", fmt.Errorf("assign: %w", mg.ErrNotFound), true},
		{"not latest", fmt.Errorf("assign: %w", mg.ErrDialogNotLatest), true},
		{"closed", fmt.Errorf("assign: %w", mg.ErrDialogClosed), true},
		{"unavailable", fmt.Errorf("assign: %w", mg.ErrUnavailable), false},
		{"rate limited", fmt.Errorf("assign: %w", mg.ErrRateLimited), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mgsource.Gateway{MG: assignerFunc(func() error { return tc.err })}.Assign(context.Background(), "a", 1, bd.ManagerOf(2))
			if got := errors.Is(err, distributor.ErrDialogGone); got != tc.gone {
				t.Fatalf("errors.Is(%v, ErrDialogGone) = %v, want %v", err, got, tc.gone)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("the MG error is lost: %v", err)
			}
		})
	}
}
