package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// Real mode refuses to start without an admin password and says how to
// give one.
func TestConfigNeedsAPassword(t *testing.T) {
	_, err := parseConfig(nil, envOf(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), envAdminPassword) {
		t.Fatalf("parseConfig without a password: %v", err)
	}
	if _, err := parseConfig([]string{"--demo"}, envOf(nil), io.Discard); err != nil {
		t.Fatalf("the demo needs no password: %v", err)
	}
}

// Flags fall back to the environment, and win over it.
func TestConfigFlagsAndEnvironment(t *testing.T) {
	env := envOf(map[string]string{
		envAdminPassword: "a long enough password", envListen: "127.0.0.1:9000", envDB: "postgres://db/bot", envBaseURL: "https://bot.example.com",
		envModuleCode: "my-bot", envRosterPoll: "30s", envSecureCookies: "true", envLogLevel: "debug",
	})
	c, err := parseConfig(nil, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.adminPassword != "a long enough password" || c.listen != "127.0.0.1:9000" || c.dsn != "postgres://db/bot" || !c.dsnSet ||
		c.moduleCode != "my-bot" || c.rosterPoll != 30*time.Second || !c.secureCookies || c.logLevel != slog.LevelDebug ||
		c.adminUser != "admin" || c.baseURL != "https://bot.example.com" {
		t.Fatalf("from the environment: %+v", c)
	}
	c, err = parseConfig([]string{"--listen", "0.0.0.0:8081", "--db", "/var/lib/bot.db", "--base-url", "https://bot2.example.com", "--admin-user", "ops"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "0.0.0.0:8081" || c.dsn != "/var/lib/bot.db" || c.baseURL != "https://bot2.example.com" || c.adminUser != "ops" {
		t.Fatalf("flags over the environment: %+v", c)
	}
	c, err = parseConfig([]string{"--demo"}, envOf(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.dsnSet || c.dsn != "./botdistributor.db" || c.demoDuration != 10*time.Second || c.logLevel != slog.LevelError {
		t.Fatalf("demo defaults: %+v", c)
	}
	for _, bad := range [][]string{{"--roster-poll", "10ms"}, {"--log-level", "loud"}, {"extra"}} {
		if _, err := parseConfig(bad, envOf(map[string]string{envAdminPassword: "a long enough password", envBaseURL: "https://bot.example.com"}), io.Discard); err == nil {
			t.Errorf("parseConfig(%q) accepted", bad)
		}
	}
	if _, err := parseConfig(nil, envOf(map[string]string{envAdminPassword: "pw", envSecureCookies: "maybe"}), io.Discard); err == nil {
		t.Error("a non-boolean $" + envSecureCookies + " was accepted")
	}
}

// Bad settings of real mode are refused with an error naming the problem.
func TestConfigRefusesWeakPasswordsAndBadBaseURLs(t *testing.T) {
	good := map[string]string{envAdminPassword: "a long enough password", envBaseURL: "https://bot.example.com"}
	with := func(k, v string) func(string) string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return envOf(m)
	}
	for _, tc := range []struct {
		env  func(string) string
		args []string
		want string
	}{
		{with(envAdminPassword, "short"), nil, "use at least 12"},
		{with(envBaseURL, ""), nil, "--base-url ($BOTDISTRIBUTOR_BASE_URL) is required"},
		{with(envBaseURL, "bot.example.com"), nil, "is not an absolute http(s) URL"},
		{with(envBaseURL, "ftp://bot.example.com"), nil, "is not an absolute http(s) URL"},
		{with(envBaseURL, "http://127.0.0.1:8080"), nil, "points at this machine's loopback"},
		{with(envBaseURL, "http://localhost:8080"), nil, "points at this machine's loopback"},
		{envOf(good), []string{"--serve"}, "--serve only goes with --demo"},
		{envOf(good), []string{"--admin-password-file", "/secret"}, "not both"},
	} {
		_, err := parseConfig(tc.args, tc.env, io.Discard, func(string) ([]byte, error) { return []byte("from a file, long enough\n"), nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q): %v; want an error with %q", tc.args, err, tc.want)
		}
	}
	env := envOf(map[string]string{envBaseURL: "https://bot.example.com", envPasswordFile: "/run/secrets/admin"})
	c, err := parseConfig(nil, env, io.Discard, func(name string) ([]byte, error) {
		if name != "/run/secrets/admin" {
			t.Errorf("read %q", name)
		}
		return []byte("from a file, long enough\n"), nil
	})
	if err != nil || c.adminPassword != "from a file, long enough" {
		t.Fatalf("password from a file: %q, %v", c.adminPassword, err)
	}
}

// --help describes the bot and gives examples.
func TestConfigHelp(t *testing.T) {
	var out strings.Builder
	_, err := parseConfig([]string{"--help"}, envOf(nil), &out)
	if err == nil {
		t.Fatal("--help gave no flag.ErrHelp")
	}
	for _, want := range []string{"distributes the chat dialogs", "go run ./examples/bot --demo --serve", "-base-url", "-admin-password-file"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out.String())
		}
	}
}
