package mg_test

import (
	"context"
	"github.com/botdistributor/botdistributor/internal/changes"
	"net/http"
	"testing"
	"time"

	"golang.org/x/time/rate"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/sandbox"
)

// newMG starts a sandbox MG that the test closes.
func newMG(t *testing.T) *sandbox.MG {
	t.Helper()
	m, err := sandbox.NewMG(sandbox.WithSeed(7))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// fastRetry retries quickly, so tests of retries take no time.
var fastRetry = mg.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}

// newClient returns a client of the sandbox's bot with fast retries, no
// rate limit and its own HTTP transport, closed with the test.
func newClient(t *testing.T, m *sandbox.MG, opts ...mg.Option) *mg.Client {
	t.Helper()
	return newClientToken(t, m, m.BotToken(), opts...)
}

func newClientToken(t *testing.T, m *sandbox.MG, token bd.Secret, opts ...mg.Option) *mg.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	base := []mg.Option{
		mg.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}),
		mg.WithRetry(fastRetry),
		mg.WithLimiter(rate.NewLimiter(rate.Inf, 0)),
	}
	c, err := mg.New(m.URL(), token, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// await fails the test unless cond becomes true while the sandbox changes.
func await(t *testing.T, m *sandbox.MG, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Await(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// watch lets test callbacks report that something changed.
type watch = changes.Watch

func newWatch() *watch { return changes.NewWatch() }

// waitUntil fails the test unless cond becomes true; it re-checks cond
// whenever the sandbox or the watch reports a change (either may be nil).
func waitUntil(t *testing.T, what string, m *sandbox.MG, w *watch, cond func() bool) {
	t.Helper()
	var sources []changes.Source
	if m != nil {
		sources = append(sources, m)
	}
	if w != nil {
		sources = append(sources, w)
	}
	changes.Await(t, what, 20*time.Second, cond, sources...)
}

// customer makes a customer write in the channel and returns where the
// message landed.
func customer(t *testing.T, m *sandbox.MG, ch bd.ChannelID, ext, text string) sandbox.MGWritten {
	t.Helper()
	w, err := m.CustomerWrites(testCtx(t), sandbox.MGCustomerMessage{
		Channel: ch, CustomerExternalID: ext, FirstName: "Customer", LastName: ext,
		Phone: "+7900" + ext, Email: ext + "@example.com", Text: text,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func channel(t *testing.T, m *sandbox.MG, typ, name string) bd.ChannelID {
	t.Helper()
	id, err := m.AddChannel(testCtx(t), typ, name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
