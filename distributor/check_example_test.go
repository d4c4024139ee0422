package distributor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/reply"
)

// smsReplier sends every reply as it is, as one SMS. It is also a
// reply.TextChecker, so settings with a text it cannot send are refused
// when they are saved, not when the text is due.
type smsReplier struct{}

func (smsReplier) Reply(_ context.Context, req reply.Request) error {
	fmt.Printf("SMS to dialog %d: %s\n", req.Dialog.ID, req.Text)
	return nil
}

// CheckText is pure and safe for concurrent use; its errors are meant for
// the account's admin.
func (smsReplier) CheckText(_ bd.Situation, text string) error {
	if strings.ContainsAny(text, "{}") {
		return errors.New("an SMS is sent as it is: write the text without placeholders")
	}
	if n := utf8.RuneCountInString(text); n > 70 {
		return fmt.Errorf("is %d characters long; an SMS takes 70", n)
	}
	return nil
}

// A settings page checks what it is about to save with the options the
// account's distributor runs with; the replier's text check names each
// text it refuses by its field.
func ExampleCheckSettings() {
	opts := []distributor.Option{distributor.WithReplier(smsReplier{})}
	s := bd.Settings{
		DefaultCapacity: 3,
		Availability:    bd.OnlineOnly,
		Reassign:        bd.ReassignOff,
		Replies: map[bd.Situation]string{
			bd.DialogReceived:      "Hello {customer}!",
			bd.ManagerAssigned:     "A manager will answer you shortly.",
			bd.NoManagerOnline:     "Nobody is online right now; we will answer as soon as one of us is back.",
			bd.AllManagersBusy:     "Please wait.",
			bd.OutsideWorkingHours: "",
		},
	}
	err := distributor.CheckSettings(s, opts...)
	if se, ok := errors.AsType[*bd.SettingsError](err); ok {
		for _, p := range se.Problems {
			fmt.Printf("%s: %s\n", p.Field, p.Message)
		}
	}
	// Output:
	// replies.dialog_received: an SMS is sent as it is: write the text without placeholders
	// replies.no_manager_online: is 72 characters long; an SMS takes 70
	// replies.outside_working_hours: is empty
}
