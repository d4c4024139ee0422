package replytest_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/reply"
	"github.com/botdistributor/botdistributor/reply/replytest"
)

func req(dialog bd.DialogID, chat bd.ChatID, s bd.Situation, text string) reply.Request {
	return reply.Request{
		Dialog:    bd.Dialog{Account: "shop.example.com", ID: dialog, Chat: chat},
		Situation: s,
		Text:      text,
		Manager:   bd.Manager{ID: 5},
	}
}

func TestRecorderRecords(t *testing.T) {
	var rec replytest.Recorder // the zero value works
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rec.Reply(ctx, req(1, 10, bd.DialogReceived, "got it")))
	must(rec.Reply(ctx, req(1, 10, bd.ManagerAssigned, "{{.Manager}} here")))
	must(rec.Reply(ctx, req(2, 20, bd.DialogReceived, "got it")))
	must(rec.Send(ctx, "other.example.com", 10, "plain"))
	must(rec.Reply(ctx, req(1, 10, bd.DialogReceived, "got it again")))

	want := []replytest.Sent{
		{Via: replytest.ViaReply, Account: "shop.example.com", Chat: 10, Dialog: 1, Situation: bd.DialogReceived, Manager: 5, Text: "got it"},
		{Via: replytest.ViaReply, Account: "shop.example.com", Chat: 10, Dialog: 1, Situation: bd.ManagerAssigned, Manager: 5, Text: "{{.Manager}} here"},
		{Via: replytest.ViaReply, Account: "shop.example.com", Chat: 20, Dialog: 2, Situation: bd.DialogReceived, Manager: 5, Text: "got it"},
		{Via: replytest.ViaSend, Account: "other.example.com", Chat: 10, Text: "plain"},
		{Via: replytest.ViaReply, Account: "shop.example.com", Chat: 10, Dialog: 1, Situation: bd.DialogReceived, Manager: 5, Text: "got it again"},
	}
	if got := rec.Sent(); !slices.Equal(got, want) {
		t.Errorf("Sent =\n%+v\nwant\n%+v", got, want)
	}
	checks := []struct {
		name      string
		got, want int
	}{
		{"Count(1, received)", rec.Count(1, bd.DialogReceived), 2},
		{"Count(1, assigned)", rec.Count(1, bd.ManagerAssigned), 1},
		{"Count(2, received)", rec.Count(2, bd.DialogReceived), 1},
		{"Count(2, assigned)", rec.Count(2, bd.ManagerAssigned), 0},
		{"BySituation(received)", rec.BySituation(bd.DialogReceived), 3},
		{"BySituation(busy)", rec.BySituation(bd.AllManagersBusy), 0},
		{"Len", rec.Len(), 5},
		{"Attempts", rec.Attempts(), 5},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if got := rec.ToChat(10); !slices.Equal(got, []string{"got it", "{{.Manager}} here", "plain", "got it again"}) {
		t.Errorf("ToChat(10) = %q", got)
	}

	// Sent returns a copy.
	rec.Sent()[0].Text = "changed"
	if rec.Sent()[0].Text != "got it" {
		t.Error("changing Sent's result changed the record")
	}

	rec.Reset()
	if rec.Len() != 0 || rec.Attempts() != 0 || rec.Count(1, bd.DialogReceived) != 0 {
		t.Errorf("after Reset: %d sent, %d attempts", rec.Len(), rec.Attempts())
	}
}

func TestRecorderFailNext(t *testing.T) {
	rec := replytest.NewRecorder()
	boom := errors.New("boom")
	rec.FailNext(2, boom)
	ctx := t.Context()
	if err := rec.Reply(ctx, req(1, 10, bd.DialogReceived, "a")); !errors.Is(err, boom) {
		t.Errorf("first Reply = %v, want boom", err)
	}
	if err := rec.Send(ctx, "shop.example.com", 10, "b"); !errors.Is(err, boom) {
		t.Errorf("Send = %v, want boom", err)
	}
	if err := rec.Reply(ctx, req(1, 10, bd.DialogReceived, "c")); err != nil {
		t.Errorf("third call = %v, want success", err)
	}
	if got := rec.ToChat(10); !slices.Equal(got, []string{"c"}) {
		t.Errorf("recorded %q, want only the call that succeeded", got)
	}
	if rec.Attempts() != 3 {
		t.Errorf("Attempts = %d, want 3", rec.Attempts())
	}

	rec.FailNext(1, nil)
	if err := rec.Reply(ctx, req(1, 10, bd.DialogReceived, "d")); !errors.Is(err, replytest.ErrInjected) {
		t.Errorf("Reply = %v, want ErrInjected", err)
	}

	rec.FailNext(5, boom)
	rec.FailNext(0, nil) // cancels
	if err := rec.Reply(ctx, req(1, 10, bd.DialogReceived, "e")); err != nil {
		t.Errorf("Reply after cancelling failures = %v", err)
	}
	rec.FailNext(5, boom)
	rec.Reset()
	if err := rec.Reply(ctx, req(1, 10, bd.DialogReceived, "f")); err != nil {
		t.Errorf("Reply after Reset = %v", err)
	}
}

func TestRecorderFailFunc(t *testing.T) {
	busy := errors.New("busy")
	rec := &replytest.Recorder{Fail: func(_ context.Context, s replytest.Sent) error {
		if s.Situation == bd.AllManagersBusy {
			return busy
		}
		return nil
	}}
	if err := rec.Reply(t.Context(), req(1, 10, bd.AllManagersBusy, "x")); !errors.Is(err, busy) {
		t.Errorf("Reply = %v, want the Fail error", err)
	}
	if err := rec.Reply(t.Context(), req(1, 10, bd.DialogReceived, "y")); err != nil {
		t.Errorf("Reply = %v", err)
	}
	if rec.Len() != 1 || rec.BySituation(bd.AllManagersBusy) != 0 {
		t.Errorf("recorded %+v", rec.Sent())
	}
	// FailNext comes first.
	rec.FailNext(1, nil)
	if err := rec.Reply(t.Context(), req(1, 10, bd.DialogReceived, "z")); !errors.Is(err, replytest.ErrInjected) {
		t.Errorf("Reply = %v, want ErrInjected", err)
	}
}

func TestRecorderCanceledContext(t *testing.T) {
	rec := replytest.NewRecorder()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := rec.Reply(ctx, req(1, 10, bd.DialogReceived, "x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Reply = %v, want context.Canceled", err)
	}
	if err := rec.Send(ctx, "a", 1, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}
	if rec.Len() != 0 {
		t.Errorf("recorded %+v with a canceled context", rec.Sent())
	}
}

func TestRecorderWait(t *testing.T) {
	rec := replytest.NewRecorder()
	// Hold the replies until the waiter is waiting, so Wait really blocks.
	release := make(chan struct{})
	rec.Fail = func(ctx context.Context, _ replytest.Sent) error {
		<-release
		return nil
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if err := rec.Reply(t.Context(), req(bd.DialogID(i+1), 10, bd.DialogReceived, "x")); err != nil {
				t.Error(err)
			}
		})
	}
	// The first look at the condition sees nothing recorded, since the
	// replies are held; only then are they let go, so Wait must block and
	// be woken by the recordings.
	looks := 0
	err := rec.Wait(t.Context(), func(sent []replytest.Sent) bool {
		looks++
		if looks == 1 {
			if len(sent) != 0 {
				t.Errorf("%d replies recorded while held", len(sent))
			}
			close(release)
		}
		return len(sent) == 3
	})
	if err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if looks < 2 {
		t.Errorf("the condition was checked %d times, want at least 2", looks)
	}
	wg.Wait()
	if rec.Len() != 3 {
		t.Errorf("Len = %d after Wait, want 3", rec.Len())
	}

	// Already true: returns at once.
	if err := rec.Wait(t.Context(), func(sent []replytest.Sent) bool { return len(sent) > 0 }); err != nil {
		t.Errorf("Wait on a true condition = %v", err)
	}
	// Never true: returns when ctx ends.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := rec.Wait(ctx, func([]replytest.Sent) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a false condition = %v, want context.Canceled", err)
	}
}

func TestRecorderBehindTemplate(t *testing.T) {
	rec := replytest.NewRecorder()
	tmpl, err := reply.NewTemplate(rec)
	if err != nil {
		t.Fatal(err)
	}
	r := req(1, 10, bd.ManagerAssigned, "{{.Manager}} will help")
	r.Manager = bd.Manager{ID: 5, FirstName: "Anna"}
	if err := tmpl.Reply(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	want := []replytest.Sent{{Via: replytest.ViaSend, Account: "shop.example.com", Chat: 10, Text: "Anna will help"}}
	if got := rec.Sent(); !slices.Equal(got, want) {
		t.Errorf("Sent = %+v, want %+v", got, want)
	}
}

func TestRecorderHammer(t *testing.T) {
	rec := replytest.NewRecorder()
	rec.FailNext(10, nil)
	const goroutines, per = 8, 200
	var wg sync.WaitGroup
	var failed sync.Map
	for g := range goroutines {
		wg.Go(func() {
			for i := range per {
				var err error
				if i%2 == 0 {
					err = rec.Reply(t.Context(), req(bd.DialogID(g), 10, bd.DialogReceived, "x"))
				} else {
					err = rec.Send(t.Context(), "shop.example.com", bd.ChatID(g), "y")
				}
				if err != nil {
					failed.Store([2]int{g, i}, err)
				}
				_ = rec.Count(bd.DialogID(g), bd.DialogReceived)
				_ = rec.Sent()
			}
		})
	}
	wg.Wait()
	nFailed := 0
	failed.Range(func(_, err any) bool {
		nFailed++
		if !errors.Is(err.(error), replytest.ErrInjected) {
			t.Errorf("unexpected error %v", err)
		}
		return true
	})
	if nFailed != 10 {
		t.Errorf("%d calls failed, want the 10 injected", nFailed)
	}
	if rec.Attempts() != goroutines*per || rec.Len() != goroutines*per-10 {
		t.Errorf("Attempts = %d, Len = %d; want %d and %d", rec.Attempts(), rec.Len(), goroutines*per, goroutines*per-10)
	}
}

func TestViaString(t *testing.T) {
	for v, want := range map[replytest.Via]string{replytest.ViaReply: "reply", replytest.ViaSend: "send", 9: "Via(9)"} {
		if v.String() != want {
			t.Errorf("%d.String() = %q, want %q", v, v.String(), want)
		}
	}
}

func TestRecorderHasSent(t *testing.T) {
	rec := replytest.NewRecorder()
	ctx := t.Context()
	if err := rec.Reply(ctx, req(1, 10, bd.DialogReceived, "hello")); err != nil {
		t.Fatal(err)
	}
	if err := rec.Send(ctx, "shop.example.com", 20, "sent"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		account bd.AccountID
		chat    bd.ChatID
		dialog  bd.DialogID
		text    string
		want    bool
	}{
		{"by Reply", "shop.example.com", 10, 1, "hello", true},
		{"by Reply, any dialog", "shop.example.com", 10, 0, "hello", true},
		{"by Reply, other dialog", "shop.example.com", 10, 2, "hello", false},
		{"by Send, any dialog", "shop.example.com", 20, 7, "sent", true},
		{"other text", "shop.example.com", 10, 1, "hello!", false},
		{"other chat", "shop.example.com", 11, 1, "hello", false},
		{"other account", "other", 10, 1, "hello", false},
	}
	for _, tc := range cases {
		got, err := rec.HasSent(ctx, tc.account, tc.chat, tc.dialog, tc.text)
		if err != nil || got != tc.want {
			t.Errorf("%s: HasSent = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if rec.Checks() != len(cases) {
		t.Errorf("Checks = %d, want %d", rec.Checks(), len(cases))
	}
	boom := errors.New("boom")
	rec.FailCheckNext(1, boom)
	if _, err := rec.HasSent(ctx, "shop.example.com", 10, 1, "hello"); !errors.Is(err, boom) {
		t.Errorf("HasSent = %v, want the injected failure", err)
	}
	if ok, err := rec.HasSent(ctx, "shop.example.com", 10, 1, "hello"); !ok || err != nil {
		t.Errorf("HasSent after the failure = %v, %v", ok, err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := rec.HasSent(canceled, "shop.example.com", 10, 1, "hello"); !errors.Is(err, context.Canceled) {
		t.Errorf("HasSent on a canceled context = %v", err)
	}
}

func TestRecorderFailAfterNextRecordsThenFails(t *testing.T) {
	rec := replytest.NewRecorder()
	ctx := t.Context()
	lost := errors.New("answer lost")
	rec.FailAfterNext(2, lost)
	if err := rec.Send(ctx, "a", 1, "x"); !errors.Is(err, lost) {
		t.Errorf("Send = %v, want the injected failure", err)
	}
	if err := rec.Reply(ctx, req(1, 10, bd.DialogReceived, "y")); !errors.Is(err, lost) {
		t.Errorf("Reply = %v, want the injected failure", err)
	}
	if err := rec.Send(ctx, "a", 1, "x"); err != nil {
		t.Errorf("third call = %v, want success", err)
	}
	if rec.Len() != 3 || rec.CountText(1, "x") != 2 || rec.CountText(10, "y") != 1 {
		t.Errorf("recorded %+v", rec.Sent())
	}
	// FailNext's failures come first and record nothing.
	rec.FailNext(1, nil)
	rec.FailAfterNext(1, nil)
	if err := rec.Send(ctx, "a", 2, "z"); !errors.Is(err, replytest.ErrInjected) {
		t.Errorf("Send = %v", err)
	}
	if rec.CountText(2, "z") != 0 {
		t.Error("FailNext recorded the text")
	}
	if err := rec.Send(ctx, "a", 2, "z"); !errors.Is(err, replytest.ErrInjected) || rec.CountText(2, "z") != 1 {
		t.Errorf("Send = %v, recorded %d", err, rec.CountText(2, "z"))
	}
	rec.FailAfterNext(3, nil)
	rec.FailCheckNext(3, nil)
	rec.Reset()
	if err := rec.Send(ctx, "a", 3, "w"); err != nil {
		t.Errorf("Send after Reset = %v", err)
	}
	if _, err := rec.HasSent(ctx, "a", 3, 0, "w"); err != nil || rec.Checks() != 1 {
		t.Errorf("HasSent after Reset = %v, checks %d", err, rec.Checks())
	}
}

func TestRecorderReplyRetryIsExactlyOnce(t *testing.T) {
	rec := replytest.NewRecorder()
	ctx := t.Context()
	first := req(1, 10, bd.NoManagerOnline, "nobody")
	first.Attempt = 1
	rec.FailAfterNext(1, nil)
	if err := rec.Reply(ctx, first); err == nil {
		t.Fatal("want the injected failure")
	}
	retry := first
	retry.Attempt = 2
	if err := rec.Reply(ctx, retry); err != nil {
		t.Fatal(err)
	}
	if n := rec.Count(1, bd.NoManagerOnline); n != 1 {
		t.Errorf("recorded %d replies after a retry of a landed one, want 1", n)
	}
	// A retry of a reply that never landed is recorded.
	other := req(2, 11, bd.NoManagerOnline, "nobody")
	other.Attempt = 3
	if err := rec.Reply(ctx, other); err != nil || rec.Count(2, bd.NoManagerOnline) != 1 {
		t.Errorf("retry of a lost reply: %v, recorded %d", err, rec.Count(2, bd.NoManagerOnline))
	}
	// A first attempt sent twice shows up as a duplicate.
	if err := rec.Reply(ctx, first); err != nil || rec.Count(1, bd.NoManagerOnline) != 2 {
		t.Errorf("second first attempt: %v, recorded %d", err, rec.Count(1, bd.NoManagerOnline))
	}
	if s := rec.Sent(); s[0].Attempt != 1 || s[1].Attempt != 3 {
		t.Errorf("attempts not recorded: %+v", s)
	}
}
