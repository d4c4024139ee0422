package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// Open a store on a SQLite file, then reserve a manager's slots: the third
// dialog finds the manager at capacity.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "sqlstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "bot.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close() // the caller owns db
	s, err := sqlstore.Open(ctx, db, sqlstore.SQLite)
	if err != nil {
		log.Fatal(err)
	}

	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for d := bd.DialogID(1); d <= 3; d++ {
		err := s.Assign(ctx, store.Assignment{
			Account: "shop", Dialog: d, Customer: bd.CustomerID(100 + d),
			To: bd.ManagerOf(7), Capacity: 2, At: now,
		})
		switch {
		case errors.Is(err, store.ErrCapacity):
			fmt.Printf("dialog %d: manager 7 is at capacity\n", d)
		case err != nil:
			log.Fatal(err)
		default:
			fmt.Printf("dialog %d: assigned to manager 7\n", d)
		}
	}
	loads, err := s.Loads(ctx, "shop", []bd.ManagerID{7}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("manager 7 holds %d dialogs\n", loads[0].Open)
	// Output:
	// dialog 1: assigned to manager 7
	// dialog 2: assigned to manager 7
	// dialog 3: manager 7 is at capacity
	// manager 7 holds 2 dialogs
}
