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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	bd "github.com/botdistributor/botdistributor"
	"github.com/botdistributor/botdistributor/examples/bot/internal/bot"
	"github.com/botdistributor/botdistributor/internal/replytext"
	"github.com/botdistributor/botdistributor/mg"
	"github.com/botdistributor/botdistributor/reply"
)

// page is what every template gets.
type page struct {
	Title string
	User  string
	CSRF  string
	Flash string
	Error string
	Data  any
	// Lang is the page's language; Path the page's own path, for the
	// language switch to come back to.
	Lang lang
	Path string
}

// T returns the text of key in the page's language (see i18n.go).
func (p page) T(key string, args ...any) string { return T(p.Lang, key, args...) }

// newPage starts the page of a request.
func newPage(r *http.Request, ss session, title string) page {
	path := r.URL.Path
	if r.URL.RawQuery != "" && r.Method == http.MethodGet {
		path += "?" + r.URL.RawQuery
	}
	return page{Title: title, User: ss.user, CSRF: ss.csrf, Lang: langOf(r), Path: url.QueryEscape(path)}
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
	p := newPage(r, ss, "")
	p.Title = p.T("login.title")
	p.Data = ""
	s.render(w, http.StatusOK, "login", p)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.sessions.get(r)
	if !s.checkPost(w, r, ss, ok) {
		return
	}
	user := r.PostForm.Get("user")
	p := newPage(r, ss, "")
	p.Title, p.Data = p.T("login.title"), user
	client := clientAddr(r)
	if !s.logins.allow(client) {
		p.Error = p.T("login.throttled")
		s.render(w, http.StatusTooManyRequests, "login", p)
		return
	}
	if !s.validLogin(user, r.PostForm.Get("password")) {
		s.logins.failed(client)
		s.log.Warn("failed login", slog.String("remote", client))
		p.Error = p.T("login.wrong")
		s.render(w, http.StatusUnauthorized, "login", p)
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
	p := newPage(r, ss, "")
	p.Title = p.T("home.title")
	p.Data = homeData{Accounts: s.cfg.Backend.Accounts(r.Context())}
	s.render(w, http.StatusOK, "home", p)
}

func (s *Server) connect(w http.ResponseWriter, r *http.Request, ss session) {
	domain := strings.TrimSpace(r.PostForm.Get("domain"))
	key := bd.Secret(strings.TrimSpace(r.PostForm.Get("api_key")))
	p := newPage(r, ss, "")
	p.Title = p.T("home.title")
	fail := func(msg string) {
		p.Data = homeData{Accounts: s.cfg.Backend.Accounts(r.Context()), Domain: domain, ConnectError: msg}
		s.render(w, http.StatusUnprocessableEntity, "home", p)
	}
	if domain == "" || key == "" {
		fail(p.T("connect.missing"))
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
	Info      bot.AccountInfo
	Settings  *settingsView
	Active    bool // the settings in force are active
	StateLine string
	// StreamLine says where the account's event stream runs.
	StreamLine string
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

func (s *Server) accountData(p page, info bot.AccountInfo, active bool, v *settingsView) accountData {
	state := p.T("state.stopped")
	if info.Running {
		state = p.T("state.running")
	}
	waiting := "?"
	if info.Waiting >= 0 {
		waiting = strconv.Itoa(info.Waiting)
	}
	stream := p.T("account.streamAway")
	if info.Holder {
		conn := p.T("stream.disconnected")
		if info.Connected {
			conn = p.T("stream.connected")
		}
		at := func(t time.Time) string {
			if t.IsZero() {
				return p.T("time.never")
			}
			return t.Format("15:04:05")
		}
		stream = p.T("account.streamHere", conn, at(info.LastEvent), at(info.LastResync))
	}
	return accountData{Info: info, Settings: v, Active: active,
		StateLine:  p.T("account.stateLine", state, info.Stream.Stream.Connects, info.Stream.Resyncs, info.Stream.Stream.Events, waiting),
		StreamLine: stream}
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
	p := newPage(r, ss, "")
	p.Title = p.T("account.title", info.ID)
	form := stateFromSettings(set)
	if !set.Active && bot.IsDefaultReplies(set.Replies) {
		// Nobody wrote their own texts yet: offer them in the page's language.
		form.Replies = bot.DefaultReplies(p.Lang)
	}
	p.Data = s.accountData(p, info, set.Active, newSettingsView(p.Lang, form, choices, nil))
	switch {
	case r.URL.Query().Has("connected"):
		p.Flash = p.T("connect.done")
	case r.URL.Query().Has("saved") && set.Active:
		p.Flash = p.T("settings.savedOn")
	case r.URL.Query().Has("saved"):
		p.Flash = p.T("settings.saved")
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
	l := langOf(r)
	form := stateFromForm(r.PostForm)
	form.AlertSecretSet = base.AlertSecret != ""
	if op := r.PostForm.Get("edit"); op != "" {
		// An edit button (add, remove or move a step, a group): show the
		// form changed, save nothing yet.
		if !form.edit(op) {
			http.Error(w, "Unknown edit of the settings form.", http.StatusBadRequest)
			return
		}
		s.renderSettings(w, r, ss, info, base.Active, form, nil, http.StatusOK, "")
		return
	}
	set, problems := form.settings(l, base)
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
			s.renderSettings(w, r, ss, info, base.Active, form, nil, http.StatusInternalServerError, T(l, "msg.notStored"))
			return
		}
	}
	if len(problems) > 0 {
		s.renderSettings(w, r, ss, info, base.Active, form, problems, http.StatusUnprocessableEntity, "")
		return
	}
	s.log.Info("settings saved", slog.String("account", string(info.ID)), slog.Bool("active", set.Active))
	http.Redirect(w, r, "/accounts/"+url.PathEscape(string(info.ID))+"?saved=1", http.StatusSeeOther)
}

func (s *Server) renderSettings(w http.ResponseWriter, r *http.Request, ss session, info bot.AccountInfo, active bool, form formState, problems []bd.Problem, status int, msg string) {
	choices, err := s.cfg.Backend.Choices(r.Context(), info.ID)
	if err != nil {
		choices.Problems = append(choices.Problems, err.Error())
	}
	p := newPage(r, ss, "")
	p.Title, p.Error = p.T("account.title", info.ID), msg
	p.Data = s.accountData(p, info, active, newSettingsView(p.Lang, form, choices, problems))
	s.render(w, status, "account", p)
}

// The settings form as the template shows it.
type (
	settingsView struct {
		Active                  bool
		Managers                []managerRow
		DefaultCapacity         string
		DefaultCapacityProblem  string
		Strategies              []option
		Availability            []option
		Reassign                []option
		ReassignAfter           string
		PresenceGrace           string
		AutoBind, AutoCreate    bool
		Sticky                  bool
		Replies                 []replyRow
		Placeholders            []placeholder
		Sample                  replytext.Values
		HoursOn                 bool
		TimeZone                string
		TimeZoneProblem         string
		Days                    []dayRow
		Holidays                string
		HolidaysProblem         string
		Channels                []channelRow
		DefaultRule             channelRow
		Groups                  []groupRow
		GroupsProblem           string
		PersonalManager         bool
		PersonalWait            string
		PersonalWaitProblem     string
		PrioritySegments        string
		PrioritySegmentsProblem string
		PriorityTags            string
		PriorityTagsProblem     string
		WaitAlert               string
		WaitAlertProblem        string
		AlertWebhook            string
		AlertWebhookProblem     string
		AlertSecretProblem      string
		// AlertSecretSet: a secret is stored (the page never shows it);
		// AlertSecretTyped: one was typed and must be typed again, as the
		// page does not send a typed secret back either.
		AlertSecretSet, AlertSecretTyped bool
		Edited                           bool
		Problems                         []problemView
		ChoiceProblems                   []string
	}
	groupRow struct {
		Index     int
		Name, Was string
		Managers  []checkRow
		Problem   string
	}
	stepRow struct {
		Index            int
		Number           int // Index+1, as people count
		Prefix           string
		Groups           []option
		Wait             string
		Units            []option
		Problem          string
		Up, Down, Remove string // the edit buttons' values; "" when there is no such move
	}
	problemView struct {
		Field, Label, Message string
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
		Field, Label, Text, Problem, Preview string
		// Upgraded is true when the stored text was in the earlier
		// {{.Manager}} form and is shown with placeholders.
		Upgraded bool
	}
	placeholder struct {
		Code, Label string
	}
	dayRow struct {
		Name, Field, Spans, Problem string
	}
	channelRow struct {
		ID       bd.ChannelID
		Name     string
		Kind     string
		Prefix   string // of the rule's form fields
		Targets  []option
		Managers []checkRow
		Bots     []option
		Steps    []stepRow
		AddStep  string // the edit button's value
		Problem  string
	}
)

// placeholderLabels name the placeholders for people, by catalogue key.
var placeholderLabels = map[string]string{
	"{customer}": "ph.customer", "{customer_first_name}": "ph.customer_first",
	"{manager}": "ph.manager", "{manager_first_name}": "ph.manager_first",
}

// sampleNames are the names the preview shows, per language.
func sampleNames(l lang) replytext.Values {
	if l == bot.LangRussian {
		return replytext.Values{Customer: "Иван Петров", CustomerFirstName: "Иван", Manager: "Анна Смирнова", ManagerFirstName: "Анна"}
	}
	return replytext.Values{Customer: "John Doe", CustomerFirstName: "John", Manager: "Anna Smith", ManagerFirstName: "Anna"}
}

// translateProblem gives a problem's field label and message in l; the
// library's messages are English, and the common ones are translated.
func translateProblem(l lang, p bd.Problem, name func(bd.ManagerID) string) problemView {
	msg := p.Message
	if m, ok := catalogues[l]["msg."+msg]; ok {
		msg = m
	} else {
		msg = translateMessage(l, msg, name)
	}
	return problemView{Field: p.Field, Label: fieldLabel(l, p.Field), Message: msg}
}

// libraryMessages match the library's messages that carry a value (a
// group's name, a manager's id) to catalogue keys; the value, unquoted, is
// the key's argument.
var libraryMessages = []struct {
	re  *regexp.Regexp
	key string
}{
	{regexp.MustCompile(`^every step but the last needs a wait$`), "msg.stepNeedsWait"},
	{regexp.MustCompile(`^unknown group (".*")$`), "msg.unknownGroup"},
	{regexp.MustCompile(`^must not be negative, got .*$`), "msg.negative"},
	{regexp.MustCompile(`^a group needs a name without dots or line breaks$`), "msg.groupBadName"},
	{regexp.MustCompile(`^group ".*" has no managers$`), "msg.groupEmpty"},
	{regexp.MustCompile(`^manager (\d+) is not in the distribution$`), "msg.notInDistribution"},
	{regexp.MustCompile(`^a rule with steps takes its managers from the steps' groups$`), "msg.stepsAndManagers"},
	{regexp.MustCompile(`^a bot rule takes no steps$`), "msg.botNoSteps"},
	{regexp.MustCompile(`^a bot rule needs a bot$`), "msg.chooseBot"},
	{regexp.MustCompile(`^a segment code is empty$`), "msg.segmentEmpty"},
	{regexp.MustCompile(`^a tag is empty$`), "msg.tagEmpty"},
	{regexp.MustCompile(`^must be an http or https URL, got (".*")$`), "msg.badURL"},
	{regexp.MustCompile(`^a webhook needs a secret to sign its body$`), "msg.needSecret"},
}

// translateMessage gives a library message in l when libraryMessages
// knows it, else as it is (English).
func translateMessage(l lang, msg string, name func(bd.ManagerID) string) string {
	for _, lm := range libraryMessages {
		m := lm.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		var args []any
		for _, a := range m[1:] {
			if id, err := strconv.ParseInt(a, 10, 64); err == nil {
				args = append(args, name(bd.ManagerID(id)))
			} else if u, err := strconv.Unquote(a); err == nil {
				args = append(args, u)
			} else {
				args = append(args, a)
			}
		}
		return T(l, lm.key, args...)
	}
	return msg
}

func newSettingsView(l lang, f formState, c bot.Choices, problems []bd.Problem) *settingsView {
	byField := make(map[string]string, len(problems))
	v := &settingsView{
		Active:           f.Active,
		DefaultCapacity:  f.DefaultCapacity,
		ReassignAfter:    f.ReassignAfter,
		PresenceGrace:    f.PresenceGrace,
		AutoBind:         f.AutoBind,
		AutoCreate:       f.AutoCreate,
		Sticky:           f.Sticky,
		HoursOn:          f.HoursOn,
		TimeZone:         f.TimeZone,
		Holidays:         f.Holidays,
		ChoiceProblems:   c.Problems,
		Sample:           sampleNames(l),
		PersonalManager:  f.PersonalManager,
		PersonalWait:     f.PersonalWait,
		PrioritySegments: f.PrioritySegments,
		PriorityTags:     f.PriorityTags,
		WaitAlert:        f.WaitAlert,
		AlertWebhook:     f.AlertWebhook,
		AlertSecretSet:   f.AlertSecretSet,
		AlertSecretTyped: f.AlertSecret != "",
		Edited:           f.Edited,
	}
	names := make(map[bd.ManagerID]string)
	nameOf := func(id bd.ManagerID) string {
		if n, ok := names[id]; ok {
			return n
		}
		return T(l, "manager.name", id)
	}
	for _, m := range c.Managers {
		if n := m.Name(); n != "" {
			names[m.ID] = n
		}
	}
	for _, p := range problems {
		pv := translateProblem(l, p, nameOf)
		v.Problems = append(v.Problems, pv)
		if byField[p.Field] == "" {
			byField[p.Field] = pv.Message
		}
	}
	v.DefaultCapacityProblem = byField["default_capacity"]
	v.TimeZoneProblem = byField["hours.time_zone"]
	v.HolidaysProblem = byField["hours.holidays"]
	v.PersonalWaitProblem = byField["personal_wait"]
	v.PrioritySegmentsProblem = byField["priority_segments"]
	v.PriorityTagsProblem = byField["priority_tags"]
	v.WaitAlertProblem = byField["wait_alert"]
	v.AlertWebhookProblem = byField["alert_webhook"]
	v.AlertSecretProblem = byField["alert_secret"]
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

	// Managers: the roster, plus anyone the settings name who is not in it.
	rows := make(map[bd.ManagerID]*managerRow)
	for _, m := range c.Managers {
		name := m.Name()
		if name == "" {
			name = T(l, "manager.name", m.ID)
		}
		names[m.ID] = name
		rows[m.ID] = &managerRow{ID: m.ID, Name: name, State: managerState(l, m)}
	}
	for id := range f.Managers {
		if _, ok := rows[id]; !ok {
			rows[id] = &managerRow{ID: id, Name: T(l, "manager.name", id), State: T(l, "manager.notInRoster")}
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
		switch _, known := english["strategy."+name]; {
		case name == "":
			label = T(l, "opt.defaultStrategy")
		case known:
			label = T(l, "strategy."+name)
		}
		v.Strategies = append(v.Strategies, option{Value: name, Label: label, Selected: name == f.Strategy})
	}
	v.Availability = options(l, f.Availability, [][2]string{
		{string(bd.StatusAndOnline), "opt.statusOnline"},
		{string(bd.StatusOnly), "opt.status"},
		{string(bd.OnlineOnly), "opt.online"},
	})
	v.Reassign = options(l, f.Reassign, [][2]string{
		{string(bd.ReassignOff), "opt.reassignOff"},
		{string(bd.ReassignUncompleted), "opt.reassignAll"},
		{string(bd.ReassignNew), "opt.reassignNew"},
	})

	for _, code := range reply.Placeholders() {
		v.Placeholders = append(v.Placeholders, placeholder{Code: code, Label: T(l, placeholderLabels[code])})
	}
	for _, sit := range bd.Situations() {
		field := "replies." + string(sit)
		text := f.Replies[sit]
		row := replyRow{Field: "reply_" + string(sit), Label: fieldLabel(l, field), Problem: byField[field]}
		if up, ok := reply.Upgrade(text); ok {
			text, row.Upgraded = up, true
		}
		row.Text = text
		if t, err := replytext.Parse(text); err == nil {
			row.Preview, _ = t.Render(v.Sample)
		}
		v.Replies = append(v.Replies, row)
	}
	for i := range 7 {
		d := time.Weekday((i + 1) % 7) // Monday first
		v.Days = append(v.Days, dayRow{
			Name: T(l, "day."+strconv.Itoa(int(d))), Field: "day_" + strconv.Itoa(int(d)), Spans: f.Days[d],
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
			chans[id] = mg.Channel{ID: id, Name: T(l, "chan.name", id), Type: T(l, "chan.inactive")}
		}
	}
	managerIDs := slices.Sorted(maps.Keys(rows))

	// Groups: each with the known managers to pick from, and an empty
	// row to add one.
	var groupNames []string
	for i, g := range f.Groups {
		row := groupRow{Index: i, Name: g.Name, Was: g.Was, Problem: byField["groups."+g.Name]}
		for _, m := range managerIDs {
			row.Managers = append(row.Managers, checkRow{Name: groupField(i, "manager"), Value: m.String(), Label: names[m], Checked: g.Managers[m]})
		}
		v.Groups = append(v.Groups, row)
		if g.Name != "" && !slices.Contains(groupNames, g.Name) {
			groupNames = append(groupNames, g.Name)
		}
	}
	if n := len(f.Groups); n == 0 || f.Groups[n-1].Name != "" || len(f.Groups[n-1].Managers) > 0 {
		row := groupRow{Index: n}
		for _, m := range managerIDs {
			row.Managers = append(row.Managers, checkRow{Name: groupField(n, "manager"), Value: m.String(), Label: names[m]})
		}
		v.Groups = append(v.Groups, row)
	}
	v.GroupsProblem = byField["groups"]

	// rule shows a rule: its target, managers, bot and steps.
	rule := func(row channelRow, field string, cs channelState) channelRow {
		row.Problem = ""
		for _, sub := range []string{"", ".target", ".managers", ".bot", ".steps"} {
			if m := byField[field+sub]; m != "" {
				row.Problem = m
				break
			}
		}
		for _, m := range managerIDs {
			row.Managers = append(row.Managers, checkRow{Name: row.Prefix + "manager", Value: m.String(), Label: names[m], Checked: cs.Managers[m]})
		}
		row.Bots = append(row.Bots, option{Value: "", Label: T(l, "chan.chooseBot"), Selected: cs.Bot == ""})
		seen := false
		for _, b := range c.Bots {
			val := strconv.FormatInt(int64(b.ID), 10)
			seen = seen || val == cs.Bot
			row.Bots = append(row.Bots, option{Value: val, Label: cmp.Or(b.Name, T(l, "chan.botName", val)), Selected: val == cs.Bot})
		}
		if cs.Bot != "" && !seen {
			row.Bots = append(row.Bots, option{Value: cs.Bot, Label: T(l, "chan.botUnknown", cs.Bot), Selected: true})
		}
		row.AddStep = "step_add:" + row.Prefix
		for i, st := range cs.Steps {
			sr := stepRow{Index: i, Number: i + 1, Prefix: stepField(row.Prefix, i, ""), Wait: st.Wait,
				Remove:  fmt.Sprintf("step_remove:%s:%d", row.Prefix, i),
				Problem: problemUnder(fmt.Sprintf("%s.steps.%d", field, i))}
			if i > 0 {
				sr.Up = fmt.Sprintf("step_up:%s:%d", row.Prefix, i)
			}
			if i < len(cs.Steps)-1 {
				sr.Down = fmt.Sprintf("step_down:%s:%d", row.Prefix, i)
			}
			sr.Groups = append(sr.Groups, option{Value: "", Label: T(l, "step.everyone"), Selected: st.Group == ""})
			for _, g := range groupNames {
				sr.Groups = append(sr.Groups, option{Value: g, Label: g, Selected: g == st.Group})
			}
			// A bot can take the last step (the bot takes every dialog).
			botSeen := false
			for _, b := range c.Bots {
				val := botStepPrefix + strconv.FormatInt(int64(b.ID), 10)
				botSeen = botSeen || val == st.Group
				sr.Groups = append(sr.Groups, option{Value: val, Label: T(l, "step.bot", cmp.Or(b.Name, T(l, "chan.botName", strconv.FormatInt(int64(b.ID), 10)))), Selected: val == st.Group})
			}
			if _, bot := stepBot(st.Group); bot && !botSeen && !slices.Contains(groupNames, st.Group) {
				sr.Groups = append(sr.Groups, option{Value: st.Group, Label: T(l, "chan.botUnknown", strings.TrimPrefix(st.Group, botStepPrefix)), Selected: true})
			} else if st.Group != "" && !bot && !slices.Contains(groupNames, st.Group) {
				sr.Groups = append(sr.Groups, option{Value: st.Group, Label: T(l, "opt.unknown", st.Group), Selected: true})
			}
			sr.Units = options(l, cmp.Or(st.Unit, unitMinutes), [][2]string{{unitMinutes, "unit.min"}, {unitSeconds, "unit.s"}})
			row.Steps = append(row.Steps, sr)
		}
		return row
	}
	defaultRule := f.DefaultRule
	if defaultRule.Target == "" {
		defaultRule.Target = string(bd.ToManagers)
	}
	v.DefaultRule = rule(channelRow{Name: T(l, "field.default_rule"), Prefix: defaultRulePrefix}, "default_rule", defaultRule)
	v.DefaultRule.Targets = options(l, defaultRule.Target, [][2]string{
		{string(bd.ToManagers), "opt.targetManagers"},
		{string(bd.ToBot), "opt.targetBot"},
	})

	for _, id := range slices.Sorted(maps.Keys(chans)) {
		ch := chans[id]
		cs, ok := f.Channels[id]
		if !ok {
			cs = channelState{Target: targetDefault}
		}
		row := channelRow{ID: id, Name: cmp.Or(ch.Name, T(l, "chan.name", id)), Kind: T(l, "chan.kind", ch.Type, id), Prefix: channelPrefix(id)}
		row = rule(row, fmt.Sprintf("channels.%d", id), cs)
		row.Targets = options(l, cs.Target, [][2]string{
			{targetDefault, "opt.targetDefault"},
			{string(bd.ToManagers), "opt.targetManagers"},
			{string(bd.ToBot), "opt.targetBot"},
		})
		v.Channels = append(v.Channels, row)
	}
	return v
}

// options makes the choices of a select; values holds (value, catalogue
// key) pairs.
func options(l lang, selected string, values [][2]string) []option {
	out := make([]option, 0, len(values)+1)
	found := false
	for _, kv := range values {
		out = append(out, option{Value: kv[0], Label: T(l, kv[1]), Selected: kv[0] == selected})
		found = found || kv[0] == selected
	}
	if !found && selected != "" {
		out = append(out, option{Value: selected, Label: T(l, "opt.unknown", selected), Selected: true})
	}
	return out
}

func statusName(l lang, st bd.ManagerStatus) string {
	if st == "" {
		return "—"
	}
	if _, ok := english["status."+string(st)]; ok {
		return T(l, "status."+string(st))
	}
	return string(st)
}

func managerState(l lang, m bd.Manager) string {
	if !m.Active {
		return T(l, "manager.deactivated")
	}
	presence := T(l, "manager.offline")
	if m.Online {
		presence = T(l, "manager.online")
	}
	return statusName(l, m.Status) + ", " + presence
}
