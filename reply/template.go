package reply

import (
	"context"
	"errors"
	"fmt"
	"sync"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/internal/replytext"
)

// Vars are the values a reply text may use. A text names them with
// placeholders in braces:
//
//	Hello[, {customer_first_name}]! {manager} will answer you shortly.
//
// {customer} and {manager} are full names, {customer_first_name} and
// {manager_first_name} first names (see [Placeholders]). A part in square
// brackets that holds a placeholder is left out when one of its
// placeholders has no value; square brackets without a placeholder are
// plain text. Any other brace makes the text invalid, so a mistyped
// placeholder is caught by [Validate] (and by bd.Settings.Validate) when
// the text is saved, not when it is sent. The values are inserted as they
// are, without escaping: the text is sent as a plain chat message, trimmed
// of surrounding white space.
//
// A text holding "{{" is in the earlier form, a text/template over
// .Manager, .Customer and .Situation (range, define, template and block
// refused). Such texts are still rendered; [Upgrade] turns the simple ones
// into placeholders.
type Vars struct {
	// Manager is the assigned manager's display name, for
	// bd.ManagerAssigned; empty in the other situations.
	Manager string
	// ManagerFirstName is the manager's first name.
	ManagerFirstName string
	// Customer is the customer's display name as MessageGateway knows it;
	// it may be empty.
	Customer string
	// CustomerFirstName is the customer's first name; it may be empty.
	CustomerFirstName string
	// Situation is the situation being replied to, e.g. "no_manager_online";
	// only texts in the earlier form can use it.
	Situation bd.Situation
}

// Placeholders returns the placeholders a text may use, e.g. "{customer}",
// in the order a settings page offers them.
func Placeholders() []string {
	ps := replytext.Placeholders()
	for i, p := range ps {
		ps[i] = "{" + p + "}"
	}
	return ps
}

// Upgrade turns a text in the earlier form ({{.Manager}}) into placeholders
// ({manager}) when it uses only the fields and {{if .X}}...{{end}} around
// them; ok is false when it cannot, and the text keeps working as it is.
func Upgrade(text string) (upgraded string, ok bool) { return replytext.Upgrade(text) }

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

// Template is a [Replier] that renders the request's text with the
// placeholders of [Vars] and sends the result through a [Sender].
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

var (
	_ Replier     = (*Template)(nil)
	_ TextChecker = (*Template)(nil)
)

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
// req.Text rendered with the manager's and customer's names, trimmed of
// surrounding white space. It returns a *[TextError] when req.Text is
// empty, does not parse, fails to render or renders to white space only.
func (t *Template) Render(req Request) (string, error) {
	txt, err := t.cache.get(req.Text)
	if err != nil {
		return "", &TextError{Situation: req.Situation, Err: err}
	}
	// The full names (bd.Manager.Name, bd.Customer.Name) are written from
	// their parts as the text is rendered.
	out, err := txt.Render(replytext.Values{
		ManagerFirstName:  req.Manager.FirstName,
		ManagerLastName:   req.Manager.LastName,
		CustomerFirstName: req.Dialog.Customer.FirstName,
		CustomerLastName:  req.Dialog.Customer.LastName,
		Situation:         string(req.Situation),
	})
	if err != nil {
		return "", &TextError{Situation: req.Situation, Err: err}
	}
	return out, nil
}

// Validate checks that text can be used as a reply text: it is not empty,
// it parses, it uses only the placeholders of [Vars], and with sample
// names it renders to something other than white space. It returns a
// *[TextError] saying what is wrong, or nil. bd.Settings.Validate applies
// the same check to every reply text, and so does [Template.CheckText].
func Validate(text string) error {
	if err := replytext.Validate(text); err != nil {
		return &TextError{Err: err}
	}
	return nil
}

// CheckText implements [TextChecker] with the check of [Validate]: text
// must parse, use only the placeholders of [Vars], and render to something
// other than white space with sample names and with no names. The error
// says what is wrong, without a package prefix, e.g. "unknown placeholder
// {client}: use {customer}, {customer_first_name}, {manager} or
// {manager_first_name}"; the same text is fine in every situation.
func (t *Template) CheckText(_ bd.Situation, text string) error {
	return replytext.Validate(text)
}

// maxCached bounds the number of parsed texts a Template keeps.
const maxCached = 4096

// textCache maps texts to their parsed form (or parse errors). When it is
// full, the oldest entry goes.
type textCache struct {
	mu    sync.RWMutex
	m     map[string]parsed
	order []string // insertion order, oldest first
}

type parsed struct {
	text *replytext.Text
	err  error
}

func (c *textCache) get(text string) (*replytext.Text, error) {
	c.mu.RLock()
	p, ok := c.m[text]
	c.mu.RUnlock()
	if ok {
		return p.text, p.err
	}
	txt, err := replytext.Parse(text)
	p = parsed{text: txt, err: err}

	c.mu.Lock()
	defer c.mu.Unlock()
	if q, ok := c.m[text]; ok { // parsed meanwhile by another caller
		return q.text, q.err
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
	return p.text, p.err
}

// len returns the number of cached texts.
func (c *textCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
