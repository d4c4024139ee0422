package replytext

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	full := Values{Manager: "Анна Смирнова", ManagerFirstName: "Анна", Customer: "Иван Петров", CustomerFirstName: "Иван"}
	for _, tc := range []struct {
		text      string
		v         Values
		want      string
		wantError string
	}{
		{text: "Здравствуйте[, {customer_first_name}]! Вам ответит {manager}.", v: full, want: "Здравствуйте, Иван! Вам ответит Анна Смирнова."},
		{text: "Здравствуйте[, {customer_first_name}]!", v: Values{}, want: "Здравствуйте!"},
		{text: "  {customer} and {manager_first_name}  ", v: full, want: "Иван Петров and Анна"},
		{text: "[Note] plain brackets stay", v: full, want: "[Note] plain brackets stay"},
		{text: "[{manager}] answers [soon]", v: Values{}, want: "answers [soon]"},
		{text: "[{customer}]", v: Values{}, wantError: "renders to an empty message"},
		{text: "Hi {name}", wantError: "unknown placeholder {name}: use {customer}, {customer_first_name}, {manager} or {manager_first_name}"},
		{text: "Привет {customer", wantError: "the brace at character 8 is not closed"},
		{text: "Hi } there", wantError: "the brace at character 4 closes nothing"},
		{text: "   ", wantError: "is empty"},
		// Names given in parts are joined with a space, or stand alone.
		{text: "{customer}, {manager} answers", v: Values{CustomerFirstName: "Иван", CustomerLastName: "Петров", ManagerLastName: "Смирнова"}, want: "Иван Петров, Смирнова answers"},
		{text: "Hi[ {customer}]! {manager}", v: Values{ManagerFirstName: "Анна", ManagerLastName: "Смирнова"}, want: "Hi! Анна Смирнова"},
		{text: "{manager} / {customer}", v: Values{Manager: "Анна С.", ManagerFirstName: "Анна", ManagerLastName: "Смирнова", CustomerFirstName: "Иван"}, want: "Анна С. / Иван"},
		// The earlier form still renders.
		{text: "Hello{{if .Customer}}, {{.Customer}}{{end}}!", v: Values{Customer: "Ann"}, want: "Hello, Ann!"},
		{text: "{{if .Manager}}{{.Manager}}{{else}}We{{end}} ({{.Situation}})", v: Values{Situation: "x"}, want: "We (x)"},
		{text: "{{if .Manager}}{{.Manager}}{{else}}We{{end}}, {{.Customer}}", v: Values{ManagerFirstName: "Ann", ManagerLastName: "Lee", CustomerLastName: "Doe"}, want: "Ann Lee, Doe"},
		{text: `{{template "x"}}`, wantError: "may not use range, define, template or block"},
		{text: `{{define "x"}}{{template "x"}}{{end}}{{template "x"}}`, wantError: "may not use range, define, template or block"},
		{text: "{{.Phone}}", wantError: `map has no entry for key "Phone"`},
		{text: `{{printf "%999999s" "x"}}`, wantError: "renders to more than 65536 bytes"},
	} {
		txt, err := Parse(tc.text)
		var got string
		if err == nil {
			got, err = txt.Render(tc.v)
		}
		if tc.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("%q: got %q, %v; want an error with %q", tc.text, got, err, tc.wantError)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.text, got, err, tc.want)
		}
	}
}

func TestUpgrade(t *testing.T) {
	for text, want := range map[string]string{
		"Hello{{if .Customer}}, {{.Customer}}{{end}}! We have received your message.": "Hello[, {customer}]! We have received your message.",
		"{{.Manager}} will answer you shortly.":                                       "{manager} will answer you shortly.",
		"{{- .Customer -}}  and {{ .Manager }}":                                       "{customer}and {manager}",
	} {
		got, ok := Upgrade(text)
		if !ok || got != want {
			t.Errorf("Upgrade(%q) = %q, %v; want %q", text, got, ok, want)
		}
		// Both forms say the same.
		for _, v := range []Values{Sample, {}} {
			old, err := parseLegacy(text)
			if err != nil {
				t.Fatal(err)
			}
			a, errA := executeLegacy(old, v)
			nt, err := Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			b, errB := nt.Render(v)
			if a != b || (errA == nil) != (errB == nil) {
				t.Errorf("%q with %+v: earlier form gives %q, %v; upgraded %q, %v", text, v, a, errA, b, errB)
			}
		}
	}
	for _, text := range []string{
		"plain text",
		"{{if .Manager}}{{.Manager}}{{else}}someone{{end}}",
		"{{.Situation}}",
		"{{printf \"%s!\" .Customer}}",
		"{a} {{.Customer}}",
		"{{if .Customer}}Hi{{end}}",
	} {
		if got, ok := Upgrade(text); ok {
			t.Errorf("Upgrade(%q) = %q; want it left in the earlier form", text, got)
		}
	}
}
