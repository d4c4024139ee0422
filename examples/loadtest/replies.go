package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/sandbox"
	"github.com/botdistributor/botdistributor/store"
)

// replyMatcher tells which situation's reply a bot message is, from the
// account's reply texts: a text's template actions ({{.Customer}},
// {{.Manager}}) match anything, the rest literally.
type replyMatcher struct {
	situations []bd.Situation
	patterns   []*regexp.Regexp
}

var templateAction = regexp.MustCompile(`{{.*?}}`)

func newReplyMatcher(texts map[bd.Situation]string) (*replyMatcher, error) {
	m := &replyMatcher{}
	for _, sit := range slices.Sorted(maps.Keys(texts)) {
		var b strings.Builder
		b.WriteString(`^`)
		rest := strings.TrimSpace(texts[sit])
		for _, loc := range templateAction.FindAllStringIndex(rest, -1) {
			b.WriteString(regexp.QuoteMeta(rest[:loc[0]]))
			b.WriteString(`.*`)
			rest = rest[loc[1]:]
		}
		b.WriteString(regexp.QuoteMeta(rest) + `$`)
		re, err := regexp.Compile(b.String())
		if err != nil {
			return nil, fmt.Errorf("loadtest: reply text of %s: %w", sit, err)
		}
		m.situations = append(m.situations, sit)
		m.patterns = append(m.patterns, re)
	}
	return m, nil
}

// match returns the situation whose reply text is the message's.
func (m *replyMatcher) match(text string) (bd.Situation, bool) {
	for i, re := range m.patterns {
		if re.MatchString(text) {
			return m.situations[i], true
		}
	}
	return "", false
}

// replyKey is one automatic reply: a situation's reply in a dialog. A
// dialog gets at most one reply of each situation.
type replyKey struct {
	dialog    bd.DialogID
	situation bd.Situation
}

// botReplies reads MG's message log: how many times each reply landed in
// each dialog, and how many bot messages are no reply text at all. A
// message sent into a chat whose dialog had closed carries no dialog in
// MG; it is counted for the chat's last dialog (every customer of the
// load writes once, so a chat has one dialog).
func botReplies(m *sandbox.MG, rm *replyMatcher, dialogs []sandbox.MGDialog) (landed map[replyKey]int, unknown int) {
	lastOfChat := make(map[bd.ChatID]bd.DialogID, len(dialogs))
	for _, d := range dialogs {
		lastOfChat[d.Chat] = max(lastOfChat[d.Chat], d.ID)
	}
	landed = map[replyKey]int{}
	for _, msg := range m.Messages(0) {
		if msg.FromType != "bot" {
			continue
		}
		sit, ok := rm.match(msg.Text)
		if !ok {
			unknown++
			continue
		}
		d := msg.Dialog
		if d == 0 {
			d = lastOfChat[msg.Chat]
		}
		landed[replyKey{d, sit}]++
	}
	return landed, unknown
}

// replyAccount is the per-dialog accounting of automatic replies.
type replyAccount struct {
	// expected are the replies the distributor took on (it holds their
	// claims) together with the ones the rules require of what happened
	// to the dialog.
	expected, delivered, duplicated, lost, dead, closedUnsent, superseded int
	// unclaimed are required replies the distributor never took on;
	// unexpected are distinct replies in MG that nobody expected (or bot
	// messages that are no reply text); deadDelivered are dead letters
	// whose reply landed anyway.
	unclaimed, unexpected, deadDelivered int
	examples                             []string
}

// accountReplies compares the replies the distributor owed with what MG's
// message log shows. It must run when no distributor runs any more: it
// finds the distributor's reply claims by trying to claim every (dialog,
// situation) itself, and gives back each claim it got.
//
// Expected is the union of
//   - the claimed replies: a claim (a stored reply job) is the
//     distributor's decision to send that reply, and
//   - the required ones: every dialog a decision took into distribution
//     (assigned, or queued when it was distributed) is greeted
//     (dialog_received); every dialog a decision gave a manager gets
//     manager_assigned; every dialog waiting at the end gets its reason's
//     reply.
//
// An expected reply that is in MG's log is delivered (duplicated too when
// it is there more than once). One that is not is dead when its job is a
// dead letter; else, when its dialog is closed at the end, closed-unsent
// (the customer left before the reply went out, and sending into a closed
// dialog is pointless); else, for a queue reply (no manager online, all
// busy, out of hours) of a dialog that got a responsible, superseded (the
// library does not send a queue reply whose moment passed: the customer
// is told their manager instead); else lost. Closed-unsent and superseded
// replies are not held against the library.
func accountReplies(ctx context.Context, m *sandbox.MG, st store.Store, acc bd.AccountID, rm *replyMatcher,
	rep nodeReport, waiting []store.Waiting, deadJobs []store.DeadJob, parallel int) (replyAccount, error) {
	dialogs := m.Dialogs()
	landed, unknown := botReplies(m, rm, dialogs)

	claimed, err := probeClaims(ctx, st, acc, dialogs, rm.situations, parallel)
	if err != nil {
		return replyAccount{}, err
	}
	required := map[replyKey]bool{}
	for _, a := range rep.Assignments {
		if a.Manager != 0 {
			required[replyKey{a.Dialog, bd.DialogReceived}] = true
			required[replyKey{a.Dialog, bd.ManagerAssigned}] = true
		}
	}
	for _, d := range rep.Queued {
		required[replyKey{d.Dialog, bd.DialogReceived}] = true
	}
	for _, w := range waiting {
		required[replyKey{w.Dialog.ID, bd.DialogReceived}] = true
		required[replyKey{w.Dialog.ID, w.Reason}] = true
	}
	dead := map[replyKey]bool{}
	for _, j := range deadJobs {
		if j.Kind == store.JobReply {
			dead[replyKey{j.Dialog.ID, j.Situation}] = true
		}
	}
	active := make(map[bd.DialogID]bool, len(dialogs))
	held := map[bd.DialogID]bool{}
	for _, d := range dialogs {
		active[d.ID] = d.Active
		if !d.Responsible.IsZero() {
			held[d.ID] = true
		}
	}
	for _, a := range rep.Assignments {
		held[a.Dialog] = true
	}

	expected := maps.Clone(claimed)
	for k := range required {
		expected[k] = true
	}
	var ra replyAccount
	example := func(format string, args ...any) {
		if len(ra.examples) < 5 {
			ra.examples = append(ra.examples, fmt.Sprintf(format, args...))
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(expected), compareReplyKeys) {
		ra.expected++
		if required[k] && !claimed[k] {
			ra.unclaimed++
		}
		n := landed[k]
		switch {
		case n > 0:
			ra.delivered++
			if n > 1 {
				ra.duplicated++
				example("dialog %d: %s reply sent %d times", k.dialog, k.situation, n)
			}
			if dead[k] {
				ra.deadDelivered++
			}
		case dead[k]:
			ra.dead++
		case !active[k.dialog]:
			ra.closedUnsent++
		case queueReply(k.situation) && held[k.dialog]:
			ra.superseded++
		default:
			ra.lost++
			example("dialog %d: %s reply lost (claimed %t, required %t)", k.dialog, k.situation, claimed[k], required[k])
		}
	}
	for k, n := range landed {
		if !expected[k] {
			ra.unexpected++
			example("dialog %d: %s reply sent %d times, not expected", k.dialog, k.situation, n)
		}
	}
	ra.unexpected += unknown
	return ra, nil
}

// queueReply reports whether s is the reply to a dialog that waits.
func queueReply(s bd.Situation) bool {
	switch s {
	case bd.DialogReceived, bd.ManagerAssigned:
		return false
	}
	return true
}

func compareReplyKeys(a, b replyKey) int {
	if a.dialog != b.dialog {
		return int(a.dialog - b.dialog)
	}
	return strings.Compare(string(a.situation), string(b.situation))
}

// probeClaims returns the (dialog, situation) replies already claimed in
// the store. It claims each one itself: a claim it gets was free, and it
// gives it back at once.
func probeClaims(ctx context.Context, st store.Store, acc bd.AccountID, dialogs []sandbox.MGDialog, sits []bd.Situation, parallel int) (map[replyKey]bool, error) {
	keys := make(chan replyKey)
	var mu sync.Mutex
	claimed := map[replyKey]bool{}
	var errs []error
	var wg sync.WaitGroup
	for range max(parallel, 1) {
		wg.Go(func() {
			for k := range keys {
				free, err := st.ClaimReply(ctx, acc, k.dialog, k.situation)
				if err == nil && free {
					err = st.ReleaseReply(ctx, acc, k.dialog, k.situation)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("loadtest: reply claim of dialog %d, %s: %w", k.dialog, k.situation, err))
				} else if !free {
					claimed[k] = true
				}
				mu.Unlock()
			}
		})
	}
	for _, d := range dialogs {
		for _, s := range sits {
			keys <- replyKey{d.ID, s}
		}
	}
	close(keys)
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
	}
	return claimed, nil
}

// waitingNow returns every dialog waiting in the account's queue.
func waitingNow(ctx context.Context, st store.Store, acc bd.AccountID) ([]store.Waiting, error) {
	w, err := st.Waiting(ctx, acc, math.MaxInt32)
	if err != nil {
		return nil, fmt.Errorf("loadtest: waiting dialogs: %w", err)
	}
	return w, nil
}
