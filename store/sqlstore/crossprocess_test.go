package sqlstore_test

import (
	"bufio"
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// The cross-process race: xpProcesses copies of the test binary share one
// PostgreSQL schema. Each walks the same shuffled list of xpDialogs dialogs
// with xpGoroutines goroutines, so the processes reach the same dialog at
// about the same time: each step assigns the dialog to a random one of
// xpManagers managers of capacity xpCapacity, and releases the dialog
// xpLag steps back. xpLag exceeds the managers' total capacity, so slots
// run out and the capacity rule is fought over as well. A dialog a process
// was given is moved on to the next manager when its id is a multiple of
// xpMoveEvery, and every dialog whose id is a multiple of xpCloseEvery is
// closed as soon as it was tried, while the other processes still try to
// assign it.
const (
	xpProcesses  = 3
	xpGoroutines = 4
	xpManagers   = 20
	xpCapacity   = 10
	xpDialogs    = 5000
	xpLag        = 250
	xpMoveEvery  = 3
	xpCloseEvery = 5
	xpAccount    = bd.AccountID("cross-process")

	// xpChildEnv marks a child process and holds its number; xpDSNEnv
	// holds the DSN of the shared schema.
	xpChildEnv = "BOTDISTRIBUTOR_SQLSTORE_XP_CHILD"
	xpDSNEnv   = "BOTDISTRIBUTOR_SQLSTORE_XP_DSN"
)

func TestPostgresCrossProcess(t *testing.T) {
	if os.Getenv(xpChildEnv) != "" {
		crossProcessChild(t)
		return
	}
	// Not t.Parallel: the processes' connections beside the invariant
	// hammer's 64 would leave PostgreSQL (100 by default) none to spare.
	dsn := newPostgresSchema(t)

	// Start the children; each opens the store (racing the migrations
	// too), says READY and waits for GO on its standard input.
	type child struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		lines  chan string
		seen   []string // the lines read so far
		stderr bytes.Buffer
	}
	children := make([]*child, xpProcesses)
	for i := range children {
		c := &child{lines: make(chan string, 16)}
		c.cmd = exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestPostgresCrossProcess$", "-test.count=1")
		c.cmd.Env = append(os.Environ(), xpChildEnv+"="+strconv.Itoa(i+1), xpDSNEnv+"="+dsn)
		c.cmd.Stderr = &c.stderr
		var err error
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := c.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.cmd.Start(); err != nil {
			t.Fatalf("starting child %d: %v", i+1, err)
		}
		go func() {
			defer close(c.lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				c.lines <- sc.Text()
			}
		}()
		children[i] = c
	}
	// waitFor returns the first line of c that starts with prefix, or the
	// child's whole output when it ends without one.
	waitFor := func(i int, c *child, prefix string) string {
		for line := range c.lines {
			c.seen = append(c.seen, line)
			if strings.HasPrefix(line, prefix) {
				return line
			}
		}
		err := c.cmd.Wait()
		t.Fatalf("child %d ended (%v) without %q; output:\n%s\n%s", i+1, err, prefix, strings.Join(c.seen, "\n"), c.stderr.String())
		return ""
	}
	for i, c := range children {
		waitFor(i, c, "READY")
	}
	for _, c := range children {
		if _, err := io.WriteString(c.stdin, "GO\n"); err != nil {
			t.Fatal(err)
		}
	}
	var assigned, released int
	for i, c := range children {
		line := waitFor(i, c, "RESULT ")
		var a, r int
		if _, err := fmt.Sscanf(line, "RESULT assigned=%d released=%d", &a, &r); err != nil {
			t.Fatalf("child %d: cannot read %q: %v", i+1, line, err)
		}
		for line := range c.lines {
			c.seen = append(c.seen, line)
		}
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child %d failed: %v; output:\n%s\n%s", i+1, err, strings.Join(c.seen, "\n"), c.stderr.String())
		}
		t.Logf("child %d: %d assigned, %d released", i+1, a, r)
		assigned += a
		released += r
	}

	// The store must agree with what the processes were told.
	db := openDB(t, "pgx", dsn)
	s := open(t, db, sqlstore.Postgres)
	ctx := t.Context()
	managers := make([]bd.ManagerID, xpManagers)
	for i := range managers {
		managers[i] = bd.ManagerID(i + 1)
	}
	ls, err := s.Loads(ctx, xpAccount, managers, nil)
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	holder := make(map[bd.DialogID]bd.ManagerID)
	for _, l := range ls {
		if l.Open > xpCapacity {
			t.Errorf("manager %d holds %d open dialogs, capacity %d", l.Manager, l.Open, xpCapacity)
		}
		ds, err := s.DialogsOf(ctx, xpAccount, l.Manager)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != l.Open {
			t.Errorf("manager %d: load %d, holds %d dialogs", l.Manager, l.Open, len(ds))
		}
		for _, d := range ds {
			if other, ok := holder[d]; ok {
				t.Errorf("dialog %d is held by managers %d and %d", d, other, l.Manager)
			}
			holder[d] = l.Manager
		}
		held += len(ds)
	}
	var rows, distinct int
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT dialog) FROM bd_responsibles WHERE account = $1`,
		string(xpAccount)).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != held || distinct != rows {
		t.Errorf("bd_responsibles has %d rows for %d distinct dialogs; the managers hold %d", rows, distinct, held)
	}
	var closed, closedHeld int
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(r.dialog) FROM bd_closed c
		LEFT JOIN bd_responsibles r ON r.account = c.account AND r.dialog = c.dialog
		WHERE c.account = $1`, string(xpAccount)).Scan(&closed, &closedHeld); err != nil {
		t.Fatal(err)
	}
	if closed != xpDialogs/xpCloseEvery || closedHeld != 0 {
		t.Errorf("%d dialogs closed, %d of them held; want %d closed, none held", closed, closedHeld, xpDialogs/xpCloseEvery)
	}
	if assigned-released != held {
		t.Errorf("the processes were told of %d assignments and %d releases, so %d dialogs should be held; the store holds %d",
			assigned, released, assigned-released, held)
	}
	t.Logf("%d processes: %d assigned, %d released, %d held at the end", xpProcesses, assigned, released, held)
}

// crossProcessChild is one process of TestPostgresCrossProcess.
func crossProcessChild(t *testing.T) {
	ctx := t.Context()
	db, err := sql.Open("pgx", os.Getenv(xpDSNEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(xpGoroutines + 2)
	s, err := sqlstore.Open(ctx, db, sqlstore.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("READY")
	if line, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil || line != "GO\n" {
		t.Fatalf("waiting for GO: read %q, %v", line, err)
	}

	// Every process shuffles the dialogs alike, so they collide.
	perm := rand.New(rand.NewPCG(1, 2)).Perm(xpDialogs)
	managers := make([]bd.ManagerID, xpManagers)
	for i := range managers {
		managers[i] = bd.ManagerID(i + 1)
	}
	process, _ := strconv.Atoi(os.Getenv(xpChildEnv))
	var assigned, released atomic.Int64
	var wg sync.WaitGroup
	for g := range xpGoroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(process), uint64(g)))
			var buf []store.Load
			for i := g; i < len(perm); i += xpGoroutines {
				d := bd.DialogID(perm[i] + 1)
				m := managers[rng.IntN(xpManagers)]
				err := s.Assign(ctx, store.Assignment{Account: xpAccount, Dialog: d, Customer: bd.CustomerID(d), To: bd.ManagerOf(m), Capacity: xpCapacity, At: at0})
				switch {
				case err == nil:
					assigned.Add(1)
				case errors.Is(err, store.ErrCapacity), errors.Is(err, store.ErrAssigned), errors.Is(err, store.ErrClosed):
				default:
					t.Errorf("Assign(%d to manager %d): %v", d, m, err)
					return
				}
				if err == nil && d%xpMoveEvery == 0 {
					to := m%xpManagers + 1
					err := s.Assign(ctx, store.Assignment{Account: xpAccount, Dialog: d, Customer: bd.CustomerID(d), From: bd.ManagerOf(m), To: bd.ManagerOf(to), Capacity: xpCapacity, At: at0})
					if err != nil && !errors.Is(err, store.ErrCapacity) && !errors.Is(err, store.ErrAssigned) && !errors.Is(err, store.ErrClosed) {
						t.Errorf("moving %d from manager %d to %d: %v", d, m, to, err)
						return
					}
				}
				if d%xpCloseEvery == 0 {
					prev, err := s.Close(ctx, xpAccount, d, at0)
					if err != nil {
						t.Errorf("Close(%d): %v", d, err)
						return
					}
					if !prev.IsZero() {
						released.Add(1)
					}
				}
				if i >= xpLag {
					_, err := s.Release(ctx, xpAccount, bd.DialogID(perm[i-xpLag]+1))
					switch {
					case err == nil:
						released.Add(1)
					case errors.Is(err, store.ErrNotFound):
					default:
						t.Errorf("Release(%d): %v", perm[i-xpLag]+1, err)
						return
					}
				}
				if i%64 == g {
					var err error
					buf, err = s.Loads(ctx, xpAccount, managers, buf)
					if err != nil {
						t.Errorf("Loads: %v", err)
						return
					}
					for _, l := range buf {
						if l.Open > xpCapacity || l.Open < 0 {
							t.Errorf("manager %d holds %d open dialogs, capacity %d", l.Manager, l.Open, xpCapacity)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("RESULT assigned=%d released=%d\n", assigned.Load(), released.Load())
}
