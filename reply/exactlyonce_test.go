package reply_test

import (
	"context"
	"errors"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/reply/replytest"
)

// plainSender is a reply.Sender that is no reply.Checker.
type plainSender struct{ rec *replytest.Recorder }

func (s plainSender) Send(ctx context.Context, account bd.AccountID, chat bd.ChatID, text string) error {
	return s.rec.Send(ctx, account, chat, text)
}

func TestTemplateRetryChecksWhetherTheTextLanded(t *testing.T) {
	lost := errors.New("mg: outcome unknown")
	const text = "Nobody is online."
	cases := []struct {
		name    string
		prepare func(rec *replytest.Recorder) // the first attempt's faults
		retry   int                           // the retry's Attempt
		checked bool                          // the retry asked the Checker
		sent    int                           // how often the text was sent in the end
		errRe   bool                          // the retry fails
	}{
		{"landed, retry skips", func(r *replytest.Recorder) { r.FailAfterNext(1, lost) }, 2, true, 1, false},
		{"landed, later retry skips", func(r *replytest.Recorder) { r.FailAfterNext(1, lost) }, 5, true, 1, false},
		{"not landed, retry sends", func(r *replytest.Recorder) { r.FailNext(1, lost) }, 2, true, 1, false},
		{"check fails, retry fails", func(r *replytest.Recorder) { r.FailNext(1, lost); r.FailCheckNext(1, nil) }, 2, true, 0, true},
		{"first attempt again sends blindly", func(r *replytest.Recorder) { r.FailAfterNext(1, lost) }, 1, false, 2, false},
		{"attempt 0 is a first attempt", func(r *replytest.Recorder) { r.FailAfterNext(1, lost) }, 0, false, 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, rec := newTemplate(t)
			tc.prepare(rec)
			req := reply.Request{Dialog: dialog, Situation: bd.NoManagerOnline, Text: text, Attempt: 1}
			if err := tmpl.Reply(t.Context(), req); !errors.Is(err, lost) {
				t.Fatalf("first attempt = %v, want the sender's error", err)
			}
			req.Attempt = tc.retry
			err := tmpl.Reply(t.Context(), req)
			if (err != nil) != tc.errRe {
				t.Fatalf("retry = %v, want failure %v", err, tc.errRe)
			}
			if tc.errRe && !errors.Is(err, replytest.ErrInjected) {
				t.Fatalf("retry = %v, want the checker's error", err)
			}
			if got := rec.Checks() > 0; got != tc.checked {
				t.Errorf("checked = %v, want %v", got, tc.checked)
			}
			if got := rec.CountText(dialog.Chat, text); got != tc.sent {
				t.Errorf("text sent %d times, want %d", got, tc.sent)
			}
		})
	}
}

func TestTemplateRetryWithoutCheckerSendsAgain(t *testing.T) {
	rec := replytest.NewRecorder()
	tmpl, err := reply.NewTemplate(plainSender{rec})
	if err != nil {
		t.Fatal(err)
	}
	rec.FailAfterNext(1, nil)
	req := reply.Request{Dialog: dialog, Situation: bd.DialogReceived, Text: "Hi", Attempt: 1}
	if err := tmpl.Reply(t.Context(), req); err == nil {
		t.Fatal("first attempt succeeded through an injected failure")
	}
	req.Attempt = 2
	if err := tmpl.Reply(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if rec.Checks() != 0 || rec.CountText(dialog.Chat, "Hi") != 2 {
		t.Errorf("checks %d, sent %d times: a sender without a checker gets the text again", rec.Checks(), rec.CountText(dialog.Chat, "Hi"))
	}
}

// A job that retries until Reply succeeds delivers each reply exactly once,
// whatever mix of lost answers, refusals and failed checks it meets.
func TestTemplateRetryLoopDeliversExactlyOnce(t *testing.T) {
	tmpl, rec := newTemplate(t)
	faults := []func(){
		func() { rec.FailAfterNext(1, nil) },
		func() { rec.FailNext(1, nil) },
		func() { rec.FailAfterNext(1, nil); rec.FailCheckNext(2, nil) },
		func() { rec.FailNext(2, nil); rec.FailCheckNext(1, nil) },
		func() {},
	}
	for i := range 50 {
		d := dialog
		d.ID = bd.DialogID(1000 + i)
		d.Chat = bd.ChatID(2000 + i)
		faults[i%len(faults)]()
		req := reply.Request{Dialog: d, Situation: bd.AllManagersBusy, Text: "Everyone is busy, {{.Customer}}."}
		for attempt := 1; ; attempt++ {
			if attempt > 10 {
				t.Fatalf("dialog %d: no success after 10 attempts", d.ID)
			}
			req.Attempt = attempt
			if err := tmpl.Reply(t.Context(), req); err == nil {
				break
			}
		}
		if got := rec.CountText(d.Chat, "Everyone is busy, Olga Petrova."); got != 1 {
			t.Fatalf("dialog %d (faults %d): sent %d times, want exactly 1", d.ID, i%len(faults), got)
		}
	}
}
