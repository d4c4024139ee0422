package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is the bot's command line, each flag falling back to an
// environment variable.
type config struct {
	demo         bool
	serve        bool // with demo: keep the sandbox and the page running after it
	demoDuration time.Duration
	demoSeed     uint64

	listen        string
	metricsListen string
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
	envMetricsListen = "BOTDISTRIBUTOR_METRICS_LISTEN"
	envPasswordFile  = "BOTDISTRIBUTOR_ADMIN_PASSWORD_FILE"
	envAdminUser     = "BOTDISTRIBUTOR_ADMIN_USER"
	envAdminPassword = "BOTDISTRIBUTOR_ADMIN_PASSWORD"
	envDB            = "BOTDISTRIBUTOR_DB"
	envModuleCode    = "BOTDISTRIBUTOR_MODULE_CODE"
	envBaseURL       = "BOTDISTRIBUTOR_BASE_URL"
	envSecureCookies = "BOTDISTRIBUTOR_SECURE_COOKIES"
	envRosterPoll    = "BOTDISTRIBUTOR_ROSTER_POLL"
	envLogLevel      = "BOTDISTRIBUTOR_LOG_LEVEL"
)

// minPassword is the shortest admin password accepted.
const minPassword = 12

const usageHead = `bot distributes the chat dialogs of retailCRM's MessageGateway between
managers, for any number of retailCRM accounts, and serves a settings page
(English and Russian), a live dashboard, /healthz and Prometheus /metrics.

Examples:

  # look around without a retailCRM account: a sandbox, simulated
  # managers and customers, then the page stays up with a login
  go run ./examples/bot --demo --serve

  # real mode: the page on :8080, the bot's public address, PostgreSQL
  echo 'a-long-admin-password' > /run/secrets/bot-admin
  BOTDISTRIBUTOR_ADMIN_PASSWORD_FILE=/run/secrets/bot-admin \
    go run ./examples/bot --listen :8080 --base-url https://bot.example.com \
    --db postgres://bot@db/bot

Flags (each falls back to the environment variable named):

`

// parseConfig reads the flags in args over the environment getenv gives.
// Real mode needs an admin password (at least minPassword characters) and
// a public base URL; the errors say how to give them. readFile reads the
// password file.
func parseConfig(args []string, getenv func(string) string, usage io.Writer, readFile ...func(string) ([]byte, error)) (config, error) {
	env := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	var c config
	fs := flag.NewFlagSet("bot", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.Usage = func() {
		fmt.Fprint(usage, usageHead)
		fs.PrintDefaults()
	}
	var passwordFile string
	fs.BoolVar(&c.demo, "demo", false, "run the demo: the sandbox retailCRM and MessageGateway, simulated managers and customers, then a summary")
	fs.DurationVar(&c.demoDuration, "demo-duration", 10*time.Second, "how long the demo's customers write")
	fs.Uint64Var(&c.demoSeed, "demo-seed", 1, "seed of the demo's random choices")
	fs.BoolVar(&c.serve, "serve", false, "with --demo: keep the sandbox and the page running after the demo, and print the address and a login")
	fs.StringVar(&c.metricsListen, "metrics-listen", env(envMetricsListen, ""), "serve /metrics without a login on this separate address (e.g. 127.0.0.1:9090); empty: /metrics on --listen, behind the login ($"+envMetricsListen+")")
	fs.StringVar(&passwordFile, "admin-password-file", env(envPasswordFile, ""), "file holding the password of the settings page ($"+envPasswordFile+")")
	fs.StringVar(&c.listen, "listen", env(envListen, "127.0.0.1:8080"), "address of the settings page, /healthz and /metrics ($"+envListen+")")
	fs.StringVar(&c.adminUser, "admin-user", env(envAdminUser, "admin"), "login of the settings page ($"+envAdminUser+")")
	fs.StringVar(&c.adminPassword, "admin-password", getenv(envAdminPassword), "password of the settings page, at least 12 characters; visible to other users in ps: prefer $"+envAdminPassword+" or --admin-password-file")
	fs.StringVar(&c.dsn, "db", env(envDB, "./botdistributor.db"), `database: a SQLite file path, or "postgres://..." ($`+envDB+")")
	fs.StringVar(&c.moduleCode, "module-code", env(envModuleCode, "bot-distributor"), "code of the module registered in retailCRM ($"+envModuleCode+")")
	fs.StringVar(&c.baseURL, "base-url", getenv(envBaseURL), "public http(s) address of the bot, registered in retailCRM as the module's address; required ($"+envBaseURL+")")
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
	if c.serve {
		return c, errors.New("--serve only goes with --demo")
	}
	if passwordFile != "" {
		read := os.ReadFile
		if len(readFile) > 0 {
			read = readFile[0]
		}
		b, err := read(passwordFile)
		if err != nil {
			return c, fmt.Errorf("admin password file: %w", err)
		}
		if c.adminPassword != "" {
			return c, errors.New("give the admin password once: by --admin-password-file or by --admin-password/$" + envAdminPassword + ", not both")
		}
		c.adminPassword = strings.TrimRight(string(b), "\r\n")
	}
	if c.adminPassword == "" {
		return c, fmt.Errorf("an admin password is required: set $%s, or $%s (or --admin-password-file) to a file holding it", envAdminPassword, envPasswordFile)
	}
	if n := len([]rune(c.adminPassword)); n < minPassword {
		return c, fmt.Errorf("the admin password has %d characters; use at least %d", n, minPassword)
	}
	if err := checkBaseURL(c.baseURL); err != nil {
		return c, err
	}
	if c.rosterPoll < time.Second {
		return c, errors.New("--roster-poll must be at least 1s (retailCRM allows 10 requests/s per key)")
	}
	return c, nil
}

// checkBaseURL refuses a base URL retailCRM could not reach: it must be an
// absolute http(s) URL of a host that is not this machine's loopback.
func checkBaseURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("--base-url ($%s) is required: the bot's public address, e.g. https://bot.example.com, which retailCRM calls and registers as the module's address", envBaseURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("--base-url %q is not an absolute http(s) URL such as https://bot.example.com", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); (ip != nil && (ip.IsLoopback() || ip.IsUnspecified())) || strings.EqualFold(host, "localhost") {
		return fmt.Errorf("--base-url %q points at this machine's loopback: retailCRM could not reach the bot there; give the bot's public address", raw)
	}
	return nil
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
