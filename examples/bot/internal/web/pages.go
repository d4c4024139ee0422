package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/distributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/store"
)

// page is what every template gets.
type page struct {
	Title string
	User  string
	CSRF  string
	Flash string
	Error string
	Data  any
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.sessions.get(r)
	if ok && ss.user != "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !ok {
		ss = s.sessions.create("")
		s.setCookie(w, ss, 0)
	}
	s.render(w, http.StatusOK, "login", page{Title: "Log in", CSRF: ss.csrf})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.sessions.get(r)
	if !s.checkPost(w, r, ss, ok) {
		return
	}
	if !s.logins.Allow() {
		http.Error(w, "Too many login attempts; wait a minute.", http.StatusTooManyRequests)
		return
	}
	if !s.validLogin(r.PostForm.Get("user"), r.PostForm.Get("password")) {
		s.log.Warn("failed login", slog.String("remote", r.RemoteAddr))
		s.render(w, http.StatusUnauthorized, "login", page{Title: "Log in", CSRF: ss.csrf, Error: "Wrong user name or password."})
		return
	}
	// A new session id on login, so a session planted before cannot be used.
	s.sessions.drop(ss.id)
	ns := s.sessions.create(s.cfg.AdminUser)
	s.setCookie(w, ns, 0)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, ss session) {
	s.sessions.drop(ss.id)
	s.setCookie(w, session{}, -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// homeData is the home page: the accounts and the Connect form.
type homeData struct {
	Accounts     []bot.AccountInfo
	Domain       string
	ConnectError string
}

func (s *Server) home(w http.ResponseWriter, r *http.Request, ss session) {
	s.render(w, http.StatusOK, "home", page{
		Title: "Accounts", User: ss.user, CSRF: ss.csrf,
		Data: homeData{Accounts: s.cfg.Backend.Accounts(r.Context())},
	})
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request, ss session) {
	domain := strings.TrimSpace(r.PostForm.Get("domain"))
	key := bd.Secret(strings.TrimSpace(r.PostForm.Get("api_key")))
	fail := func(msg string) {
		s.render(w, http.StatusUnprocessableEntity, "home", page{
			Title: "Accounts", User: ss.user, CSRF: ss.csrf,
			Data: homeData{Accounts: s.cfg.Backend.Accounts(r.Context()), Domain: domain, ConnectError: msg},
		})
	}
	if domain == "" || key == "" {
		fail("Give both the account's address and an API key.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	id, err := s.cfg.Backend.Connect(ctx, domain, key)
	if err != nil {
		s.log.Warn("connecting an account failed", slog.String("domain", domain), slog.Any("error", err))
		fail(explainConnect(err))
		return
	}
	http.Redirect(w, r, "/accounts/"+url.PathEscape(string(id))+"?connected=1", http.StatusSeeOther)
}

// accountData is the account page.
type accountData struct {
	Info     bot.AccountInfo
	Settings *settingsView
}

// lookup finds the account of the request's path, answering 404 when it
// is unknown.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (bot.AccountInfo, bool) {
	id := bd.AccountID(r.PathValue("id"))
	info, err := s.cfg.Backend.Account(r.Context(), id)
	if errors.Is(err, bot.ErrUnknownAccount) {
		http.Error(w, "No such account.", http.StatusNotFound)
		return info, false
	}
	if err != nil {
		s.log.Error("reading an account failed", slog.String("account", string(id)), slog.Any("error", err))
		http.Error(w, "The account cannot be read right now.", http.StatusInternalServerError)
		return info, false
	}
	return info, true
}

func (s *Server) account(w http.ResponseWriter, r *http.Request, ss session) {
	info, ok := s.lookup(w, r)
	if !ok {
		return
	}
	set, err := s.cfg.Backend.Settings(r.Context(), info.ID)
	if err != nil {
		s.log.Error("reading settings failed", slog.String("account", string(info.ID)), slog.Any("error", err))
		http.Error(w, "The settings cannot be read right now.", http.StatusInternalServerError)
		return
	}
	choices, err := s.cfg.Backend.Choices(r.Context(), info.ID)
	if err != nil {
		choices.Problems = append(choices.Problems, err.Error())
	}
	p := page{Title: "Account " + string(info.ID), User: ss.user, CSRF: ss.csrf,
		Data: accountData{Info: info, Settings: newSettingsView(stateFromSettings(set), choices, nil)}}
	switch {
	case r.URL.Query().Has("connected"):
		p.Flash = "The account is connected. Choose the managers and check the settings below, then save."
	case r.URL.Query().Has("saved"):
		p.Flash = "Settings saved."
	}
	s.render(w, http.StatusOK, "account", p)
}

func (s *Server) saveSettings(w http.ResponseWriter, r *http.Request, ss session) {
	info, ok := s.lookup(w, r)
	if !ok {
		return
	}
	base, err := s.cfg.Backend.Settings(r.Context(), info.ID)
	if err != nil {
		s.log.Error("reading settings failed", slog.String("account", string(info.ID)), slog.Any("error", err))
		http.Error(w, "The settings cannot be read right now; nothing was saved.", http.StatusInternalServerError)
		return
	}
	form := stateFromForm(r.PostForm)
	set, problems := form.settings(base)
	// Everything wrong is named at once: the form's own problems and the
	// settings' validation as a whole.
	verr := s.cfg.Backend.ValidateSettings(set)
	var se *bd.SettingsError
	if errors.As(verr, &se) {
		problems = append(problems, se.Problems...)
	} else if verr != nil {
		problems = append(problems, bd.Problem{Field: "settings", Message: verr.Error()})
	}
	if len(problems) == 0 {
		err := s.cfg.Backend.SaveSettings(r.Context(), info.ID, set)
		if errors.As(err, &se) {
			problems = append(problems, se.Problems...)
		} else if err != nil {
			s.log.Error("saving settings failed", slog.String("account", string(info.ID)), slog.Any("error", err))
			s.renderSettings(w, r, ss, info, form, nil, http.StatusInternalServerError, "The settings could not be stored; nothing was saved. Try again.")
			return
		}
	}
	if len(problems) > 0 {
		s.renderSettings(w, r, ss, info, form, problems, http.StatusUnprocessableEntity, "")
		return
	}
	s.log.Info("settings saved", slog.String("account", string(info.ID)))
	http.Redirect(w, r, "/accounts/"+url.PathEscape(string(info.ID))+"?saved=1", http.StatusSeeOther)
}

func (s *Server) renderSettings(w http.ResponseWriter, r *http.Request, ss session, info bot.AccountInfo, form formState, problems []bd.Problem, status int, msg string) {
	choices, err := s.cfg.Backend.Choices(r.Context(), info.ID)
	if err != nil {
		choices.Problems = append(choices.Problems, err.Error())
	}
	s.render(w, status, "account", page{
		Title: "Account " + string(info.ID), User: ss.user, CSRF: ss.csrf, Error: msg,
		Data: accountData{Info: info, Settings: newSettingsView(form, choices, problems)},
	})
}

// decisionsData is the recent decisions page.
type decisionsData struct {
	Account bd.AccountID
	Traces  []distributor.Trace
	// Dead are the jobs given up after their last retry.
	Dead []store.DeadJob
}

func (s *Server) decisions(w http.ResponseWriter, r *http.Request, ss session) {
	info, ok := s.lookup(w, r)
	if !ok {
		return
	}
	p := page{Title: "Decisions of " + string(info.ID), User: ss.user, CSRF: ss.csrf}
	traces, err := s.cfg.Backend.Recent(r.Context(), info.ID)
	if err != nil {
		p.Error = "The decisions cannot be read: " + err.Error()
	}
	dead, err := s.cfg.Backend.DeadLetters(r.Context(), info.ID)
	if err != nil && p.Error == "" {
		p.Error = "The failed jobs cannot be read: " + err.Error()
	}
	p.Data = decisionsData{Account: info.ID, Traces: traces, Dead: dead}
	s.render(w, http.StatusOK, "decisions", p)
}

// The settings form as the template shows it.
type (
	settingsView struct {
		Managers               []managerRow
		DefaultCapacity        string
		DefaultCapacityProblem string
		Strategies             []option
		Availability           []option
		Reassign               []option
		ReassignAfter          string
		PresenceGrace          string
		AutoBind, AutoCreate   bool
		Sticky                 bool
		Replies                []replyRow
		HoursOn                bool
		TimeZone               string
		TimeZoneProblem        string
		Days                   []dayRow
		Holidays               string
		HolidaysProblem        string
		Channels               []channelRow
		Problems               []bd.Problem
		ChoiceProblems         []string
	}
	managerRow struct {
		ID       bd.ManagerID
		Name     string
		State    string
		Checked  bool
		Capacity string
		Problem  string
	}
	option struct {
		Value, Label string
		Selected     bool
	}
	checkRow struct {
		Name, Value, Label string
		Checked            bool
	}
	replyRow struct {
		Field, Label, Text, Problem string
	}
	dayRow struct {
		Name, Field, Spans, Problem string
	}
	channelRow struct {
		ID       bd.ChannelID
		Name     string
		Type     string
		Targets  []option
		Managers []checkRow
		Bots     []option
		Problem  string
	}
)

func newSettingsView(f formState, c bot.Choices, problems []bd.Problem) *settingsView {
	byField := make(map[string]string, len(problems))
	for _, p := range problems {
		if byField[p.Field] == "" {
			byField[p.Field] = p.Message
		}
	}
	problemUnder := func(prefix string) string {
		if m, ok := byField[prefix]; ok {
			return m
		}
		for field, m := range byField {
			if strings.HasPrefix(field, prefix+".") {
				return m
			}
		}
		return ""
	}
	v := &settingsView{
		DefaultCapacity:        f.DefaultCapacity,
		DefaultCapacityProblem: byField["default_capacity"],
		ReassignAfter:          f.ReassignAfter,
		PresenceGrace:          f.PresenceGrace,
		AutoBind:               f.AutoBind,
		AutoCreate:             f.AutoCreate,
		Sticky:                 f.Sticky,
		HoursOn:                f.HoursOn,
		TimeZone:               f.TimeZone,
		TimeZoneProblem:        byField["hours.time_zone"],
		HolidaysProblem:        byField["hours.holidays"],
		Holidays:               f.Holidays,
		Problems:               problems,
		ChoiceProblems:         c.Problems,
	}

	// Managers: the roster, plus anyone the settings name who is not in it.
	names := make(map[bd.ManagerID]string)
	rows := make(map[bd.ManagerID]*managerRow)
	for _, m := range c.Managers {
		name := m.Name()
		if name == "" {
			name = "manager " + m.ID.String()
		}
		names[m.ID] = name
		rows[m.ID] = &managerRow{ID: m.ID, Name: name, State: managerState(m)}
	}
	for id := range f.Managers {
		if _, ok := rows[id]; !ok {
			rows[id] = &managerRow{ID: id, Name: "manager " + id.String(), State: "not in the roster"}
			names[id] = rows[id].Name
		}
	}
	for _, id := range slices.Sorted(maps.Keys(rows)) {
		r := rows[id]
		r.Checked = f.Managers[id]
		r.Capacity = f.Capacity[id]
		r.Problem = byField[fmt.Sprintf("capacity.%d", id)]
		v.Managers = append(v.Managers, *r)
	}

	strategies := append([]string{""}, c.Strategies...)
	if f.Strategy != "" && !slices.Contains(strategies, f.Strategy) {
		strategies = append(strategies, f.Strategy)
	}
	for _, name := range strategies {
		label := name
		if name == "" {
			label = "default (round robin: longest since last dialog)"
		}
		v.Strategies = append(v.Strategies, option{Value: name, Label: label, Selected: name == f.Strategy})
	}
	v.Availability = options(f.Availability, [][2]string{
		{string(bd.StatusAndOnline), `status "free" and online in chats`},
		{string(bd.StatusOnly), `status "free" (presence ignored)`},
		{string(bd.OnlineOnly), "online in chats (status ignored)"},
	})
	v.Reassign = options(f.Reassign, [][2]string{
		{string(bd.ReassignOff), "nothing (dialogs stay)"},
		{string(bd.ReassignUncompleted), "all uncompleted dialogs (last message from the customer)"},
		{string(bd.ReassignNew), "only new dialogs nobody answered"},
	})

	for _, sit := range bd.Situations() {
		field := "replies." + string(sit)
		v.Replies = append(v.Replies, replyRow{
			Field: "reply_" + string(sit), Label: fieldLabel(field), Text: f.Replies[sit], Problem: byField[field],
		})
	}
	for i := range 7 {
		d := time.Weekday((i + 1) % 7) // Monday first
		v.Days = append(v.Days, dayRow{
			Name: d.String(), Field: "day_" + strconv.Itoa(int(d)), Spans: f.Days[d],
			Problem: byField["hours."+strings.ToLower(d.String())],
		})
	}
	// Channels: MG's active ones, plus any the settings have a rule for.
	chans := make(map[bd.ChannelID]mg.Channel)
	for _, ch := range c.Channels {
		chans[ch.ID] = ch
	}
	for id := range f.Channels {
		if _, ok := chans[id]; !ok {
			chans[id] = mg.Channel{ID: id, Name: "channel " + strconv.FormatInt(int64(id), 10), Type: "not active in MessageGateway"}
		}
	}
	managerIDs := slices.Sorted(maps.Keys(rows))
	for _, id := range slices.Sorted(maps.Keys(chans)) {
		ch := chans[id]
		cs, ok := f.Channels[id]
		if !ok {
			cs = channelState{Target: targetDefault}
		}
		prefix := "channel_" + strconv.FormatInt(int64(id), 10) + "_"
		row := channelRow{ID: id, Name: cmp.Or(ch.Name, "channel "+strconv.FormatInt(int64(id), 10)), Type: ch.Type,
			Problem: problemUnder(fmt.Sprintf("channels.%d", id))}
		row.Targets = options(cs.Target, [][2]string{
			{targetDefault, "the default rule (managers in the distribution)"},
			{string(bd.ToManagers), "managers"},
			{string(bd.ToBot), "a bot"},
		})
		for _, m := range managerIDs {
			row.Managers = append(row.Managers, checkRow{Name: prefix + "manager", Value: m.String(), Label: names[m], Checked: cs.Managers[m]})
		}
		row.Bots = append(row.Bots, option{Value: "", Label: "(choose a bot)", Selected: cs.Bot == ""})
		seen := false
		for _, b := range c.Bots {
			val := strconv.FormatInt(int64(b.ID), 10)
			seen = seen || val == cs.Bot
			row.Bots = append(row.Bots, option{Value: val, Label: cmp.Or(b.Name, "bot "+val), Selected: val == cs.Bot})
		}
		if cs.Bot != "" && !seen {
			row.Bots = append(row.Bots, option{Value: cs.Bot, Label: "bot " + cs.Bot + " (not among the responsible bots)", Selected: true})
		}
		v.Channels = append(v.Channels, row)
	}
	return v
}

func options(selected string, values [][2]string) []option {
	out := make([]option, 0, len(values)+1)
	found := false
	for _, kv := range values {
		out = append(out, option{Value: kv[0], Label: kv[1], Selected: kv[0] == selected})
		found = found || kv[0] == selected
	}
	if !found && selected != "" {
		out = append(out, option{Value: selected, Label: selected + " (unknown)", Selected: true})
	}
	return out
}

func managerState(m bd.Manager) string {
	if !m.Active {
		return "deactivated"
	}
	presence := "offline"
	if m.Online {
		presence = "online"
	}
	return string(m.Status) + ", " + presence
}
