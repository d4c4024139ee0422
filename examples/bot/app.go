package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/botdistributor/botdistributor/crm"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/examples/bot/internal/web"
)

// app is the bot in real mode: the store, the supervisor of the accounts,
// the metrics and the settings pages.
type app struct {
	storage *bot.Storage
	sup     *bot.Supervisor
	web     *web.Server
	metrics *bot.Metrics
	log     *slog.Logger
	// metricsListen, when set, is the address /metrics is served on
	// without a login, instead of the page's address.
	metricsListen string
	metricsLn     net.Listener
}

// shutdownTimeout bounds how long requests in flight may take to finish
// after a stop signal.
const shutdownTimeout = 20 * time.Second

// newApp opens the store and builds the parts; nothing runs yet. The
// options function, when given, adjusts the supervisor's options (tests
// point the clients at the sandbox's limits).
func newApp(ctx context.Context, cfg config, logger *slog.Logger, tune ...func(*bot.Options)) (*app, error) {
	storage, err := bot.OpenStorage(ctx, cfg.dsn)
	if err != nil {
		return nil, err
	}
	metrics := bot.NewMetrics()
	activity := bot.NewActivity(nil)
	opts := bot.Options{
		Store:      storage.Store,
		Module:     crm.Module{Code: cfg.moduleCode, BaseURL: cfg.baseURL},
		Logger:     logger,
		Hooks:      bot.CombineHooks(metrics.Hooks(), activity.Hooks()),
		Activity:   activity,
		Started:    metrics.Touch,
		RosterPoll: cfg.rosterPoll,
	}
	for _, f := range tune {
		f(&opts)
	}
	sup, err := bot.New(opts)
	if err != nil {
		storage.Close()
		return nil, err
	}
	metrics.Watch(sup.States)
	var pageMetrics http.Handler = metrics.Handler()
	if cfg.metricsListen != "" {
		pageMetrics = nil // served on its own address instead
	}
	srv, err := web.New(web.Config{
		Backend:       sup,
		AdminUser:     cfg.adminUser,
		AdminPassword: cfg.adminPassword,
		Health:        storage.Ping,
		Metrics:       pageMetrics,
		SecureCookies: cfg.secureCookies,
		Logger:        logger,
	})
	if err != nil {
		storage.Close()
		return nil, err
	}
	return &app{storage: storage, sup: sup, web: srv, metrics: metrics, log: logger, metricsListen: cfg.metricsListen}, nil
}

func (a *app) listenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		a.storage.Close()
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if a.metricsListen != "" {
		if a.metricsLn, err = net.Listen("tcp", a.metricsListen); err != nil {
			ln.Close()
			a.storage.Close()
			return fmt.Errorf("listen for metrics on %s: %w", a.metricsListen, err)
		}
	}
	return a.serve(ctx, ln)
}

// serve runs the accounts and serves the pages on ln until ctx ends, then
// shuts down gracefully: it stops accepting connections and lets requests
// in flight finish, then stops every account (closing their websockets,
// letting their work in flight finish, closing their distributors), and
// closes the database last.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	defer a.storage.Close()
	hs := &http.Server{
		Handler:           a.web.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	// The accounts run under their own context: they stop after the HTTP
	// server, so a request in flight can still use them.
	supCtx, stopSup := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSup()
	supDone := make(chan error, 1)
	go func() { supDone <- a.sup.Run(supCtx) }()
	srvDone := make(chan error, 1)
	go func() { srvDone <- hs.Serve(ln) }()
	if mln := a.metricsLn; mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics.Handler())
		ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(mln)
		defer ms.Close()
		a.log.Info("serving metrics", slog.String("address", "http://"+mln.Addr().String()+"/metrics"))
	}
	a.log.Info("serving the settings page", slog.String("address", "http://"+ln.Addr().String()), slog.String("store", a.storage.Kind))

	var failure error
	select {
	case <-ctx.Done():
		a.log.Info("stopping")
	case err := <-srvDone:
		failure = fmt.Errorf("serving HTTP: %w", err)
		srvDone <- nil
	case err := <-supDone:
		failure = err
		supDone <- err
	}
	shCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(shCtx); err != nil {
		a.log.Error("HTTP shutdown", slog.Any("error", err))
	}
	if err := <-srvDone; err != nil && !errors.Is(err, http.ErrServerClosed) && failure == nil {
		failure = fmt.Errorf("serving HTTP: %w", err)
	}
	stopSup()
	if err := <-supDone; err != nil && !errors.Is(err, context.Canceled) && failure == nil {
		failure = err
	}
	a.log.Info("stopped")
	return failure
}
