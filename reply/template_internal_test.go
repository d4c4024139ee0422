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
	if a.tmpl != b.tmpl {
		t.Error("the same text was parsed twice")
	}
	if other, _ := c.get("Bye {{.Customer}}"); other.tmpl == a.tmpl {
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
	if again.tmpl == first.tmpl {
		t.Error("the oldest text is still cached")
	}
	// A recent one is still there.
	recent, _ := c.get(fmt.Sprintf("text %d", maxCached+5))
	if recent2, _ := c.get(fmt.Sprintf("text %d", maxCached+5)); recent.tmpl != recent2.tmpl {
		t.Error("a recent text was parsed again")
	}
}

// TestPlanMatchesTemplate renders texts through the fast plan and through
// text/template and expects the same output; texts the plan cannot handle
// get no plan.
func TestPlanMatchesTemplate(t *testing.T) {
	vars := []Vars{
		{Manager: "Anna Smith", Customer: "John", Situation: "manager_assigned"},
		{Manager: "", Customer: "", Situation: "no_manager_online"},
		{Manager: "{{.Customer}}", Customer: "  spaced  ", Situation: "x"},
	}
	for _, text := range []string{
		"Hello {{.Customer}}, {{.Manager}} will answer.",
		"  {{.Manager}}  ",
		"{{- .Customer -}} and {{ .Situation }}",
		"plain text",
		"{{.Manager}}{{.Customer}}{{.Situation}}",
		"a {{/* note */}} b",
	} {
		tmpl, err := parseText(text)
		if err != nil {
			t.Fatal(err)
		}
		p := planOf(tmpl)
		if p == nil {
			t.Fatalf("%q: no plan for a simple text", text)
		}
		for _, v := range vars {
			want, werr := execute(tmpl, v)
			got, gerr := p.render(v)
			if got != want || (werr == nil) != (gerr == nil) {
				t.Errorf("%q with %+v: plan gives %q, %v; template gives %q, %v", text, v, got, gerr, want, werr)
			}
		}
	}
	for _, text := range []string{
		"{{if .Manager}}{{.Manager}}{{else}}someone{{end}}",
		"{{printf \"%s!\" .Customer}}",
		"{{.Customer | len}}",
		"{{$x := .Manager}}{{$x}}",
	} {
		tmpl, err := parseText(text)
		if err != nil {
			t.Fatal(err)
		}
		if planOf(tmpl) != nil {
			t.Errorf("%q got a plan; only literal text and plain fields may", text)
		}
	}
}
