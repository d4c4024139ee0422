package reply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"

	bd "github.com/botdistributor/botdistributor"
)

// Vars are the fields a reply text may use, with text/template syntax:
//
//	Hello, {{.Customer}}! {{.Manager}} will answer you shortly.
//
// Conditions ({{if .Manager}}...{{else}}...{{end}}, {{with}}) and the
// text/template functions (printf, len, eq, ...) work; range, define,
// template and block are refused, as a reply has nothing to loop over and
// must render quickly. A field not listed here makes the text invalid. The
// values are inserted as they are, without escaping: the text is sent as a
// plain chat message, trimmed of surrounding white space.
type Vars struct {
	// Manager is the assigned manager's display name, for
	// bd.ManagerAssigned; empty in the other situations.
	Manager string
	// Customer is the customer's display name as MessageGateway knows it;
	// it may be empty.
	Customer string
	// Situation is the situation being replied to, e.g. "no_manager_online".
	Situation bd.Situation
}

// TextError reports a reply text that cannot be used: it is empty, does not
// parse, fails to execute or renders to nothing. Trying again will not help;
// the account's text must be changed.
type TextError struct {
	// Situation is the situation whose text is wrong; empty when the error
	// comes from [Validate].
	Situation bd.Situation
	// Err says what is wrong.
	Err error
}

// Error implements error, e.g. `reply: text for situation
// "manager_assigned": template: reply:1: function "Foo" not defined`.
func (e *TextError) Error() string {
	if e.Situation == "" {
		return "reply: text: " + e.Err.Error()
	}
	return fmt.Sprintf("reply: text for situation %q: %v", e.Situation, e.Err)
}

// Unwrap returns e.Err.
func (e *TextError) Unwrap() error { return e.Err }

var (
	errEmptyText    = errors.New("is empty")
	errEmptyMessage = errors.New("renders to an empty message")
)

// Template is a [Replier] that renders the request's text as a
// text/template over [Vars] and sends the result through a [Sender].
//
// Parsed texts are cached, so replying with the same text again does not
// parse it again; the cache holds at most a few thousand texts and forgets
// the oldest ones beyond that.
//
// A Template is safe for concurrent use.
type Template struct {
	sender Sender
	cache  textCache
}

var _ Replier = (*Template)(nil)

// NewTemplate returns a Template that sends through s. It fails when s is
// nil.
func NewTemplate(s Sender) (*Template, error) {
	if s == nil {
		return nil, errors.New("reply: template: sender is nil")
	}
	return &Template{sender: s}, nil
}

// Reply renders req.Text with the vars of req (see [Template.Render]) and
// sends the result into req.Dialog's chat. A text that cannot be used gives
// a *[TextError] naming the situation, and nothing is sent. An error from
// the Sender is returned wrapped (errors.Is and errors.As reach the
// Sender's error, e.g. mg.ErrAmbiguous or the delay of mg.RetryAfter); the
// reply then may or may not have been sent, and the caller retries with
// req.Attempt one higher. When ctx is already done or the dialog has no
// chat id, Reply sends nothing and returns an error saying so.
//
// On a retry (req.Attempt > 1), when the Sender implements [Checker],
// Reply first asks it whether the rendered text already landed in the
// dialog, and returns nil without sending when it did; when the check
// fails, Reply returns its error and sends nothing, so that a later retry
// checks again. The text is rendered the same way on every attempt, so
// the check compares like with like.
func (t *Template) Reply(ctx context.Context, req Request) error {
	text, err := t.Render(req)
	if err != nil {
		return err
	}
	if req.Dialog.Chat == 0 {
		return fmt.Errorf("reply: %s reply for dialog %d: the dialog has no chat id", req.Situation, req.Dialog.ID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("reply: %s reply to chat %d: %w", req.Situation, req.Dialog.Chat, err)
	}
	if c, ok := t.sender.(Checker); ok && req.Attempt > 1 {
		sent, err := c.HasSent(ctx, req.Dialog.Account, req.Dialog.Chat, req.Dialog.ID, text)
		if err != nil {
			return fmt.Errorf("reply: %s reply to chat %d, attempt %d: checking whether an earlier attempt landed: %w", req.Situation, req.Dialog.Chat, req.Attempt, err)
		}
		if sent {
			return nil
		}
	}
	if err := t.sender.Send(ctx, req.Dialog.Account, req.Dialog.Chat, text); err != nil {
		return fmt.Errorf("reply: send %s reply to chat %d: %w", req.Situation, req.Dialog.Chat, err)
	}
	return nil
}

// Render returns the text Reply would send for req, without sending it:
// req.Text executed with Vars{Manager: req.Manager.Name(), Customer:
// req.Dialog.Customer.Name(), Situation: req.Situation}, trimmed of
// surrounding white space. It returns a *[TextError] when req.Text is
// empty, does not parse, fails to execute or renders to white space only.
func (t *Template) Render(req Request) (string, error) {
	if strings.TrimSpace(req.Text) == "" {
		return "", &TextError{Situation: req.Situation, Err: errEmptyText}
	}
	p, err := t.cache.get(req.Text)
	if err != nil {
		return "", &TextError{Situation: req.Situation, Err: err}
	}
	v := Vars{
		Manager:   req.Manager.Name(),
		Customer:  req.Dialog.Customer.Name(),
		Situation: req.Situation,
	}
	var out string
	if p.plan != nil {
		out, err = p.plan.render(v)
	} else {
		out, err = execute(p.tmpl, v)
	}
	if err != nil {
		return "", &TextError{Situation: req.Situation, Err: err}
	}
	return out, nil
}

// sampleVars are the values Validate renders a text with.
var sampleVars = Vars{Manager: "Anna Smith", Customer: "John Doe", Situation: bd.ManagerAssigned}

// Validate checks that text can be used as a reply text: it is not empty,
// it parses, it uses only the fields of [Vars], and with sample names it
// renders to something other than white space. It returns a *[TextError]
// saying what is wrong, or nil. A settings page can call it before saving.
func Validate(text string) error {
	if strings.TrimSpace(text) == "" {
		return &TextError{Err: errEmptyText}
	}
	tmpl, err := parseText(text)
	if err != nil {
		return &TextError{Err: err}
	}
	if _, err := execute(tmpl, sampleVars); err != nil {
		return &TextError{Err: err}
	}
	return nil
}

// errConstruct is the error for a text using a construct that has no use in
// a reply and could make rendering slow.
var errConstruct = errors.New("may not use range, define, template or block")

func parseText(text string) (*template.Template, error) {
	tmpl, err := template.New("reply").Parse(text)
	if err != nil {
		return nil, err
	}
	for _, t := range tmpl.Templates() {
		if t.Name() != tmpl.Name() {
			return nil, errConstruct // {{define}} or {{block}}
		}
	}
	if tmpl.Tree != nil && loopsOrCalls(tmpl.Tree.Root) {
		return nil, errConstruct
	}
	return tmpl, nil
}

// loopsOrCalls reports whether the tree under n has a range or a template
// call.
func loopsOrCalls(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return false
		}
		for _, c := range n.Nodes {
			if loopsOrCalls(c) {
				return true
			}
		}
	case *parse.IfNode:
		return loopsOrCalls(n.List) || loopsOrCalls(n.ElseList)
	case *parse.WithNode:
		return loopsOrCalls(n.List) || loopsOrCalls(n.ElseList)
	case *parse.RangeNode, *parse.TemplateNode:
		return true
	}
	return false
}

func execute(tmpl *template.Template, v Vars) (string, error) {
	var b strings.Builder
	if err := tmpl.Execute(&limitedWriter{w: &b, n: maxMessage}, v); err != nil {
		return "", err
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "", errEmptyMessage
	}
	return out, nil
}

// maxMessage bounds a rendered reply, so that a text such as
// {{printf "%999999s" "x"}} cannot build a huge message.
const maxMessage = 64 << 10

// limitedWriter fails writes beyond n bytes.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("renders to more than %d bytes", maxMessage)
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// maxCached bounds the number of parsed texts a Template keeps.
const maxCached = 4096

// textCache maps texts to their parsed templates (or parse errors). When it
// is full, the oldest entry goes.
type textCache struct {
	mu    sync.RWMutex
	m     map[string]parsed
	order []string // insertion order, oldest first
}

type parsed struct {
	tmpl *template.Template
	// plan renders the text without text/template when it is only literal
	// text and plain fields, which is what nearly every reply text is.
	plan plan
	err  error
}

func (c *textCache) get(text string) (parsed, error) {
	c.mu.RLock()
	p, ok := c.m[text]
	c.mu.RUnlock()
	if ok {
		return p, p.err
	}
	tmpl, err := parseText(text)
	p = parsed{tmpl: tmpl, err: err}
	if err == nil {
		p.plan = planOf(tmpl)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if q, ok := c.m[text]; ok { // parsed meanwhile by another caller
		return q, q.err
	}
	if c.m == nil {
		c.m = make(map[string]parsed)
	}
	if len(c.order) >= maxCached {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[text] = p
	c.order = append(c.order, text)
	return p, p.err
}

// plan is a text made of literal parts and the fields of Vars.
type plan []part

// part is literal text (field == 0) or one field of Vars.
type part struct {
	text  string
	field int
}

const (
	fieldManager = iota + 1
	fieldCustomer
	fieldSituation
)

// planOf returns the plan of tmpl, or nil when it uses anything but literal
// text and {{.Manager}}, {{.Customer}} and {{.Situation}}.
func planOf(tmpl *template.Template) plan {
	if tmpl.Tree == nil || tmpl.Tree.Root == nil {
		return nil
	}
	var p plan
	for _, n := range tmpl.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			p = append(p, part{text: string(n.Text)})
		case *parse.ActionNode:
			pipe := n.Pipe
			if pipe == nil || len(pipe.Decl) > 0 || len(pipe.Cmds) != 1 || len(pipe.Cmds[0].Args) != 1 {
				return nil
			}
			f, ok := pipe.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 {
				return nil
			}
			switch f.Ident[0] {
			case "Manager":
				p = append(p, part{field: fieldManager})
			case "Customer":
				p = append(p, part{field: fieldCustomer})
			case "Situation":
				p = append(p, part{field: fieldSituation})
			default:
				return nil
			}
		default:
			return nil
		}
	}
	if p == nil {
		p = plan{}
	}
	return p
}

// render gives the same result as executing the template the plan came from.
func (p plan) render(v Vars) (string, error) {
	n := 0
	for _, pt := range p {
		n += len(pt.text) + len(pt.value(v))
	}
	if n > maxMessage {
		return "", fmt.Errorf("renders to more than %d bytes", maxMessage)
	}
	var b strings.Builder
	b.Grow(n)
	for _, pt := range p {
		b.WriteString(pt.text)
		b.WriteString(pt.value(v))
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "", errEmptyMessage
	}
	return out, nil
}

func (pt part) value(v Vars) string {
	switch pt.field {
	case fieldManager:
		return v.Manager
	case fieldCustomer:
		return v.Customer
	case fieldSituation:
		return string(v.Situation)
	}
	return ""
}

// len returns the number of cached texts.
func (c *textCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
