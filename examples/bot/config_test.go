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
		envAdminPassword: "pw", envListen: "127.0.0.1:9000", envDB: "postgres://db/bot",
		envModuleCode: "my-bot", envRosterPoll: "30s", envSecureCookies: "true", envLogLevel: "debug",
	})
	c, err := parseConfig(nil, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.adminPassword != "pw" || c.listen != "127.0.0.1:9000" || c.dsn != "postgres://db/bot" || !c.dsnSet ||
		c.moduleCode != "my-bot" || c.rosterPoll != 30*time.Second || !c.secureCookies || c.logLevel != slog.LevelDebug ||
		c.adminUser != "admin" || c.baseURL != "http://127.0.0.1:9000" {
		t.Fatalf("from the environment: %+v", c)
	}
	c, err = parseConfig([]string{"--listen", "0.0.0.0:8081", "--db", "/var/lib/bot.db", "--base-url", "https://bot.example.com", "--admin-user", "ops"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "0.0.0.0:8081" || c.dsn != "/var/lib/bot.db" || c.baseURL != "https://bot.example.com" || c.adminUser != "ops" {
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
		if _, err := parseConfig(bad, envOf(map[string]string{envAdminPassword: "pw"}), io.Discard); err == nil {
			t.Errorf("parseConfig(%q) accepted", bad)
		}
	}
	if _, err := parseConfig(nil, envOf(map[string]string{envAdminPassword: "pw", envSecureCookies: "maybe"}), io.Discard); err == nil {
		t.Error("a non-boolean $" + envSecureCookies + " was accepted")
	}
}
