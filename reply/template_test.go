package reply_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/reply/replytest"
)

var dialog = bd.Dialog{
	Account:  "shop.example.com",
	ID:       501,
	Chat:     77,
	Customer: bd.Customer{ID: 9, FirstName: "Olga", LastName: "Petrova"},
}

var anna = bd.Manager{ID: 12, FirstName: "Anna", LastName: "Smith"}

func newTemplate(t *testing.T) (*reply.Template, *replytest.Recorder) {
	t.Helper()
	rec := replytest.NewRecorder()
	tmpl, err := reply.NewTemplate(rec)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl, rec
}

func TestNewTemplateNilSender(t *testing.T) {
	tmpl, err := reply.NewTemplate(nil)
	if err == nil || err.Error() != "reply: template: sender is nil" || tmpl != nil {
		t.Errorf("NewTemplate(nil) = %v, %v; want an error", tmpl, err)
	}
}

func TestTemplateReplySends(t *testing.T) {
	cases := []struct {
		name string
		req  reply.Request
		want string
	}{
		{
			"manager and customer",
			reply.Request{Dialog: dialog, Situation: bd.ManagerAssigned, Manager: anna,
				Text: "Hello, {{.Customer}}! {{.Manager}} will answer you."},
			"Hello, Olga Petrova! Anna Smith will answer you.",
		},
		{
			"placeholders",
			reply.Request{Dialog: dialog, Situation: bd.ManagerAssigned, Manager: anna,
				Text: "Hello[, {customer_first_name}]! {manager_first_name} ({manager}) will answer {customer}."},
			"Hello, Olga! Anna (Anna Smith) will answer Olga Petrova.",
		},
		{
			"placeholder without a value leaves its part out",
			reply.Request{Dialog: bd.Dialog{Account: "a", ID: 1, Chat: 2}, Situation: bd.AllManagersBusy,
				Text: "Hi[, {customer}]! Everyone is busy [really]."},
			"Hi! Everyone is busy [really].",
		},
		{
			"situation and condition",
			reply.Request{Dialog: dialog, Situation: bd.NoManagerOnline,
				Text: "{{if .Manager}}{{.Manager}}{{else}}Nobody{{end}} ({{.Situation}})"},
			"Nobody (no_manager_online)",
		},
		{
			"plain text",
			reply.Request{Dialog: dialog, Situation: bd.DialogReceived, Text: "We got your message."},
			"We got your message.",
		},
		{
			"surrounding space trimmed",
			reply.Request{Dialog: dialog, Situation: bd.DialogReceived, Text: "\n  Hi {{.Customer}}  \n"},
			"Hi Olga Petrova",
		},
		{
			"not escaped",
			reply.Request{Dialog: bd.Dialog{Account: "a", ID: 1, Chat: 2, Customer: bd.Customer{FirstName: "<Tom & Co>"}},
				Situation: bd.DialogReceived, Text: "Hi {{.Customer}}"},
			"Hi <Tom & Co>",
		},
		{
			"customer without a name",
			reply.Request{Dialog: bd.Dialog{Account: "a", ID: 1, Chat: 2}, Situation: bd.AllManagersBusy,
				Text: "Hi{{with .Customer}}, {{.}}{{end}}! Everyone is busy."},
			"Hi! Everyone is busy.",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, rec := newTemplate(t)
			if err := tmpl.Reply(t.Context(), tc.req); err != nil {
				t.Fatalf("Reply: %v", err)
			}
			sent := rec.Sent()
			want := replytest.Sent{Via: replytest.ViaSend, Account: tc.req.Dialog.Account, Chat: tc.req.Dialog.Chat, Text: tc.want}
			if len(sent) != 1 || sent[0] != want {
				t.Errorf("sent %+v, want [%+v]", sent, want)
			}
		})
	}
}

func TestTemplateRejectsBadText(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"empty", "", `reply: text for situation "manager_assigned": is empty`},
		{"white space", " \n\t", `reply: text for situation "manager_assigned": is empty`},
		{"does not parse", "Hi {{.Customer", `reply: text for situation "manager_assigned": template: reply:1: unclosed action`},
		{"unknown field", "Hi {{.Name}}", `reply: text for situation "manager_assigned": template: reply:1:5: executing "reply" at <.Name>: map has no entry for key "Name"`},
		{"unknown function", "{{shout .Customer}}", `reply: text for situation "manager_assigned": template: reply:1: function "shout" not defined`},
		{"renders to nothing", "{{if false}}x{{end}}  ", `reply: text for situation "manager_assigned": renders to an empty message`},
		{"renders to a field that is empty", "{{.Situation | printf \"%.0s\"}}", `reply: text for situation "manager_assigned": renders to an empty message`},
		{"endless recursion", `{{define "x"}}{{template "x"}}{{end}}{{template "x"}}`, "may not use range, define, template or block"},
		{"calls itself", `{{if .Manager}}{{template "reply" .}}{{end}}`, "may not use range, define, template or block"},
		{"block", `Hi {{block "b" .}}{{.Customer}}{{end}}`, "may not use range, define, template or block"},
		{"only a define", `{{define "x"}}Hi{{end}}`, "may not use range, define, template or block"},
		{"long loop", `{{with .Customer}}{{range 1000000000}}{{end}}{{end}}`, "may not use range, define, template or block"},
		{"huge output", `{{printf "%999999s" "x"}}`, "renders to more than 65536 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, rec := newTemplate(t)
			req := reply.Request{Dialog: dialog, Situation: bd.ManagerAssigned, Manager: anna, Text: tc.text}
			// Twice: the second time the cached result must say the same.
			for range 2 {
				err := tmpl.Reply(t.Context(), req)
				var te *reply.TextError
				if !errors.As(err, &te) || te.Situation != bd.ManagerAssigned {
					t.Fatalf("Reply error = %v, want a *reply.TextError for manager_assigned", err)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q does not contain %q", err, tc.want)
				}
				if !strings.HasPrefix(err.Error(), `reply: text for situation "manager_assigned": `) {
					t.Errorf("error %q does not name the situation", err)
				}
			}
			if n := rec.Attempts(); n != 0 {
				t.Errorf("the sender was called %d times for a bad text", n)
			}
		})
	}
}

func TestTemplateSenderError(t *testing.T) {
	tmpl, rec := newTemplate(t)
	boom := errors.New("mg: 502 bad gateway")
	rec.FailNext(1, boom)
	req := reply.Request{Dialog: dialog, Situation: bd.NoManagerOnline, Text: "Nobody is online."}
	err := tmpl.Reply(t.Context(), req)
	if !errors.Is(err, boom) {
		t.Fatalf("Reply error = %v, want the sender's error", err)
	}
	if want := "reply: send no_manager_online reply to chat 77: mg: 502 bad gateway"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	var te *reply.TextError
	if errors.As(err, &te) {
		t.Error("a sender failure is reported as a bad text")
	}
	if rec.Len() != 0 {
		t.Errorf("recorded %v after a failed send", rec.Sent())
	}
	// The next attempt goes through.
	if err := tmpl.Reply(t.Context(), req); err != nil || rec.Len() != 1 {
		t.Errorf("retry: %v, %d sent", err, rec.Len())
	}
}

func TestTemplateCanceledContext(t *testing.T) {
	tmpl, rec := newTemplate(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := tmpl.Reply(ctx, reply.Request{Dialog: dialog, Situation: bd.DialogReceived, Text: "Hi"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Reply error = %v, want context.Canceled", err)
	}
	if rec.Attempts() != 0 {
		t.Error("the sender was called with a canceled context")
	}
}

func TestTemplateNoChat(t *testing.T) {
	tmpl, rec := newTemplate(t)
	d := dialog
	d.Chat = 0
	err := tmpl.Reply(t.Context(), reply.Request{Dialog: d, Situation: bd.DialogReceived, Text: "Hi"})
	if err == nil || err.Error() != "reply: dialog_received reply for dialog 501: the dialog has no chat id" {
		t.Errorf("Reply error = %v", err)
	}
	if rec.Attempts() != 0 {
		t.Error("the sender was called without a chat")
	}
}

func TestTemplateRender(t *testing.T) {
	tmpl, rec := newTemplate(t)
	got, err := tmpl.Render(reply.Request{Dialog: dialog, Situation: bd.ManagerAssigned, Manager: anna, Text: "{{.Manager}} for {{.Customer}}"})
	if err != nil || got != "Anna Smith for Olga Petrova" {
		t.Errorf("Render = %q, %v", got, err)
	}
	if rec.Attempts() != 0 {
		t.Error("Render sent something")
	}
}

// Many goroutines share one Template and its cache.
func TestTemplateHammer(t *testing.T) {
	tmpl, rec := newTemplate(t)
	texts := []string{"A {{.Customer}}", "B {{.Manager}}", "C {{.Situation}}", "D"}
	want := []string{"A Olga Petrova", "B Anna Smith", "C manager_assigned", "D"}
	const goroutines, per = 8, 100
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				req := reply.Request{Dialog: dialog, Situation: bd.ManagerAssigned, Manager: anna, Text: texts[(g+i)%len(texts)]}
				if err := tmpl.Reply(t.Context(), req); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	counts := map[string]int{}
	for _, s := range rec.Sent() {
		counts[s.Text]++
	}
	for _, w := range want {
		if counts[w] != goroutines*per/len(texts) {
			t.Errorf("%q sent %d times, want %d (all: %v)", w, counts[w], goroutines*per/len(texts), counts)
		}
	}
}

func TestValidate(t *testing.T) {
	valid := []string{
		"Hello!",
		"Hello, {{.Customer}}. {{.Manager}} will answer.",
		"{{if .Manager}}{{.Manager}}{{else}}We{{end}} will answer ({{.Situation}}).",
		"{{.Manager | printf \"%q\"}}",
		"Hello[, {customer}]! {manager_first_name} will answer.",
	}
	for _, text := range valid {
		if err := reply.Validate(text); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", text, err)
		}
	}
	invalid := map[string]string{
		"":                     "reply: text: is empty",
		"   ":                  "reply: text: is empty",
		"{{.Customer":          "reply: text: template: reply:1: unclosed action",
		"{{.Phone}}":           `reply: text: template: reply:1:2: executing "reply" at <.Phone>: map has no entry for key "Phone"`,
		"{{if .Manager}}{{}}":  "reply: text: template: reply:1: missing value for command",
		"{{/* nothing */}}":    "reply: text: renders to an empty message",
		"{{range 3}}Hi{{end}}": "reply: text: may not use range, define, template or block",
		"Hi {Customer}":        "reply: text: unknown placeholder {Customer}: use {customer}, {customer_first_name}, {manager} or {manager_first_name}",
		"[{manager}]":          "reply: text: renders to an empty message when the names are unknown: add some words outside the placeholders",
	}
	for text, want := range invalid {
		err := reply.Validate(text)
		var te *reply.TextError
		if !errors.As(err, &te) || te.Situation != "" {
			t.Errorf("Validate(%q) = %v, want a *reply.TextError without a situation", text, err)
			continue
		}
		if err.Error() != want {
			t.Errorf("Validate(%q) = %q, want %q", text, err, want)
		}
	}
}

// The template's TextChecker is Validate's check, in every situation, with
// messages a settings page shows as they are (no "reply: text: ").
func TestTemplateCheckText(t *testing.T) {
	tmpl, _ := newTemplate(t)
	var checker reply.TextChecker = tmpl
	texts := []string{
		"Hello!",
		"Hello[, {customer}]! {manager_first_name} will answer.",
		"Hello, {{.Customer}}.",
		"Hi {Customer}",
		"Hi {customer",
		"{{.Phone}}",
		"[{manager}]",
		"{{range 3}}Hi{{end}}",
	}
	for _, sit := range bd.Situations() {
		for _, text := range texts {
			err := checker.CheckText(sit, text)
			var te *reply.TextError
			verr := reply.Validate(text)
			switch {
			case verr == nil && err != nil:
				t.Errorf("CheckText(%s, %q) = %v, want nil as Validate", sit, text, err)
			case verr != nil && !errors.As(verr, &te):
				t.Fatalf("Validate(%q) = %v, want a *reply.TextError", text, verr)
			case verr != nil && (err == nil || err.Error() != te.Err.Error()):
				t.Errorf("CheckText(%s, %q) = %v, want %q", sit, text, err, te.Err.Error())
			case err != nil && strings.HasPrefix(err.Error(), "reply:"):
				t.Errorf("CheckText(%s, %q) = %q, want no package prefix", sit, text, err)
			}
		}
	}
	if err := checker.CheckText(bd.DialogReceived, "Hi {client}"); err == nil || !strings.HasPrefix(err.Error(), "unknown placeholder {client}") {
		t.Errorf("CheckText(unknown placeholder) = %v", err)
	}
}
