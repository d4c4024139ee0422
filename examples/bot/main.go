// Command bot is the reference bot of botdistributor: it distributes the
// MessageGateway dialogs of any number of retailCRM accounts between their
// managers and bots, keeps everything in a SQL store (SQLite by default,
// PostgreSQL with a postgres:// DSN), and serves a settings page,
// /healthz and Prometheus /metrics. Several bot processes over one
// PostgreSQL database share the accounts (package fleet): each account's
// event stream runs in one of them, its work in all; they must all open
// the database alike (one job queue for every account), as this bot does.
//
//	BOTDISTRIBUTOR_ADMIN_PASSWORD=secret go run ./examples/bot
//
// With --demo --serve the sandbox and the settings page keep running after
// the demo, and the page's address and a login are printed:
//
//	go run ./examples/bot --demo --serve
//
// With --demo it runs, instead, against an in-process sandbox retailCRM
// and MessageGateway with simulated managers and customers, prints a
// progress line every second and a summary at the end:
//
//	go run ./examples/bot --demo
//
// See README.md beside this file for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/botdistributor/botdistributor/examples/bot/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(1)
	}
}

// run runs the bot (or the demo) until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if cfg.demo {
		dsn := ""
		if cfg.dsnSet {
			dsn = cfg.dsn
		}
		opts := demo.Options{Duration: cfg.demoDuration, DSN: dsn, Seed: cfg.demoSeed, Out: stdout, Logger: logger}
		if cfg.serve {
			serveDemo(&opts, cfg, stdout)
		}
		_, err := demo.Run(ctx, opts)
		return err
	}
	a, err := newApp(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return a.listenAndServe(ctx, cfg.listen)
}
