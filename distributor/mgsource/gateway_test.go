package mgsource_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
)

// assignerFunc is an Assigner that cannot read dialog state.
type assignerFunc func() error

func (f assignerFunc) Assign(context.Context, bd.AccountID, bd.DialogID, bd.Responsible) error {
	return f()
}

// stateful is an Assigner that can read dialog state.
type stateful struct {
	assign error
	open   bool
	check  error
	checks int
}

func (s *stateful) Assign(context.Context, bd.AccountID, bd.DialogID, bd.Responsible) error {
	return s.assign
}

func (s *stateful) DialogOpen(context.Context, bd.AccountID, bd.DialogID) (bool, error) {
	s.checks++
	return s.open, s.check
}

func apiErr(status int, msg string) error {
	return fmt.Errorf("assign: %w", &mg.APIError{Method: "PATCH", Path: "/dialogs/1/assign", Status: status, Errors: []string{msg}})
}

func TestGatewayDecidesFromDialogState(t *testing.T) {
	down := errors.New("connection refused")
	tests := []struct {
		name    string
		assign  error
		open    bool
		check   error
		checked bool
		gone    bool
	}{
		{"ok", nil, true, nil, false, false},
		{"closed, other wording", apiErr(400, "Диалог уже завершён"), false, nil, true, true},
		{"closed, no text", apiErr(422, ""), false, nil, true, true},
		{"not latest, other wording", apiErr(400, "cannot assign"), false, nil, true, true},
		{"not found", apiErr(404, "dialog #1 not found"), false, nil, true, true},
		{"user not found, dialog open", apiErr(404, "user #7 not found"), true, nil, true, false},
		{"user inactive, dialog open", apiErr(400, "user #7 is not active"), true, nil, true, false},
		{"closed wording, dialog open", apiErr(400, "dialog is closed"), true, nil, true, false},
		{"refused, state unreadable", apiErr(400, "dialog is closed"), false, down, true, false},
		{"rate limited", apiErr(429, "too many requests"), false, nil, false, false},
		{"server error", apiErr(502, "bad gateway"), false, nil, false, false},
		{"network error", fmt.Errorf("mg: PATCH /dialogs/1/assign: %w", io.ErrUnexpectedEOF), false, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &stateful{assign: tt.assign, open: tt.open, check: tt.check}
			err := mgsource.Gateway{MG: s}.Assign(context.Background(), "a", 1, bd.ManagerOf(2))
			if got := errors.Is(err, distributor.ErrDialogGone); got != tt.gone {
				t.Fatalf("errors.Is(%v, ErrDialogGone) = %v, want %v", err, got, tt.gone)
			}
			if (s.checks > 0) != tt.checked {
				t.Fatalf("state read %d times, want read %v", s.checks, tt.checked)
			}
			if tt.assign != nil && !errors.Is(err, tt.assign) {
				t.Fatalf("MG's error is lost: %v", err)
			}
			if tt.check != nil && !errors.Is(err, tt.check) {
				t.Fatalf("the state error is lost: %v", err)
			}
			if tt.assign == nil && err != nil {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// Without a DialogChecker the Gateway falls back on MG's error classes.
func TestGatewayWithoutStateUsesErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		gone bool
	}{
		{"ok", nil, false},
		{"not found", fmt.Errorf("assign: %w", mg.ErrNotFound), true},
		{"not latest", fmt.Errorf("assign: %w", mg.ErrDialogNotLatest), true},
		{"closed", fmt.Errorf("assign: %w", mg.ErrDialogClosed), true},
		{"404 API error", apiErr(404, "dialog #1 not found"), true},
		{"other 400", apiErr(400, "something else"), false},
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
	_, err := mgsource.Gateway{MG: assignerFunc(func() error { return nil })}.DialogOpen(context.Background(), "a", 1)
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("DialogOpen without state: %v, want ErrUnsupported", err)
	}
}

// reworded is an *mg.Client whose assignment refusals carry a text of its
// own, as MG may word them any way it likes.
type reworded struct{ *mg.Client }

func (r reworded) Assign(ctx context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error {
	err := r.Client.Assign(ctx, account, dialog, to)
	var e *mg.APIError
	if errors.As(err, &e) && e.Status >= 400 && e.Status < 500 {
		return &mg.APIError{Method: e.Method, Path: e.Path, Status: e.Status, Errors: []string{"Операция недоступна"}}
	}
	return err
}

func TestGatewayAgainstSandbox(t *testing.T) {
	m := newMG(t)
	c := newClient(t, m)
	ctx := testCtx(t)
	ch := channel(t, m, "telegram", "TG")
	ann := m.AddManager(sandbox.MGUser{FirstName: "Ann", Online: true})
	gone := m.AddManager(sandbox.MGUser{FirstName: "Gone", Inactive: true})
	open := customer(t, m, ch, "open", "hi")
	closed := customer(t, m, ch, "closed", "hi")
	old := customer(t, m, ch, "old", "hi")
	for _, d := range []bd.DialogID{closed.Dialog, old.Dialog} {
		if err := m.CloseDialog(d); err != nil {
			t.Fatal(err)
		}
	}
	newer := customer(t, m, ch, "old", "again")

	gateways := map[string]mgsource.Gateway{
		"client":   {MG: c},
		"reworded": {MG: reworded{c}},
	}
	tests := []struct {
		name   string
		dialog bd.DialogID
		to     bd.Responsible
		fails  bool
		gone   bool
		open   bool
	}{
		{"closed dialog", closed.Dialog, bd.ManagerOf(ann), true, true, false},
		{"superseded dialog", old.Dialog, bd.ManagerOf(ann), true, true, false},
		{"unknown dialog", 99999, bd.ManagerOf(ann), true, true, false},
		{"inactive manager", open.Dialog, bd.ManagerOf(gone), true, false, true},
		{"unknown manager", open.Dialog, bd.ManagerOf(4242), true, false, true},
		{"assigned", newer.Dialog, bd.ManagerOf(ann), false, false, true},
	}
	for gname, g := range gateways {
		for _, tt := range tests {
			t.Run(gname+"/"+tt.name, func(t *testing.T) {
				err := g.Assign(ctx, "shop", tt.dialog, tt.to)
				if (err != nil) != tt.fails {
					t.Fatalf("Assign = %v, want failure %v", err, tt.fails)
				}
				if got := errors.Is(err, distributor.ErrDialogGone); got != tt.gone {
					t.Fatalf("errors.Is(%v, ErrDialogGone) = %v, want %v", err, got, tt.gone)
				}
				var apiErr *mg.APIError
				if tt.fails && !errors.As(err, &apiErr) {
					t.Fatalf("MG's answer is lost: %v", err)
				}
				open, err := g.DialogOpen(ctx, "shop", tt.dialog)
				if err != nil || open != tt.open {
					t.Fatalf("DialogOpen = %v, %v; want %v", open, err, tt.open)
				}
			})
		}
	}
	if r, _ := m.Responsible(newer.Dialog); r != bd.ManagerOf(ann) {
		t.Fatalf("responsible = %v", r)
	}
}

// holding is an Assigner whose calls fail with an unknown outcome and
// that can read who holds the dialog.
type holding struct {
	assign error
	holder bd.Responsible
	read   error
	reads  int
}

func (h *holding) Assign(context.Context, bd.AccountID, bd.DialogID, bd.Responsible) error {
	return h.assign
}

func (h *holding) DialogResponsible(ctx context.Context, _ bd.AccountID, _ bd.DialogID) (bd.Responsible, error) {
	h.reads++
	if err := ctx.Err(); err != nil {
		return bd.Responsible{}, err
	}
	return h.holder, h.read
}

// A call cut short by its caller's deadline is still checked: what MG did
// decides what happens next.
func TestGatewayChecksAfterTheCallersDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := &holding{assign: fmt.Errorf("mg: PATCH /dialogs/1/assign: %w", context.Canceled), holder: bd.ManagerOf(2)}
	if err := (mgsource.Gateway{MG: h}).Assign(ctx, "a", 1, bd.ManagerOf(2)); err != nil {
		t.Fatalf("Assign = %v; MG holds the dialog for the manager", err)
	}
}

func TestGatewayLearnsWhetherAnUnknownOutcomeApplied(t *testing.T) {
	ambiguous := fmt.Errorf("%w: %w", mg.ErrAmbiguous, apiErr(502, "bad gateway"))
	down := errors.New("connection refused")
	to := bd.ManagerOf(2)
	tests := []struct {
		name   string
		assign error
		holder bd.Responsible
		read   error
		reads  int
		fails  bool
	}{
		{"applied", ambiguous, to, nil, 1, false},
		{"not applied", ambiguous, bd.Responsible{}, nil, 1, true},
		{"held by another", ambiguous, bd.ManagerOf(3), nil, 1, true},
		{"held by a bot", ambiguous, bd.BotOf(2), nil, 1, true},
		{"holder unreadable", ambiguous, to, down, 1, true},
		{"server error after retries", apiErr(502, "bad gateway"), to, nil, 1, false},
		{"server error, not applied", apiErr(500, "internal server error"), bd.Responsible{}, nil, 1, true},
		{"no answer", fmt.Errorf("mg: PATCH /dialogs/1/assign: %w", io.ErrUnexpectedEOF), to, nil, 1, false},
		{"refused", apiErr(400, "user is not active"), to, nil, 0, true},
		{"rate limited", apiErr(429, "too many requests"), to, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &holding{assign: tt.assign, holder: tt.holder, read: tt.read}
			err := mgsource.Gateway{MG: h}.Assign(context.Background(), "a", 1, to)
			if (err != nil) != tt.fails {
				t.Fatalf("Assign = %v, want failure %v", err, tt.fails)
			}
			if h.reads != tt.reads {
				t.Fatalf("holder read %d times, want %d", h.reads, tt.reads)
			}
			if err != nil && !errors.Is(err, tt.assign) {
				t.Fatalf("MG's error is lost: %v", err)
			}
			if tt.read != nil && !errors.Is(err, tt.read) {
				t.Fatalf("the read's failure is lost: %v", err)
			}
		})
	}
}

// MG assigns the dialog and its answer is lost: the gateway finds the
// dialog with the manager and reports the assignment done.
func TestGatewayAppliedAssignmentAgainstSandbox(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("dropped=%v", drop), func(t *testing.T) {
			m := newMG(t)
			c := newClient(t, m)
			ctx := testCtx(t)
			ch := channel(t, m, "telegram", "TG")
			ann := m.AddManager(sandbox.MGUser{FirstName: "Ann", Online: true})
			cu := customer(t, m, ch, "c", "hi")
			// Every attempt of the client's (retries included) is applied
			// and its answer lost.
			if err := m.SetFaults(sandbox.MGFaults{ErrAfterApplyNext: 10, DropAfterApply: drop,
				Match: func(method, path string) bool { return method == "PATCH" }}); err != nil {
				t.Fatal(err)
			}
			if err := (mgsource.Gateway{MG: c}).Assign(ctx, "shop", cu.Dialog, bd.ManagerOf(ann)); err != nil {
				t.Fatalf("Assign = %v; MG applied it", err)
			}
			if r, _ := m.Responsible(cu.Dialog); r != bd.ManagerOf(ann) {
				t.Fatalf("responsible = %v", r)
			}
		})
	}
}
