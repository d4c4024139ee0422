package web

import (
	"regexp"
	"testing"
	"time"
)

// Every string exists in both languages.
func TestCataloguesHaveTheSameKeys(t *testing.T) {
	for key := range english {
		if _, ok := russian[key]; !ok {
			t.Errorf("%q has no Russian text", key)
		}
	}
	for key := range russian {
		if _, ok := english[key]; !ok {
			t.Errorf("%q has no English text", key)
		}
	}
}

// missingKey is how T shows a key no catalogue has.
var missingKey = regexp.MustCompile(`\[[a-z]+\.[A-Za-z_.]+\]`)

// A client address that keeps failing is refused, but never another
// address, and a clean address gets through even when the global ceiling
// is spent by failing ones.
func TestLoginThrottledPerClient(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLoginLimiter(func() time.Time { return now })
	for range clientBurst {
		if !l.allow("10.0.0.1") {
			t.Fatal("refused within the client's burst")
		}
		l.failed("10.0.0.1")
	}
	if l.allow("10.0.0.1") {
		t.Fatal("a failing address was not throttled")
	}
	if !l.allow("10.0.0.2") {
		t.Fatal("another address was locked out by the first one's failures")
	}
	// Many failing addresses spend the global ceiling ...
	for i := range globalBurst * 2 {
		a := "192.0.2." + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if l.allow(a) {
			l.failed(a)
			l.allow(a) // a second guess counts against the ceiling
		}
	}
	// ... and a clean address still gets through.
	if !l.allow("10.0.0.3") {
		t.Fatal("the global ceiling locked out an address that never failed")
	}
	// The failing address gets a new attempt after a while.
	now = now.Add(clientEvery)
	if l.global.TokensAt(now) < 1 {
		now = now.Add(time.Duration(globalBurst) * time.Second / globalRate)
	}
	if !l.allow("10.0.0.1") {
		t.Fatal("a throttled address never got another attempt")
	}
}
