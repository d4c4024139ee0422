package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/examples/bot/internal/demo"
	"github.com/botdistributor/botdistributor/examples/bot/internal/web"
)

// serveDemo makes the demo keep its sandbox and the bot running after the
// summary and serve the settings page on cfg.listen with a fresh password,
// printed with the address, until ctx ends (Ctrl-C).
func serveDemo(opts *demo.Options, cfg config, out io.Writer) {
	metrics := bot.NewMetrics()
	activity := bot.NewActivity(nil)
	opts.Activity = activity
	opts.Hooks = bot.CombineHooks(metrics.Hooks(), activity.Hooks())
	opts.Serve = func(ctx context.Context, sup *bot.Supervisor, storage *bot.Storage) error {
		metrics.Watch(sup.States)
		password := rand.Text()
		srv, err := web.New(web.Config{Backend: sup, AdminUser: cfg.adminUser, AdminPassword: password,
			Health: storage.Ping, Metrics: metrics.Handler(), Logger: opts.Logger})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", cfg.listen)
		if err != nil {
			return fmt.Errorf("demo: listen on %s for the page: %w", cfg.listen, err)
		}
		hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)}
		fmt.Fprintf(out, "\nThe sandbox and the bot keep running. Open http://%s/ and log in as %q with the password %s\n"+
			"(the account's dashboard and decisions are linked from its page). Stop with Ctrl-C.\n", ln.Addr(), cfg.adminUser, password)
		done := make(chan error, 1)
		go func() { done <- hs.Serve(ln) }()
		select {
		case <-ctx.Done():
		case err := <-done:
			return err
		}
		shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(shCtx); err != nil {
			return err
		}
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
