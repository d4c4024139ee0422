package memory_test

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	bd "github.com/botdistributor/botdistributor"

	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
	"github.com/botdistributor/botdistributor/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memory.New() })
}

// TestLoadsModel checks Loads against a plain model through a random mix of
// assignments and roster lists that repeat (so Loads plans are made, used
// and outdated) or change in place.
func TestLoadsModel(t *testing.T) {
	ctx := t.Context()
	const acc = bd.AccountID("model")
	s := memory.New()
	rng := rand.New(rand.NewPCG(1, 2))
	open := make(map[bd.ManagerID]int)
	last := make(map[bd.ManagerID]time.Time)
	resp := make(map[bd.DialogID]bd.ManagerID)
	lists := [][]bd.ManagerID{
		{1, 2, 3},
		{5, 4, 3, 2, 1, 40},
		{7, 7, 8},
		{},
		{40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50},
	}
	for step := range 5000 {
		d := bd.DialogID(1 + rng.IntN(200))
		m := bd.ManagerID(1 + rng.IntN(50))
		when := time.Unix(int64(step), 0)
		switch rng.IntN(4) {
		case 0:
			if prev, err := s.Release(ctx, acc, d); err == nil {
				pm, _ := prev.Manager()
				open[pm]--
				delete(resp, d)
			}
		case 1:
			list := lists[rng.IntN(len(lists))]
			if len(list) > 0 && rng.IntN(10) == 0 {
				// The caller reuses its slice with new contents.
				list[rng.IntN(len(list))] = m
			}
			ls, err := s.Loads(ctx, acc, list, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) != len(list) {
				t.Fatalf("step %d: Loads(%v) returned %d loads", step, list, len(ls))
			}
			for i, l := range ls {
				want := store.Load{Manager: list[i], Open: open[list[i]], LastAssignedAt: last[list[i]]}
				if l != want {
					t.Fatalf("step %d: Loads(%v)[%d] = %+v, want %+v", step, list, i, l, want)
				}
			}
		default:
			err := s.Assign(ctx, store.Assignment{Account: acc, Dialog: d, To: bd.ManagerOf(m), Capacity: 4, At: when})
			_, taken := resp[d]
			switch {
			case taken:
				if !errors.Is(err, store.ErrAssigned) {
					t.Fatalf("step %d: Assign of a taken dialog: %v", step, err)
				}
			case open[m] >= 4:
				if !errors.Is(err, store.ErrCapacity) {
					t.Fatalf("step %d: Assign to a full manager: %v", step, err)
				}
			case err != nil:
				t.Fatalf("step %d: Assign: %v", step, err)
			default:
				open[m]++
				last[m] = when
				resp[d] = m
			}
		}
	}
}

// TestReplyOtherSituations covers claims of situations the root package does
// not define, which the store keeps apart from the built-in ones.
func TestReplyOtherSituations(t *testing.T) {
	ctx := t.Context()
	s := memory.New()
	const acc = bd.AccountID("replies")
	custom := bd.Situation("survey_sent")
	claim := func(sit bd.Situation, want bool) {
		t.Helper()
		got, err := s.ClaimReply(ctx, acc, 1, sit)
		if err != nil || got != want {
			t.Fatalf("ClaimReply(1, %s) = %t, %v; want %t", sit, got, err, want)
		}
	}
	claim(custom, true)
	claim(custom, false)
	claim(bd.DialogReceived, true)
	if err := s.ReleaseReply(ctx, acc, 1, custom); err != nil {
		t.Fatal(err)
	}
	claim(bd.DialogReceived, false)
	claim(custom, true)
	if err := s.ReleaseReply(ctx, acc, 1, bd.DialogReceived); err != nil {
		t.Fatal(err)
	}
	claim(custom, false)
	claim(bd.DialogReceived, true)
	if _, err := s.ClaimReply(ctx, acc, 1, ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("ClaimReply with an empty situation: %v, want ErrInvalid", err)
	}
}

func TestZeroValue(t *testing.T) {
	ctx := t.Context()
	var s memory.Store
	if err := s.Assign(ctx, store.Assignment{Account: "a", Dialog: 1, To: bd.ManagerOf(1), Capacity: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAccount(ctx, bd.Account{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Account(ctx, "a"); err != nil {
		t.Fatal(err)
	}
}
