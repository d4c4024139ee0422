package distributor_test

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// Several OS processes, each with its own Distributor and connection pool,
// share one PostgreSQL schema. Every process receives every event, as every
// bot process receives MG's event stream, and acts on it; the store decides
// every race. Each process's gateway writes one line per assignment it made
// in MG to its standard output, so the parent knows MG's state exactly.
const (
	xpManagers = 12
	xpCapacity = 10
	// xpDialogs is ten times the slots (12 × 10): most dialogs wait, and
	// every close (one dialog in three) races the others' drains for the
	// slot it frees.
	xpDialogs = 1200
	xpAccount = bd.AccountID("cross-process")

	xpRoleEnv  = "BOTDISTRIBUTOR_XP_ROLE" // "run" or "resync"
	xpDSNEnv   = "BOTDISTRIBUTOR_XP_DSN"
	xpSeedEnv  = "BOTDISTRIBUTOR_XP_SEED"
	xpTruthEnv = "BOTDISTRIBUTOR_XP_TRUTH" // file with MG's open dialogs, for resync
)

const postgresEnv = "BOTDISTRIBUTOR_TEST_POSTGRES"

// xpClosed reports whether the workload closes dialog i.
func xpClosed(i int) bool { return i%3 == 0 }

func TestPostgresCrossProcessDistributors(t *testing.T) {
	if role := os.Getenv(xpRoleEnv); role != "" {
		xpChild(t, role)
		return
	}
	// Its processes and schema are its own: it runs beside the package's
	// other parallel tests. TestPostgresCrossProcessKill stays out of
	// their turn, as the five processes of both tests together would hold
	// too many of PostgreSQL's connections (100 by default) on a database
	// other packages' tests use too.
	t.Parallel()
	dsn := xpSchema(t)
	parent := xpOpen(t, dsn)
	xpSetup(t, parent)

	var mg xpMG
	children := make([]*xpProc, 3)
	for i := range children {
		children[i] = xpStart(t, dsn, "run", i+1, "", &mg)
	}
	for _, c := range children {
		c.wait(t, false)
	}
	xpCheck(t, parent, &mg)
}

// TestPostgresCrossProcessKill kills one of two processes with SIGKILL in the
// middle of the load; after a new process starts and resyncs with MG's
// state, the store is consistent and no open dialog is lost.
func TestPostgresCrossProcessKill(t *testing.T) {
	if os.Getenv(xpRoleEnv) != "" {
		return // children run through TestPostgresCrossProcessDistributors
	}
	dsn := xpSchema(t)
	parent := xpOpen(t, dsn)
	xpSetup(t, parent)

	var mg xpMG
	victim := xpStart(t, dsn, "run", 1, "", &mg)
	survivor := xpStart(t, dsn, "run", 2, "", &mg)
	victim.killAfter(t, xpDialogs/5)
	victim.wait(t, true)
	survivor.wait(t, false)

	t.Logf("before the restart: %d open dialogs neither held nor waiting (claimed by the killed process)", xpStranded(t, parent))
	truth := writeTruth(t, mg.openDialogs())
	restarted := xpStart(t, dsn, "resync", 3, truth, &mg)
	restarted.wait(t, false)
	xpCheck(t, parent, &mg)
}

// xpMG is MG's state as the processes' gateway lines tell it.
type xpMG struct {
	mu       sync.Mutex
	assigned map[bd.DialogID][]bd.ManagerID
}

func (m *xpMG) add(d bd.DialogID, to bd.ManagerID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.assigned == nil {
		m.assigned = make(map[bd.DialogID][]bd.ManagerID)
	}
	m.assigned[d] = append(m.assigned[d], to)
}

// openDialogs lists the dialogs open in MG with their responsible.
func (m *xpMG) openDialogs() []distributor.OpenDialog {
	m.mu.Lock()
	defer m.mu.Unlock()
	var open []distributor.OpenDialog
	for i := 1; i <= xpDialogs; i++ {
		if xpClosed(i) {
			continue
		}
		o := distributor.OpenDialog{Dialog: xpDialog(i)}
		if ms := m.assigned[bd.DialogID(i)]; len(ms) > 0 {
			o.Responsible = bd.ManagerOf(ms[len(ms)-1])
		}
		open = append(open, o)
	}
	return open
}

func writeTruth(t *testing.T, open []distributor.OpenDialog) string {
	b, err := json.Marshal(open)
	if err != nil {
		t.Fatal(err)
	}
	p := t.TempDir() + "/truth.json"
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type xpProc struct {
	n      int
	cmd    *exec.Cmd
	lines  chan string
	done   chan struct{}
	mu     sync.Mutex
	count  int
	stderr strings.Builder
}

func xpStart(t *testing.T, dsn, role string, n int, truth string, mg *xpMG) *xpProc {
	t.Helper()
	p := &xpProc{n: n, lines: make(chan string, 64), done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestPostgresCrossProcessDistributors$", "-test.count=1")
	p.cmd.Env = append(os.Environ(), xpRoleEnv+"="+role, xpDSNEnv+"="+dsn, xpSeedEnv+"="+strconv.Itoa(n), xpTruthEnv+"="+truth)
	p.cmd.Stderr = &syncWriter{b: &p.stderr, mu: &p.mu}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if d, m, ok := parseAssigned(line); ok {
				mg.add(d, m)
			} else if strings.HasPrefix(line, "handled ") {
				p.mu.Lock()
				p.count++
				p.mu.Unlock()
			} else {
				p.mu.Lock() // the child's test output: why it failed
				p.stderr.WriteString(line + "\n")
				p.mu.Unlock()
			}
		}
	}()
	return p
}

type syncWriter struct {
	b  *strings.Builder
	mu *sync.Mutex
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func parseAssigned(line string) (bd.DialogID, bd.ManagerID, bool) {
	var d, m int64
	if _, err := fmt.Sscanf(line, "assigned %d %d", &d, &m); err != nil {
		return 0, 0, false
	}
	return bd.DialogID(d), bd.ManagerID(m), true
}

// killAfter sends SIGKILL once the process has handled n dialogs.
func (p *xpProc) killAfter(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		c := p.count
		p.mu.Unlock()
		if c >= n {
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			return
		}
		select {
		case <-p.done:
			t.Fatalf("process %d ended before it could be killed:\n%s", p.n, p.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("process %d handled fewer than %d dialogs in time", p.n, n)
}

func (p *xpProc) wait(t *testing.T, killed bool) {
	t.Helper()
	<-p.done
	err := p.cmd.Wait()
	if killed {
		if err == nil {
			t.Fatalf("process %d should have been killed: got nil, want an error", p.n)
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		t.Fatalf("process %d failed: %v\n%s", p.n, err, p.stderr.String())
	}
}

// xpLeaseTTL is how long a child's lease membership outlives its last
// round: the jobs a killed child was running go back to the live ones
// about this long (plus the store's grace for a job's attempt) after the
// kill, where River's own rescue of stuck jobs would wait 20 to 50 s. The
// survivor is still busy with its own events by then.
const xpLeaseTTL = 3 * time.Second

// xpMember keeps the child's membership in the store's leases, as a
// deployment's fleet does: a round now, then one every quarter of the TTL
// until the returned function is called, which stops the rounds and
// leaves. Each round also forgets the members that lapsed (a killed
// child) and gives back the jobs their workers were running. The rounds
// share the child's connections with its workers, as a fleet's do: the
// workers' transactions hold one for milliseconds, far less than the TTL.
func xpMember(t *testing.T, st *sqlstore.Store, member string) (leave func()) {
	t.Helper()
	ctx := context.Background()
	round := func() error {
		_, err := st.Lease(ctx, store.LeaseRound{Member: member, Accounts: []bd.AccountID{xpAccount}, TTL: xpLeaseTTL})
		return err
	}
	if err := round(); err != nil {
		t.Fatal(err)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		heartbeat := time.NewTicker(xpLeaseTTL / 4)
		defer heartbeat.Stop()
		for {
			select {
			case <-stop:
				return
			case <-heartbeat.C:
				// A failed round is tried again at the next beat, as a
				// fleet does; the membership lapses only if they keep
				// failing, which delays the killed child's jobs, never
				// loses them.
				if err := round(); err != nil {
					t.Logf("lease round of %s: %v", member, err)
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-stopped
		if err := st.Leave(ctx, member); err != nil {
			t.Errorf("leave as %s: %v", member, err)
		}
	}
}

// xpChild is the body of a child process.
func xpChild(t *testing.T, role string) {
	ctx := context.Background()
	st := xpOpen(t, os.Getenv(xpDSNEnv))
	// The workers are named after the child's lease member, so that a
	// round of a live child finds out when this one was killed.
	member := fmt.Sprintf("xp-%s-%s-%d", role, os.Getenv(xpSeedEnv), os.Getpid())
	leave := xpMember(t, st, member)
	defer leave()
	d, err := distributor.New(xpAccount, st, xpGateway{}, distributor.WithWork(store.WorkOptions{Member: member}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The process ends once every job of the account is done: its own and
	// those of the other processes (and of a killed one, once a lease
	// round of a live child finds its member lapsed).
	defer func() {
		flush, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		if err := d.Flush(flush); err != nil {
			t.Fatal(err)
		}
	}()
	if err := d.SetRoster(ctx, onlineManagers(managerIDs(xpManagers))); err != nil {
		t.Fatal(err)
	}
	if role == "resync" {
		b, err := os.ReadFile(os.Getenv(xpTruthEnv))
		if err != nil {
			t.Fatal(err)
		}
		var open []distributor.OpenDialog
		if err := json.Unmarshal(b, &open); err != nil {
			t.Fatal(err)
		}
		if err := d.Resync(ctx, open); err != nil {
			t.Fatal(err)
		}
		return
	}
	seed, _ := strconv.Atoi(os.Getenv(xpSeedEnv))
	order := rand.New(rand.NewPCG(uint64(seed), 7)).Perm(xpDialogs)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				dl := xpDialog(i)
				if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogOpened, Account: xpAccount, Dialog: dl}); err != nil {
					t.Errorf("open %d: %v", i, err)
				}
				if xpClosed(i) {
					if err := d.Handle(ctx, distributor.Event{Kind: distributor.DialogClosed, Account: xpAccount, Dialog: bd.Dialog{ID: dl.ID}}); err != nil {
						t.Errorf("close %d: %v", i, err)
					}
				}
				stdoutMu.Lock()
				_, _ = io.WriteString(os.Stdout, "handled "+strconv.Itoa(i)+"\n")
				stdoutMu.Unlock()
			}
		}()
	}
	for _, i := range order {
		work <- i + 1
	}
	close(work)
	wg.Wait()
}

// xpGateway is MG for a child: it reports every assignment on stdout.
type xpGateway struct{}

var stdoutMu sync.Mutex

func (xpGateway) Assign(_ context.Context, _ bd.AccountID, d bd.DialogID, to bd.Responsible) error {
	m, _ := to.Manager()
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	_, err := io.WriteString(os.Stdout, fmt.Sprintf("assigned %d %d\n", d, m))
	return err
}

func xpDialog(i int) bd.Dialog {
	return bd.Dialog{Account: xpAccount, ID: bd.DialogID(i), Chat: bd.ChatID(i), Channel: 1,
		Customer: bd.Customer{ID: bd.CustomerID(i)}, OpenedAt: t0.Add(time.Duration(i) * time.Millisecond)}
}

func xpSetup(t *testing.T, st store.Store) {
	s := settingsFor(managerIDs(xpManagers), xpCapacity)
	if err := st.SaveAccount(context.Background(), bd.Account{ID: xpAccount, Settings: s}); err != nil {
		t.Fatal(err)
	}
}

// xpCheck verifies the invariants on the shared store and MG's state.
func xpCheck(t *testing.T, st store.Store, mg *xpMG) {
	ctx := context.Background()
	ids := managerIDs(xpManagers)
	loads, err := st.Loads(ctx, xpAccount, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	holder := map[bd.DialogID]bd.ManagerID{}
	held := 0
	for i, m := range ids {
		ds, err := st.DialogsOf(ctx, xpAccount, m)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(ds); got > xpCapacity {
			t.Fatalf("manager %d over capacity: got %v, want <= %v", m, got, xpCapacity)
		}
		if got, want := loads[i].Open, len(ds); got != want {
			t.Fatalf("load of manager %d: got %v, want %v", m, got, want)
		}
		for _, d := range ds {
			_, dup := holder[d]
			if dup {
				t.Fatalf("dialog %d held twice", d)
			}
			holder[d] = m
		}
		held += len(ds)
	}
	waiting, err := st.Waiting(ctx, xpAccount, xpDialogs)
	if err != nil {
		t.Fatal(err)
	}
	queued := map[bd.DialogID]bool{}
	for _, w := range waiting {
		queued[w.Dialog.ID] = true
	}
	mg.mu.Lock()
	defer mg.mu.Unlock()
	open := 0
	for i := 1; i <= xpDialogs; i++ {
		d := bd.DialogID(i)
		m, isHeld := holder[d]
		// A distribution retried after a crash tells MG again who holds the
		// dialog; it must never name another manager.
		if ms := slices.Compact(slices.Sorted(slices.Values(mg.assigned[d]))); len(ms) > 1 {
			t.Fatalf("dialog %d assigned in MG to different managers: %v, want one", d, mg.assigned[d])
		}
		if xpClosed(i) {
			if isHeld {
				t.Fatalf("closed dialog %d still held", d)
			}
			if queued[d] {
				t.Fatalf("closed dialog %d still waiting", d)
			}
			continue
		}
		open++
		if isHeld == queued[d] {
			t.Fatalf("open dialog %d: held=%v waiting=%v; want exactly one", d, isHeld, queued[d])
		}
		if isHeld {
			ms := mg.assigned[d]
			if len(ms) == 0 {
				t.Fatalf("dialog %d held by manager %d in the store but never assigned in MG", d, m)
			}
			if got, want := ms[len(ms)-1], m; got != want {
				t.Fatalf("dialog %d: store and MG disagree: got %v, want %v", d, got, want)
			}
		}
	}
	if got, want := held+len(waiting), open; got != want {
		t.Fatalf("held+len(waiting) = %v, want %v", got, want)
	}
	if len(waiting) > 0 {
		if held != xpManagers*xpCapacity {
			t.Fatalf("dialogs wait only when every manager is full: got %v, want %v", held, xpManagers*xpCapacity)
		}
	}
	t.Logf("%d open dialogs: %d assigned, %d waiting", open, held, len(waiting))
}

// xpStranded counts open dialogs neither held nor waiting.
func xpStranded(t *testing.T, st store.Store) int {
	ctx := context.Background()
	n := 0
	for i := 1; i <= xpDialogs; i++ {
		if xpClosed(i) {
			continue
		}
		_, err := st.Responsible(ctx, xpAccount, bd.DialogID(i))
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Responsible(%d): %v, want store.ErrNotFound", i, err)
		}
		n++
	}
	waiting, err := st.QueueLen(ctx, xpAccount)
	if err != nil {
		t.Fatal(err)
	}
	return n - waiting
}

func xpOpen(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(16) // four processes stay well within PostgreSQL's connection limit
	t.Cleanup(func() { db.Close() })
	st, err := sqlstore.Open(context.Background(), db, sqlstore.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// xpSchema creates a fresh schema, dropped when the test ends, and returns
// a DSN selecting it.
func xpSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		t.Skipf("PostgreSQL tests need %s, e.g. %s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./distributor/", postgresEnv, postgresEnv)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	_, _ = crand.Read(b)
	schema := "bd_xp_" + hex.EncodeToString(b)
	_, err = admin.Exec("CREATE SCHEMA " + schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	// The schema is dropped at the end: a commit need not wait for the
	// disk (a lost commit matters only if PostgreSQL itself crashes, which
	// no test does; every guarantee between the processes still holds).
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	return u.String()
}
