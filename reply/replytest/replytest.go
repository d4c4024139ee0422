// Package replytest provides [Recorder], a fake [reply.Replier],
// [reply.Sender] and [reply.Checker] that records what it is asked to send,
// for tests of code that sends automatic replies:
//
//	rec := replytest.NewRecorder()
//	// Hand rec to the code under test as its reply.Replier (or as the
//	// reply.Sender behind a reply.Template), run it, then:
//	if n := rec.Count(dialog.ID, bd.NoManagerOnline); n != 1 {
//		t.Errorf("sent %d no-manager replies, want 1", n)
//	}
//
// To test that replies reach the customer exactly once under failures,
// make some attempts fail after they took effect with
// [Recorder.FailAfterNext] (the reply is recorded, the caller gets an
// error, as when a messenger's answer is lost) and check the counts: a
// retry must not record the reply again.
package replytest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/reply"
)

// Via says which method recorded a [Sent].
type Via uint8

// The ways a reply reaches a Recorder.
const (
	// ViaReply: Recorder.Reply, used as a reply.Replier.
	ViaReply Via = iota + 1
	// ViaSend: Recorder.Send, used as a reply.Sender, e.g. behind a
	// reply.Template.
	ViaSend
)

// String implements fmt.Stringer.
func (v Via) String() string {
	switch v {
	case ViaReply:
		return "reply"
	case ViaSend:
		return "send"
	}
	return fmt.Sprintf("Via(%d)", uint8(v))
}

// Sent is one reply a Recorder took.
type Sent struct {
	Via     Via
	Account bd.AccountID
	Chat    bd.ChatID
	// Dialog and Situation are known only for replies recorded by Reply;
	// Send does not get them and leaves them zero.
	Dialog    bd.DialogID
	Situation bd.Situation
	// Manager is the request's manager, for replies recorded by Reply.
	Manager bd.ManagerID
	// Text is the request's unrendered text for Reply, the rendered text
	// for Send.
	Text string
	// Attempt is the request's attempt, for replies recorded by Reply.
	Attempt int
}

// Recorder records replies instead of sending them. It implements
// [reply.Replier], [reply.Sender] and [reply.Checker]. Failures can be
// injected with [Recorder.FailNext] (nothing recorded), [Recorder.FailAfterNext]
// (recorded, yet an error returned), [Recorder.FailCheckNext] or the Fail
// field.
//
// As a Replier it keeps the exactly-once contract of reply.Request.Attempt:
// a retry (Attempt > 1) of a reply already recorded for the same dialog and
// situation records nothing and succeeds. First attempts are always
// recorded, so a caller that sends a reply twice as new shows up in the
// counts.
//
// A Recorder is safe for concurrent use. The zero value is ready to use;
// NewRecorder only saves writing &replytest.Recorder{}.
type Recorder struct {
	// Fail, when set, is called with every reply before it is recorded,
	// after FailNext's failures are used up; a non-nil error is returned
	// to the caller and the reply is not recorded. Fail may block, e.g. to
	// hold a reply until a test lets it go. Set it before the Recorder is
	// first used; it is called without the Recorder's lock held.
	Fail func(ctx context.Context, s Sent) error

	mu       sync.Mutex
	sent     []Sent
	attempts int
	checks   int
	failN    int
	failErr  error
	afterN   int
	afterErr error
	checkN   int
	checkErr error
	changed  chan struct{} // closed and replaced whenever sent grows
}

var (
	_ reply.Replier = (*Recorder)(nil)
	_ reply.Sender  = (*Recorder)(nil)
	_ reply.Checker = (*Recorder)(nil)
)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Reply records req. It returns ctx's error when ctx is already done, and
// an injected failure when one is due; in both cases nothing is recorded.
// A retry (req.Attempt > 1) of a reply already recorded for the dialog and
// situation records nothing and returns nil.
func (r *Recorder) Reply(ctx context.Context, req reply.Request) error {
	return r.record(ctx, Sent{
		Via:       ViaReply,
		Account:   req.Dialog.Account,
		Chat:      req.Dialog.Chat,
		Dialog:    req.Dialog.ID,
		Situation: req.Situation,
		Manager:   req.Manager.ID,
		Text:      req.Text,
		Attempt:   req.Attempt,
	})
}

// Send records text as sent into chat. It returns ctx's error when ctx is
// already done, and an injected failure when one is due; in both cases
// nothing is recorded (but see FailAfterNext).
func (r *Recorder) Send(ctx context.Context, account bd.AccountID, chat bd.ChatID, text string) error {
	return r.record(ctx, Sent{Via: ViaSend, Account: account, Chat: chat, Text: text})
}

// HasSent implements [reply.Checker] over what was recorded: it reports
// whether text was recorded for the account and chat, by Send or by
// Reply, within the dialog (Send records no dialog, so its texts match any
// dialog; dialog 0 matches any). It returns ctx's error when ctx is already
// done, and an injected failure from FailCheckNext when one is due.
func (r *Recorder) HasSent(ctx context.Context, account bd.AccountID, chat bd.ChatID, dialog bd.DialogID, text string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks++
	if r.checkN > 0 {
		r.checkN--
		return false, r.checkErr
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	for i := range r.sent {
		s := &r.sent[i]
		if s.Account == account && s.Chat == chat && s.Text == text && (dialog == 0 || s.Dialog == 0 || s.Dialog == dialog) {
			return true, nil
		}
	}
	return false, nil
}

func (r *Recorder) record(ctx context.Context, s Sent) error {
	r.mu.Lock()
	r.attempts++
	if r.failN > 0 {
		r.failN--
		err := r.failErr
		r.mu.Unlock()
		return err
	}
	r.mu.Unlock()

	if err := ctx.Err(); err != nil {
		return err
	}
	if r.Fail != nil {
		if err := r.Fail(ctx, s); err != nil {
			return err
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if s.Via == ViaReply && s.Attempt > 1 {
		for i := range r.sent {
			if p := &r.sent[i]; p.Via == ViaReply && p.Account == s.Account && p.Dialog == s.Dialog && p.Situation == s.Situation {
				return nil // an earlier attempt landed
			}
		}
	}
	r.sent = append(r.sent, s)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	if r.afterN > 0 {
		r.afterN--
		return r.afterErr
	}
	return nil
}

// FailNext makes the next n calls of Reply or Send return err without
// recording anything. A nil err means a generic "replytest: injected
// failure" error; n <= 0 cancels failures not yet used.
func (r *Recorder) FailNext(n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failN = max(n, 0)
	r.failErr = err
}

// FailAfterNext makes the next n calls of Reply or Send that would record
// something record it and then return err, like a sender whose answer was
// lost after the message was taken. A nil err means [ErrInjected]; n <= 0
// cancels failures not yet used. FailNext's failures come first.
func (r *Recorder) FailAfterNext(n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.afterN = max(n, 0)
	r.afterErr = err
}

// FailCheckNext makes the next n calls of HasSent return err. A nil err
// means [ErrInjected]; n <= 0 cancels failures not yet used.
func (r *Recorder) FailCheckNext(n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkN = max(n, 0)
	r.checkErr = err
}

// ErrInjected is the error FailNext, FailAfterNext and FailCheckNext
// inject when given none.
var ErrInjected = errors.New("replytest: injected failure")

// Sent returns a copy of everything recorded, in the order it was recorded.
func (r *Recorder) Sent() []Sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sent(nil), r.sent...)
}

// Len returns how many replies were recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

// Checks returns how many times HasSent was called.
func (r *Recorder) Checks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checks
}

// CountText returns how many times text was recorded for chat, by Reply or
// Send; more than one means the chat got the text more than once.
func (r *Recorder) CountText(chat bd.ChatID, text string) int {
	return r.countWhere(func(s *Sent) bool { return s.Chat == chat && s.Text == text })
}

// Attempts returns how many times Reply and Send were called, including
// calls that failed and recorded nothing.
func (r *Recorder) Attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// Count returns how many replies were recorded for dialog in situation.
// Only replies recorded by Reply carry a dialog and a situation.
func (r *Recorder) Count(dialog bd.DialogID, situation bd.Situation) int {
	return r.countWhere(func(s *Sent) bool { return s.Dialog == dialog && s.Situation == situation })
}

// BySituation returns how many replies were recorded in situation, over all
// dialogs. Only replies recorded by Reply carry a situation.
func (r *Recorder) BySituation(situation bd.Situation) int {
	return r.countWhere(func(s *Sent) bool { return s.Situation == situation })
}

// ToChat returns the texts recorded for chat, in order; it covers both
// Reply and Send.
func (r *Recorder) ToChat(chat bd.ChatID) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for i := range r.sent {
		if r.sent[i].Chat == chat {
			out = append(out, r.sent[i].Text)
		}
	}
	return out
}

func (r *Recorder) countWhere(match func(*Sent) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for i := range r.sent {
		if match(&r.sent[i]) {
			n++
		}
	}
	return n
}

// Reset forgets everything recorded, the attempt and check counts and any
// pending injected failures. It leaves Fail as it is.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = nil
	r.attempts, r.checks = 0, 0
	r.failN, r.failErr = 0, nil
	r.afterN, r.afterErr = 0, nil
	r.checkN, r.checkErr = 0, nil
}

// Wait blocks until cond, called with everything recorded so far, returns
// true, or until ctx is done, when it returns ctx's error. cond is called
// once at first and again after every new recording, with the Recorder's
// lock held: it must not call the Recorder, nor keep or modify the slice. Use it to wait for replies that
// other goroutines send, e.g.
//
//	err := rec.Wait(ctx, func(sent []replytest.Sent) bool { return len(sent) >= 2 })
func (r *Recorder) Wait(ctx context.Context, cond func(sent []Sent) bool) error {
	for {
		r.mu.Lock()
		if cond(r.sent[:len(r.sent):len(r.sent)]) {
			r.mu.Unlock()
			return nil
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
