package reply

import (
	"fmt"
	"testing"
)

func TestTextCacheReusesParsedTexts(t *testing.T) {
	var c textCache
	a, err := c.get("Hi {{.Customer}}")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.get("Hi {{.Customer}}")
	if a != b {
		t.Error("the same text was parsed twice")
	}
	if other, _ := c.get("Bye {{.Customer}}"); other == a {
		t.Error("two texts share a template")
	}
	_, err1 := c.get("{{")
	_, err2 := c.get("{{")
	if err1 == nil || err1 != err2 {
		t.Errorf("parse errors %v and %v; want the same cached error", err1, err2)
	}
	if n := c.len(); n != 3 {
		t.Errorf("cache holds %d texts, want 3", n)
	}
}

func TestTextCacheIsBounded(t *testing.T) {
	var c textCache
	first, _ := c.get("text 0")
	for i := 1; i < maxCached+10; i++ {
		if _, err := c.get(fmt.Sprintf("text %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.len(); n != maxCached {
		t.Errorf("cache holds %d texts, want at most %d", n, maxCached)
	}
	// The oldest text was forgotten: asking again parses it anew.
	again, _ := c.get("text 0")
	if again == first {
		t.Error("the oldest text is still cached")
	}
	// A recent one is still there.
	recent, _ := c.get(fmt.Sprintf("text %d", maxCached+5))
	if recent2, _ := c.get(fmt.Sprintf("text %d", maxCached+5)); recent != recent2 {
		t.Error("a recent text was parsed again")
	}
}
