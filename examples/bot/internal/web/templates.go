package web

import (
	"embed"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static/style.css
var styleCSS []byte

//go:embed static/app.js
var appJS []byte

// pageNames are the pages, each templates/<name>.html defining "content"
// inside templates/layout.html.
var pageNames = []string{"login", "home", "account", "decisions", "dashboard"}

// pages holds one parsed template set per page.
type pages struct {
	sets map[string]*template.Template
}

var funcs = template.FuncMap{
	"join": strings.Join,
	"pathEscape": func(v any) string {
		return url.PathEscape(fmt.Sprint(v))
	},
	"ruleArgs": func(p page, r channelRow) ruleArgs { return ruleArgs{P: p, R: r} },
}

// ruleArgs is the argument of the "rule" template: the page, for its
// texts, and the rule's row.
type ruleArgs struct {
	P page
	R channelRow
}

func parsePages() (*pages, error) {
	p := &pages{sets: make(map[string]*template.Template, len(pageNames))}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/live.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// execute renders page name, or only its template part when part is not
// empty (the dashboard's "live" part).
func (p *pages) execute(w io.Writer, name, part string, data any) error {
	t, ok := p.sets[name]
	if !ok {
		return fmt.Errorf("web: no page %q", name)
	}
	if part == "" {
		part = "layout"
	}
	return t.ExecuteTemplate(w, part, data)
}

func serveScript(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(appJS)
}

func serveStyle(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(styleCSS)
}
