package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// config is the bot's command line, each flag falling back to an
// environment variable.
type config struct {
	demo         bool
	demoDuration time.Duration
	demoSeed     uint64

	listen        string
	adminUser     string
	adminPassword string
	dsn           string
	dsnSet        bool // given by flag or environment, not the default
	moduleCode    string
	baseURL       string
	secureCookies bool
	rosterPoll    time.Duration
	logLevel      slog.Level
}

// Environment variables the flags fall back to.
const (
	envListen        = "BOTDISTRIBUTOR_LISTEN"
	envAdminUser     = "BOTDISTRIBUTOR_ADMIN_USER"
	envAdminPassword = "BOTDISTRIBUTOR_ADMIN_PASSWORD"
	envDB            = "BOTDISTRIBUTOR_DB"
	envModuleCode    = "BOTDISTRIBUTOR_MODULE_CODE"
	envBaseURL       = "BOTDISTRIBUTOR_BASE_URL"
	envSecureCookies = "BOTDISTRIBUTOR_SECURE_COOKIES"
	envRosterPoll    = "BOTDISTRIBUTOR_ROSTER_POLL"
	envLogLevel      = "BOTDISTRIBUTOR_LOG_LEVEL"
)

// parseConfig reads the flags in args over the environment getenv gives.
// Real mode needs an admin password; the error says how to give one.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	env := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	var c config
	fs := flag.NewFlagSet("bot", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.BoolVar(&c.demo, "demo", false, "run the demo: the sandbox retailCRM and MessageGateway, simulated managers and customers, then a summary")
	fs.DurationVar(&c.demoDuration, "demo-duration", 10*time.Second, "how long the demo's customers write")
	fs.Uint64Var(&c.demoSeed, "demo-seed", 1, "seed of the demo's random choices")
	fs.StringVar(&c.listen, "listen", env(envListen, "127.0.0.1:8080"), "address of the settings page, /healthz and /metrics ($"+envListen+")")
	fs.StringVar(&c.adminUser, "admin-user", env(envAdminUser, "admin"), "login of the settings page ($"+envAdminUser+")")
	fs.StringVar(&c.adminPassword, "admin-password", getenv(envAdminPassword), "password of the settings page, required; prefer $"+envAdminPassword)
	fs.StringVar(&c.dsn, "db", env(envDB, "./botdistributor.db"), `database: a SQLite file path, or "postgres://..." ($`+envDB+")")
	fs.StringVar(&c.moduleCode, "module-code", env(envModuleCode, "bot-distributor"), "code of the module registered in retailCRM ($"+envModuleCode+")")
	fs.StringVar(&c.baseURL, "base-url", getenv(envBaseURL), "public address of the bot registered in retailCRM; default http://<listen> ($"+envBaseURL+")")
	secure, err := envBool(getenv, envSecureCookies)
	if err != nil {
		return c, err
	}
	fs.BoolVar(&c.secureCookies, "secure-cookies", secure, "mark the session cookie Secure (serve over HTTPS) ($"+envSecureCookies+")")
	poll, err := envDuration(getenv, envRosterPoll, 10*time.Second)
	if err != nil {
		return c, err
	}
	fs.DurationVar(&c.rosterPoll, "roster-poll", poll, "how often retailCRM's managers and their statuses are read ($"+envRosterPoll+")")
	level := env(envLogLevel, "")
	fs.StringVar(&level, "log-level", level, "debug, info, warn or error; default info (error in the demo) ($"+envLogLevel+")")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.dsnSet = strings.TrimSpace(getenv(envDB)) != ""
	fs.Visit(func(f *flag.Flag) { c.dsnSet = c.dsnSet || f.Name == "db" })
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case level != "":
		if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
			return c, fmt.Errorf("log level %q: want debug, info, warn or error", level)
		}
	case c.demo:
		c.logLevel = slog.LevelError // the demo's own lines tell what happens
	default:
		c.logLevel = slog.LevelInfo
	}
	if c.demo {
		if c.demoDuration <= 0 {
			return c, errors.New("--demo-duration must be positive")
		}
		return c, nil
	}
	if c.adminPassword == "" {
		return c, fmt.Errorf("an admin password is required: set $%s (or --admin-password)", envAdminPassword)
	}
	if c.baseURL == "" {
		c.baseURL = "http://" + c.listen
	}
	if c.rosterPoll < time.Second {
		return c, errors.New("--roster-poll must be at least 1s (retailCRM allows 10 requests/s per key)")
	}
	return c, nil
}

func envBool(getenv func(string) string, key string) (bool, error) {
	v := strings.TrimSpace(getenv(key))
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("$%s=%q is not a boolean", key, v)
	}
	return b, nil
}

func envDuration(getenv func(string) string, key string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(key))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("$%s=%q is not a duration like 10s", key, v)
	}
	return d, nil
}
