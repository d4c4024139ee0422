package memory_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/memory"
)

// A manager of capacity 1 takes one dialog; the second is refused with
// store.ErrCapacity until the first is released.
func Example() {
	ctx := context.Background()
	s := memory.New()
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

	first := store.Assignment{Account: "shop", Dialog: 101, Customer: 5, To: bd.ManagerOf(7), Capacity: 1, At: now}
	fmt.Println("first:", s.Assign(ctx, first))

	second := store.Assignment{Account: "shop", Dialog: 102, Customer: 6, To: bd.ManagerOf(7), Capacity: 1, At: now}
	err := s.Assign(ctx, second)
	fmt.Println("second at capacity:", errors.Is(err, store.ErrCapacity))

	loads, _ := s.Loads(ctx, "shop", []bd.ManagerID{7, 8}, nil)
	for _, l := range loads {
		fmt.Printf("manager %d: %d open\n", l.Manager, l.Open)
	}

	prev, _ := s.Release(ctx, "shop", 101)
	fmt.Println("released from", prev)
	fmt.Println("second after release:", s.Assign(ctx, second))
	// Output:
	// first: <nil>
	// second at capacity: true
	// manager 7: 1 open
	// manager 8: 0 open
	// released from manager 7
	// second after release: <nil>
}
