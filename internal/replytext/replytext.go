// Package replytext parses and renders the texts of automatic replies, for
// the settings' validation (package botdistributor) and the template
// replier (package reply), so that both agree on what a valid text is.
//
// A text is plain words with placeholders in braces:
//
//	Hello[, {customer}]! {manager} will answer you shortly.
//
// The placeholders are listed by [Placeholders]. A part in square brackets
// that holds a placeholder is left out when one of its placeholders has no
// value (a customer without a name above gives "Hello! ..."); square
// brackets without a placeholder are plain text. Any other brace is an
// error, so a mistyped placeholder is caught when the text is saved, not
// when it is sent.
//
// A text holding "{{" is in the earlier form, a text/template over the
// fields .Manager, .Customer and .Situation (with the same restrictions as
// before: no range, define, template or block). It is still rendered, so
// stored texts keep working; [Upgrade] turns the simple ones into the
// placeholder form.
package replytext

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"
	"text/template/parse"
)

// Values are what the placeholders stand for.
//
// {manager} is Manager when it is set, else ManagerFirstName and
// ManagerLastName joined with a space (or whichever of them is set), and
// likewise {customer}: a caller holding the names apart passes them so,
// and the full name is written straight into the text, never built on its
// own.
type Values struct {
	Manager           string // {manager}: the manager's full name
	ManagerFirstName  string // {manager_first_name}
	ManagerLastName   string // with ManagerFirstName, {manager} when Manager is empty
	Customer          string // {customer}: the customer's name
	CustomerFirstName string // {customer_first_name}
	CustomerLastName  string // with CustomerFirstName, {customer} when Customer is empty
	Situation         string // only for texts in the earlier form (.Situation)
}

// The placeholders, in the order a page offers them.
const (
	Manager           = "manager"
	ManagerFirstName  = "manager_first_name"
	Customer          = "customer"
	CustomerFirstName = "customer_first_name"
)

// Placeholders returns the placeholder names in the order a page offers
// them.
func Placeholders() []string {
	return []string{Customer, CustomerFirstName, Manager, ManagerFirstName}
}

// Sample are the values Validate renders a text with.
var Sample = Values{Manager: "Anna Smith", ManagerFirstName: "Anna", Customer: "John Doe", CustomerFirstName: "John", Situation: "manager_assigned"}

var (
	// ErrEmpty: the text is empty or white space.
	ErrEmpty = errors.New("is empty")
	// ErrEmptyMessage: the text renders to white space only.
	ErrEmptyMessage = errors.New("renders to an empty message")
	errConstruct    = errors.New("may not use range, define, template or block")
)

// MaxMessage bounds a rendered text.
const MaxMessage = 64 << 10

// Text is a parsed reply text. It is immutable and safe for concurrent use.
type Text struct {
	parts  []part
	legacy *template.Template // set for a text in the earlier form
}

// part is literal text (name == "") or a placeholder; section numbers the
// bracketed part it belongs to (0: none).
type part struct {
	text    string
	name    string
	section int
}

// IsLegacy reports whether s is in the earlier text/template form.
func IsLegacy(s string) bool { return strings.Contains(s, "{{") }

// Parse parses s. The error says what is wrong, naming the placeholder or
// the position.
func Parse(s string) (*Text, error) {
	if strings.TrimSpace(s) == "" {
		return nil, ErrEmpty
	}
	if IsLegacy(s) {
		tmpl, err := parseLegacy(s)
		if err != nil {
			return nil, err
		}
		if up, ok := Upgrade(s); ok && strings.TrimSpace(up) != "" {
			return Parse(up) // the same output, without text/template
		}
		return &Text{legacy: tmpl}, nil
	}
	t := &Text{}
	var lit strings.Builder
	flush := func(section int) {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{text: lit.String(), section: section})
			lit.Reset()
		}
	}
	section, sections := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '{':
			j := strings.IndexByte(s[i+1:], '}')
			if j < 0 {
				return nil, fmt.Errorf("the brace at character %d is not closed: write a placeholder such as {%s}", runeIndex(s, i), Customer)
			}
			name := s[i+1 : i+1+j]
			if !known(name) {
				return nil, fmt.Errorf("unknown placeholder {%s}: use %s", name, list())
			}
			flush(section)
			t.parts = append(t.parts, part{name: name, section: section})
			i += j + 1
		case '}':
			return nil, fmt.Errorf("the brace at character %d closes nothing", runeIndex(s, i))
		case '[':
			end := strings.IndexByte(s[i+1:], ']')
			if section == 0 && end >= 0 && strings.Contains(s[i+1:i+1+end], "{") {
				flush(section)
				sections++
				section = sections
				continue
			}
			lit.WriteByte(c)
		case ']':
			if section != 0 {
				flush(section)
				section = 0
				continue
			}
			lit.WriteByte(c)
		default:
			lit.WriteByte(c)
		}
	}
	flush(section)
	return t, nil
}

func known(name string) bool {
	switch name {
	case Manager, ManagerFirstName, Customer, CustomerFirstName:
		return true
	}
	return false
}

func list() string {
	ps := Placeholders()
	for i, p := range ps {
		ps[i] = "{" + p + "}"
	}
	return strings.Join(ps[:len(ps)-1], ", ") + " or " + ps[len(ps)-1]
}

// runeIndex returns the 1-based character position of byte offset i.
func runeIndex(s string, i int) int { return len([]rune(s[:i])) + 1 }

// value returns what the placeholder stands for in up to two parts, to be
// joined with a space when both are set.
func (v *Values) value(name string) (first, last string) {
	switch name {
	case Manager:
		if v.Manager != "" {
			return v.Manager, ""
		}
		return v.ManagerFirstName, v.ManagerLastName
	case ManagerFirstName:
		return v.ManagerFirstName, ""
	case Customer:
		if v.Customer != "" {
			return v.Customer, ""
		}
		return v.CustomerFirstName, v.CustomerLastName
	case CustomerFirstName:
		return v.CustomerFirstName, ""
	}
	return "", ""
}

// of returns what the placeholder stands for as one string.
func (v *Values) of(name string) string {
	first, last := v.value(name)
	switch {
	case last == "":
		return first
	case first == "":
		return last
	}
	return first + " " + last
}

// size returns the length of what the placeholder stands for.
func (v *Values) size(name string) int {
	first, last := v.value(name)
	n := len(first) + len(last)
	if first != "" && last != "" {
		n++
	}
	return n
}

// Render returns the text with the values put in, trimmed of surrounding
// white space. Values are inserted as they are: the text is a plain chat
// message.
func (t *Text) Render(v Values) (string, error) {
	if t.legacy != nil {
		return executeLegacy(t.legacy, v)
	}
	skip := map[int]bool{}
	for _, p := range t.parts {
		if p.section != 0 && p.name != "" && v.size(p.name) == 0 {
			skip[p.section] = true
		}
	}
	n := 0
	for _, p := range t.parts {
		if !skip[p.section] {
			n += len(p.text) + v.size(p.name)
		}
	}
	if n > MaxMessage {
		return "", fmt.Errorf("renders to more than %d bytes", MaxMessage)
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range t.parts {
		if skip[p.section] {
			continue
		}
		b.WriteString(p.text)
		first, last := v.value(p.name)
		b.WriteString(first)
		if first != "" && last != "" {
			b.WriteByte(' ')
		}
		b.WriteString(last)
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "", ErrEmptyMessage
	}
	return out, nil
}

// Validate checks that s can be used as a reply text: it is not empty, it
// parses, and it renders to something other than white space both with
// sample names and with no names at all (a customer without a name, a
// situation without a manager).
func Validate(s string) error {
	t, err := Parse(s)
	if err != nil {
		return err
	}
	if _, err := t.Render(Sample); err != nil {
		return err
	}
	if _, err := t.Render(Values{}); errors.Is(err, ErrEmptyMessage) {
		return errNoNames
	} else if err != nil {
		return err
	}
	return nil
}

var errNoNames = errors.New("renders to an empty message when the names are unknown: add some words outside the placeholders")

// Upgrade turns a text in the earlier form into the placeholder form when
// it uses only literal text, {{.Manager}}, {{.Customer}} and
// {{if .X}}...{{end}} around such parts (which become a bracketed part),
// and its literal text has no braces or square brackets. ok is false when
// it cannot; the text then stays in the earlier form, which still works.
func Upgrade(s string) (string, bool) {
	if !IsLegacy(s) {
		return s, false
	}
	tmpl, err := parseLegacy(s)
	if err != nil || tmpl.Tree == nil || tmpl.Tree.Root == nil {
		return s, false
	}
	var b strings.Builder
	if !upgradeList(&b, tmpl.Tree.Root, false) {
		return s, false
	}
	return b.String(), true
}

func upgradeList(b *strings.Builder, l *parse.ListNode, inSection bool) bool {
	if l == nil {
		return true
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			if strings.ContainsAny(string(n.Text), "{}[]") {
				return false
			}
			b.Write(n.Text)
		case *parse.ActionNode:
			name, ok := field(n.Pipe)
			if !ok {
				return false
			}
			b.WriteString("{" + name + "}")
		case *parse.IfNode:
			// {{if .Customer}}, {{.Customer}}{{end}}: the part is left out
			// when the field is empty, which is what a bracketed part does
			// when its placeholder is, provided the part uses that field.
			name, ok := field(n.Pipe)
			if !ok || inSection || n.ElseList != nil {
				return false
			}
			var inner strings.Builder
			if !upgradeList(&inner, n.List, true) || !strings.Contains(inner.String(), "{"+name+"}") {
				return false
			}
			b.WriteString("[" + inner.String() + "]")
		default:
			return false
		}
	}
	return true
}

// field returns the placeholder of a pipe that is just .Manager or .Customer.
func field(pipe *parse.PipeNode) (string, bool) {
	if pipe == nil || len(pipe.Decl) > 0 || len(pipe.Cmds) != 1 || len(pipe.Cmds[0].Args) != 1 {
		return "", false
	}
	f, ok := pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return "", false
	}
	switch f.Ident[0] {
	case "Manager":
		return Manager, true
	case "Customer":
		return Customer, true
	}
	return "", false
}

func parseLegacy(s string) (*template.Template, error) {
	tmpl, err := template.New("reply").Option("missingkey=error").Parse(s)
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

func executeLegacy(tmpl *template.Template, v Values) (string, error) {
	data := map[string]string{"Manager": v.of(Manager), "Customer": v.of(Customer), "Situation": v.Situation}
	var b strings.Builder
	if err := tmpl.Execute(&limitedWriter{w: &b, n: MaxMessage}, data); err != nil {
		return "", err
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "", ErrEmptyMessage
	}
	return out, nil
}

// limitedWriter fails writes beyond n bytes, so that a text such as
// {{printf "%999999s" "x"}} cannot build a huge message.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("renders to more than %d bytes", MaxMessage)
	}
	l.n -= len(p)
	return l.w.Write(p)
}
