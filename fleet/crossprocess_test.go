package fleet_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor/distributortest"
	"github.com/botdistributor/botdistributor/distributor/mgsource"
	"github.com/botdistributor/botdistributor/fleet"
	"github.com/botdistributor/botdistributor/store"
	"github.com/botdistributor/botdistributor/store/sqlstore"
)

// Cross-process leases: child processes (copies of the test binary) run
// fleets over one PostgreSQL schema and print, for each account, when
// their stream starts (after its resync) and stops. The parent starts
// one child, then a second one (rebalance on join), then SIGKILLs the
// first (takeover), and checks from the printed times that no account's
// stream ever ran in two processes at once.
const (
	xpChildEnv    = "BOTDISTRIBUTOR_FLEET_XP_CHILD"
	xpDSNEnv      = "BOTDISTRIBUTOR_FLEET_XP_DSN"
	xpAccounts    = 6
	xpTTL         = 2 * time.Second
	xpFailoverMax = 15 * time.Second
)

func TestCrossProcessLeases(t *testing.T) {
	if name := os.Getenv(xpChildEnv); name != "" {
		xpChild(t, name)
		return
	}
	dsn := os.Getenv("BOTDISTRIBUTOR_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("needs PostgreSQL: set BOTDISTRIBUTOR_TEST_POSTGRES, e.g. 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'")
	}
	dsn = xpSchema(t, dsn)
	db := xpOpen(t, dsn)
	st, err := sqlstore.Open(context.Background(), db, sqlstore.Postgres, sqlstore.WithSharedQueue())
	if err != nil {
		t.Fatal(err)
	}
	for i := range xpAccounts {
		id := bd.AccountID(fmt.Sprintf("shop-%d", i))
		if err := st.SaveAccount(context.Background(), bd.Account{ID: id, Settings: settings(1)}); err != nil {
			t.Fatal(err)
		}
	}

	lines := make(chan xpLine, 1000)
	c1 := xpStart(t, "c1", dsn, lines)
	log := &xpLog{open: map[bd.AccountID]string{}}
	log.waitFor(t, lines, 30*time.Second, "c1 holding all accounts", func() bool { return log.count("c1") == xpAccounts })
	c2 := xpStart(t, "c2", dsn, lines)
	log.waitFor(t, lines, 30*time.Second, "the accounts spread 3/3 after c2 joined", func() bool {
		return log.count("c1") == xpAccounts/2 && log.count("c2") == xpAccounts/2
	})
	held := log.heldBy("c1")
	if err := c1.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = c1.Wait()
	log.killed(t, "c1", killed)
	log.waitFor(t, lines, xpFailoverMax+10*time.Second, "c2 taking over c1's accounts", func() bool { return log.count("c2") == xpAccounts })
	for _, a := range held {
		took := log.lastStart[a].Sub(killed)
		if took > xpFailoverMax {
			t.Errorf("%s was taken over %s after its holder was killed, want at most %s", a, took, xpFailoverMax)
		}
		t.Logf("%s taken over %s after the kill", a, took.Round(time.Millisecond))
	}
	_ = c2.Process.Kill()
	_ = c2.Wait()
	if len(log.overlaps) > 0 {
		t.Fatalf("streams ran in two processes at once: %v", log.overlaps)
	}
}

type xpLine struct {
	child, what string
	account     bd.AccountID
	at          time.Time
}

// xpLog follows which child runs which account's stream.
type xpLog struct {
	open      map[bd.AccountID]string // account → the child running its stream
	lastStart map[bd.AccountID]time.Time
	overlaps  []string
}

func (l *xpLog) add(x xpLine) {
	if l.lastStart == nil {
		l.lastStart = map[bd.AccountID]time.Time{}
	}
	switch x.what {
	case "START":
		if o, ok := l.open[x.account]; ok && o != x.child {
			l.overlaps = append(l.overlaps, fmt.Sprintf("%s started %s at %s while %s ran it", x.child, x.account, x.at.Format(time.StampMicro), o))
		}
		l.open[x.account] = x.child
		l.lastStart[x.account] = x.at
	case "STOP":
		if l.open[x.account] == x.child {
			delete(l.open, x.account)
		}
	}
}

// killed ends the streams of a killed child: a line printed after the
// kill by another child starting one of them is checked against it.
func (l *xpLog) killed(t *testing.T, child string, at time.Time) {
	for a, c := range l.open {
		if c == child {
			if s, ok := l.lastStart[a]; ok && s.After(at) {
				t.Errorf("%s: a start after the kill of %s", a, child)
			}
			delete(l.open, a)
		}
	}
}

func (l *xpLog) count(child string) int {
	n := 0
	for _, c := range l.open {
		if c == child {
			n++
		}
	}
	return n
}

func (l *xpLog) heldBy(child string) []bd.AccountID {
	var out []bd.AccountID
	for a, c := range l.open {
		if c == child {
			out = append(out, a)
		}
	}
	return out
}

// waitFor reads lines until cond holds, or fails the test after max.
func (l *xpLog) waitFor(t *testing.T, lines <-chan xpLine, max time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	for !cond() {
		select {
		case x := <-lines:
			l.add(x)
		case <-deadline.C:
			t.Fatalf("no %s within %s; streams: %v", what, max, l.open)
		}
	}
}

func xpStart(t *testing.T, name, dsn string, lines chan<- xpLine) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrossProcessLeases$", "-test.count=1")
	cmd.Env = append(os.Environ(), xpChildEnv+"="+name, xpDSNEnv+"="+dsn)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || (f[0] != "START" && f[0] != "STOP") {
				continue
			}
			ns, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				continue
			}
			lines <- xpLine{child: name, what: f[0], account: bd.AccountID(f[1]), at: time.Unix(0, ns)}
		}
	}()
	return cmd
}

// xpChild runs a fleet until killed. Its streams print START after
// their resync and STOP once they ended, with the time in nanoseconds.
func xpChild(t *testing.T, name string) {
	db := xpOpen(t, os.Getenv(xpDSNEnv))
	st, err := sqlstore.Open(context.Background(), db, sqlstore.Postgres, sqlstore.WithSharedQueue())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	say := func(what string, a bd.AccountID) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf("%s %s %d\n", what, a, time.Now().UnixNano())
	}
	build := func(_ context.Context, acc bd.Account) (fleet.Parts, error) {
		return fleet.Parts{
			Gateway: &distributortest.Gateway{},
			Stream: func(tg mgsource.Target) (fleet.Stream, error) {
				return xpStream{acc: acc.ID, t: tg, say: say}, nil
			},
		}, nil
	}
	f, err := fleet.New(st, fleet.WithBuild(build), fleet.WithMember(name), fleet.WithLeaseTTL(xpTTL), fleet.WithRescan(time.Second),
		fleet.WithWork(storeWork()))
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Run(context.Background()) // until killed
}

type xpStream struct {
	acc bd.AccountID
	t   mgsource.Target
	say func(string, bd.AccountID)
}

func (s xpStream) Run(ctx context.Context) error {
	if err := s.t.Resync(ctx, nil); err != nil {
		return err
	}
	s.say("START", s.acc)
	<-ctx.Done()
	s.say("STOP", s.acc)
	return ctx.Err()
}

func xpOpen(t *testing.T, dsn string) *sql.DB {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	t.Cleanup(func() { db.Close() })
	return db
}

// xpSchema creates a schema dropped when the test ends and returns a DSN
// selecting it.
func xpSchema(t *testing.T, dsn string) string {
	admin := xpOpen(t, dsn)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "bd_fleet_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func storeWork() store.WorkOptions { return store.WorkOptions{Workers: 4} }
