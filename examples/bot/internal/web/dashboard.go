package web

import (
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
)

// dashboardView is the dashboard's live part.
type dashboardView struct {
	Account     bd.AccountID
	Active      bool
	Connected   bool
	Queue       int
	LongestWait string
	Waiting     []waitingRow
	Managers    []managerLoadRow
	Charts      []chart
	Updated     string
}

type waitingRow struct {
	Dialog   bd.DialogID
	Why, For string
}

type managerLoadRow struct {
	ID                        bd.ManagerID
	Name, Dist                string
	Open, Capacity, High      int
	Status, Presence          string
	InDistribution, Available bool
}

type chart struct {
	ID, Title, Total string
	SVG              template.HTML
}

func (s *Server) dashboardPage(w http.ResponseWriter, r *http.Request, ss session, part string) {
	info, ok := s.lookup(w, r)
	if !ok {
		return
	}
	p := newPage(r, ss, "")
	p.Title = p.T("dash.title", info.ID)
	d, err := s.cfg.Backend.Dashboard(r.Context(), info.ID)
	if err != nil {
		s.log.Error("reading the dashboard failed", slog.String("account", string(info.ID)), slog.Any("error", err))
		p.Error = err.Error()
		d.Account = info.ID
	}
	p.Data = newDashboardView(p.Lang, d)
	s.renderPart(w, http.StatusOK, "dashboard", part, p)
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, ss session) {
	s.dashboardPage(w, r, ss, "")
}

func (s *Server) dashboardLive(w http.ResponseWriter, r *http.Request, ss session) {
	s.dashboardPage(w, r, ss, "live")
}

// humanDuration shows a wait as people read it: "45 s", "3 min", "2 h 5 min".
func humanDuration(l lang, d time.Duration) string {
	sec, min, hour := "s", "min", "h"
	if l == bot.LangRussian {
		sec, min, hour = "с", "мин", "ч"
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d %s", int(d.Seconds()), sec)
	case d < time.Hour:
		return fmt.Sprintf("%d %s", int(d.Minutes()), min)
	}
	return fmt.Sprintf("%d %s %d %s", int(d.Hours()), hour, int(d.Minutes())%60, min)
}

// humanWait is humanDuration to the second below an hour ("1 min 30 s"),
// for waits a decision still counts down.
func humanWait(l lang, d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	if d < time.Minute || d >= time.Hour || d%time.Minute == 0 {
		return humanDuration(l, d)
	}
	return humanDuration(l, d.Truncate(time.Minute)) + " " + humanDuration(l, d%time.Minute)
}

func newDashboardView(l lang, d bot.Dashboard) dashboardView {
	v := dashboardView{Account: d.Account, Active: d.Active, Connected: d.Connected, Queue: d.Queue,
		LongestWait: humanDuration(l, d.LongestWait), Updated: d.At.Format("15:04:05")}
	for _, w := range d.Waiting {
		v.Waiting = append(v.Waiting, waitingRow{Dialog: w.Dialog.ID, Why: T(l, "why."+string(w.Reason)), For: humanDuration(l, d.At.Sub(w.Since))})
	}
	for _, m := range d.Managers {
		name := m.Name()
		if name == "" {
			name = T(l, "manager.name", m.ID)
		}
		row := managerLoadRow{ID: m.ID, Name: name, Open: m.Open, Capacity: max(m.Capacity, 1), High: max(m.Capacity-1, 1),
			Status: statusName(l, m.Status), InDistribution: m.InDistribution, Available: m.Available}
		row.Presence = T(l, "manager.offline")
		if m.Online {
			row.Presence = T(l, "manager.online")
		}
		if !m.Active {
			row.Presence = T(l, "manager.deactivated")
		}
		row.Dist = T(l, "dash.notInDist")
		if m.InDistribution {
			row.Dist = T(l, "dash.inDist") + ", "
			if m.Available {
				row.Dist += T(l, "dash.available")
			} else {
				row.Dist += T(l, "dash.unavailable")
			}
		}
		v.Managers = append(v.Managers, row)
	}
	for _, c := range []struct {
		id, key string
		vals    []int
		color   string
	}{
		{"assigned", "dash.assigned", d.Activity.Assigned, "#2d6cdf"},
		{"replies", "dash.replies", d.Activity.Replies, "#2e9d57"},
		{"dead", "dash.dead", d.Activity.Dead, "#b3261e"},
	} {
		total := 0
		for _, n := range c.vals {
			total += n
		}
		v.Charts = append(v.Charts, chart{ID: c.id, Title: T(l, c.key), Total: T(l, "dash.total", total), SVG: barChart(c.vals, c.color)})
	}
	return v
}

// barChart draws per-minute counts as an SVG bar chart, oldest on the
// left; it is built from numbers only, so it is safe HTML.
func barChart(vals []int, color string) template.HTML {
	const w, h, bar = 300, 48, 5
	top := 1
	for _, n := range vals {
		top = max(top, n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%d">`, w, h+12, w, h+12, top)
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#ccd"/>`, h, w, h)
	for i, n := range vals {
		if n == 0 {
			continue
		}
		bh := max(1, n*h/top)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%d</title></rect>`, i*bar, h-bh, bar-1, bh, color, n)
	}
	fmt.Fprintf(&b, `<text x="0" y="%d" font-size="10" fill="#667">-60 min</text><text x="%d" y="%d" font-size="10" fill="#667" text-anchor="end">max %d</text></svg>`, h+11, w, h+11, top)
	return template.HTML(b.String())
}

// decisionsData is the recent decisions page.
type decisionsData struct {
	Account  bd.AccountID
	Dialog   string
	Managers []option
	Traces   []traceView
	Dead     []deadView
}

type traceView struct {
	Dialog                  bd.DialogID
	Headline, At, Link, Raw string
	// Notes say in plain words how the CRM's data and the rule's steps
	// shaped the decision: the personal manager, the step, the card.
	Notes   []string
	Removed []string
	Chosen  string
}

type deadView struct {
	At, Job, Err string
	Dialog       bd.DialogID
	Attempt      int
}

func (s *Server) decisions(w http.ResponseWriter, r *http.Request, ss session) {
	info, ok := s.lookup(w, r)
	if !ok {
		return
	}
	p := newPage(r, ss, "")
	l := p.Lang
	p.Title = p.T("dec.title", info.ID)
	traces, err := s.cfg.Backend.Recent(r.Context(), info.ID)
	if err != nil {
		p.Error = err.Error()
	}
	dead, err := s.cfg.Backend.DeadLetters(r.Context(), info.ID)
	if err != nil && p.Error == "" {
		p.Error = err.Error()
	}
	names := map[bd.ManagerID]string{}
	if c, err := s.cfg.Backend.Choices(r.Context(), info.ID); err == nil {
		for _, m := range c.Managers {
			if n := m.Name(); n != "" {
				names[m.ID] = n
			}
		}
	}
	name := func(m bd.ManagerID) string {
		if n, ok := names[m]; ok {
			return n
		}
		return T(l, "manager.name", m)
	}
	who := func(r bd.Responsible) string {
		if m, ok := r.Manager(); ok {
			return name(m)
		}
		if b, ok := r.Bot(); ok {
			return strconv.FormatInt(int64(b), 10)
		}
		return "—"
	}
	q := r.URL.Query()
	data := decisionsData{Account: info.ID, Dialog: q.Get("dialog")}
	wantDialog, _ := strconv.ParseInt(q.Get("dialog"), 10, 64)
	wantManager, _ := strconv.ParseInt(q.Get("manager"), 10, 64)
	ids := slices.Sorted(func(yield func(bd.ManagerID) bool) {
		for id := range names {
			if !yield(id) {
				return
			}
		}
	})
	for _, id := range ids {
		data.Managers = append(data.Managers, option{Value: id.String(), Label: names[id], Selected: int64(id) == wantManager})
	}
	for _, t := range traces {
		if wantDialog > 0 && int64(t.Dialog) != wantDialog {
			continue
		}
		if wantManager > 0 && !involves(t, bd.ManagerID(wantManager)) {
			continue
		}
		tv := traceView{Dialog: t.Dialog, At: t.At.Format("2006-01-02 15:04:05"), Raw: t.String(), Link: dialogLink(info.Domain, t.Dialog)}
		var outcome string
		switch t.Outcome {
		case distributor.OutcomeAssigned:
			outcome = T(l, "out.assigned", who(t.Responsible))
		case distributor.OutcomeBot:
			outcome = T(l, "out.bot", who(t.Responsible))
		case distributor.OutcomeQueued:
			outcome = T(l, "out.queued", T(l, "why."+string(t.Situation)))
		case distributor.OutcomeReassigned:
			outcome = T(l, "out.reassigned", name(t.Reassigned), who(t.Responsible))
		case distributor.OutcomeStays:
			outcome = T(l, "out.stays", name(t.Reassigned))
		case distributor.OutcomeClosed:
			outcome = T(l, "out.closed")
		case distributor.OutcomeAlreadyAssigned:
			outcome = T(l, "out.already", who(t.Responsible))
		default:
			outcome = string(t.Outcome)
		}
		tv.Headline = T(l, "dec.headline", t.Dialog, outcome)
		tv.Notes = traceNotes(l, t, name)
		for _, rm := range t.Removed {
			tv.Removed = append(tv.Removed, name(rm.Manager)+": "+T(l, "filter."+string(rm.Filter)))
		}
		if t.Choice.Manager != 0 && t.Outcome != distributor.OutcomeQueued {
			var cands []string
			for _, c := range t.Candidates {
				cands = append(cands, name(c.Manager))
			}
			tv.Chosen = T(l, "dec.chosen", strings.Join(cands, ", "), name(t.Choice.Manager), t.Choice.Reason)
		}
		data.Traces = append(data.Traces, tv)
	}
	for _, d := range dead {
		if wantDialog > 0 && int64(d.Dialog.ID) != wantDialog {
			continue
		}
		job := T(l, "job."+string(d.Kind))
		if d.Situation != "" {
			job += " (" + fieldLabel(l, "replies."+string(d.Situation)) + ")"
		}
		data.Dead = append(data.Dead, deadView{At: d.At.Format("2006-01-02 15:04:05"), Job: job, Dialog: d.Dialog.ID, Attempt: d.Attempt, Err: d.Err})
	}
	p.Data = data
	s.render(w, http.StatusOK, "decisions", p)
}

// traceNotes explains the parts of a decision that come from routing by
// the CRM: the personal manager and how long the dialog still waits for
// them, the escalation step the dialog is at, how the customer's card was
// read, and the queue priority.
func traceNotes(l lang, t distributor.Trace, name func(bd.ManagerID) string) []string {
	var notes []string
	if t.Personal != 0 {
		who := name(t.Personal)
		took := t.Choice.Manager == t.Personal ||
			(t.Responsible == bd.ManagerOf(t.Personal) && (t.Outcome == distributor.OutcomeAssigned || t.Outcome == distributor.OutcomeReassigned))
		switch {
		case took:
			notes = append(notes, T(l, "trace.personalTook", who))
		case t.PersonalWait > 0:
			then := T(l, "trace.thenRule")
			if len(t.Rule.Steps) > 0 {
				then = stepGroupName(l, t.Rule.Steps[0].Group, "trace.thenGroup", "trace.thenEveryone")
			}
			notes = append(notes, T(l, "trace.personalWaiting", who, humanWait(l, t.PersonalWait), then))
		default:
			notes = append(notes, T(l, "trace.personalOver", who))
		}
	}
	// While the dialog waits for its personal manager, the steps have not
	// begun.
	if st, ok := t.AtStep(); ok && t.PersonalWait == 0 {
		n := len(t.Rule.Steps)
		group := st.Group
		switch {
		case st.Bot != 0:
			group = T(l, "chan.botName", strconv.FormatInt(int64(st.Bot), 10))
		case group == "":
			group = T(l, "trace.everyone")
		}
		if t.Step < n-1 {
			notes = append(notes, T(l, "trace.step", t.Step+1, n, group, humanWait(l, t.NextStepIn)))
		} else {
			notes = append(notes, T(l, "trace.stepLast", t.Step+1, n, group))
		}
	}
	if t.Profile != "" {
		if _, ok := english["trace.profile."+t.Profile]; ok {
			notes = append(notes, T(l, "trace.profile."+t.Profile))
		}
	}
	if t.PriorityCustomer {
		notes = append(notes, T(l, "trace.priority"))
	}
	return notes
}

// stepGroupName names a step's group for a sentence: group by key, or
// everyone by everyoneKey when the step has no group.
func stepGroupName(l lang, group, key, everyoneKey string) string {
	if group == "" {
		return T(l, everyoneKey)
	}
	return T(l, key, group)
}

// involves reports whether manager m took part in the trace: chosen,
// responsible, moved from, removed or a candidate.
func involves(t distributor.Trace, m bd.ManagerID) bool {
	if t.Choice.Manager == m || t.Reassigned == m || t.Responsible == bd.ManagerOf(m) {
		return true
	}
	for _, r := range t.Removed {
		if r.Manager == m {
			return true
		}
	}
	for _, c := range t.Candidates {
		if c.Manager == m {
			return true
		}
	}
	return false
}

// dialogLink is the address of the dialog in retailCRM's chats. (The form
// of this address is what retailCRM's chat page is believed to accept; it
// is not verified against a real account.)
func dialogLink(domain string, id bd.DialogID) string {
	u, err := url.Parse(domain)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	return u.Scheme + "://" + u.Host + "/chats?dialog=" + strconv.FormatInt(int64(id), 10)
}
