// Package distributortest provides fakes for testing code that uses a
// distributor: a recording MessageGateway.
package distributortest

import (
	"context"
	"errors"
	"sync"

	bd "github.com/botdistributor/botdistributor"
)

// Assignment is one call to Gateway.Assign.
type Assignment struct {
	Account bd.AccountID
	Dialog  bd.DialogID
	To      bd.Responsible
}

// Gateway is a fake MessageGateway that records assignments. It satisfies
// distributor.Gateway and is safe for concurrent use. The zero value is
// ready to use.
type Gateway struct {
	mu      sync.Mutex
	calls   []Assignment
	current map[bd.DialogID]bd.Responsible
	fail    int
	failErr error
	refuse  map[bd.DialogID]error
}

// ErrInjected is the error FailNext injects when given nil.
var ErrInjected = errors.New("distributortest: injected gateway failure")

// Assign records the assignment, or fails if a failure was injected.
func (g *Gateway) Assign(_ context.Context, account bd.AccountID, dialog bd.DialogID, to bd.Responsible) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail > 0 {
		g.fail--
		return g.failErr
	}
	if err := g.refuse[dialog]; err != nil {
		return err
	}
	if g.current == nil {
		g.current = make(map[bd.DialogID]bd.Responsible)
	}
	g.current[dialog] = to
	g.calls = append(g.calls, Assignment{Account: account, Dialog: dialog, To: to})
	return nil
}

// FailNext makes the next n calls fail with err (ErrInjected when nil).
func (g *Gateway) FailNext(n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	g.mu.Lock()
	g.fail, g.failErr = n, err
	g.mu.Unlock()
}

// Refuse makes every assignment of the dialog fail with err, until
// Refuse(dialog, nil) lifts it. FailNext's failures come first.
func (g *Gateway) Refuse(dialog bd.DialogID, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		delete(g.refuse, dialog)
		return
	}
	if g.refuse == nil {
		g.refuse = make(map[bd.DialogID]error)
	}
	g.refuse[dialog] = err
}

// Calls returns every recorded call in order.
func (g *Gateway) Calls() []Assignment {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Assignment(nil), g.calls...)
}

// Responsible returns the last responsible MG was told for the dialog.
func (g *Gateway) Responsible(dialog bd.DialogID) bd.Responsible {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.current[dialog]
}
