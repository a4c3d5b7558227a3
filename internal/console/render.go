package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/output"
)

// view is what every page's template gets: the layout's data around the
// page's own.
type view struct {
	Title   string
	Project string
	Backend string
	Nav     []navItem
	// Actions is true when the server allows actions; Session when this
	// browser is logged in to take them. CSRF is the token of its forms.
	Actions bool
	Session bool
	CSRF    string
	Path    string // of this request, for the login's way back
	Now     time.Time
	Check   checkView
	Page    any           // the page's own data
	Content template.HTML // a section's body rendered by its feature
}

type navItem struct {
	Section
	Current bool
}

// checkView is the state of the drift check as pages show it.
type checkView struct {
	Ran         bool // a check has ended
	Running     bool
	Ended       time.Time
	LastSuccess time.Time
	Failed      bool
	Error       string
	Next        time.Time
	Every       string
	Took        string
}

func (c *Console) checkView() checkView {
	s := c.o.Checks.Snapshot()
	v := checkView{Ran: s.Checks > 0, Running: s.Running, Ended: s.Ended, LastSuccess: s.LastSuccess, Next: s.Next}
	if c.o.CheckEvery > 0 {
		v.Every = config.Duration(c.o.CheckEvery).String()
	}
	if s.Err != nil {
		v.Failed, v.Error = true, s.Err.Error()
	}
	if v.Ran {
		v.Took = s.Ended.Sub(s.Started).Round(time.Millisecond).String()
	}
	return v
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	// utc formats a time for people: to the second, in UTC.
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	// iso is a time for <time datetime>.
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// ago is how long ago t was: "3h ago", or "in 5m" for a future time.
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		d := time.Since(t)
		if d < 0 {
			return "in " + output.Age(-d)
		}
		return output.Age(d) + " ago"
	},
	"age": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return output.Age(time.Since(t))
	},
	"dur": dur,
	// plural is "1 run", "2 runs".
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	},
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"join":  strings.Join,
	"bytes": output.Bytes,
	"date": func(s string) string { // an RFC 3339 time from a manifest, shown as its date
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t.UTC().Format("2006-01-02")
		}
		return s
	},
	"add": func(a, b int) int { return a + b },
}

// parseTemplates parses each page with the layout around it.
func parseTemplates() (map[string]*template.Template, error) {
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", p)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes page name with data inside the layout, with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	c.renderView(w, r, status, name, c.newView(r, title, data))
}

func (c *Console) newView(r *http.Request, title string, data any) view {
	v := view{
		Title: title, Project: c.o.Config.Project, Backend: c.o.Backend, Actions: c.o.Actions != nil,
		Path: r.URL.RequestURI(), Now: time.Now(), Check: c.checkView(), Page: data,
	}
	for _, s := range c.navSections() {
		cur := s.Path == r.URL.Path || (s.Path != "/" && strings.HasPrefix(r.URL.Path, s.Path+"/"))
		v.Nav = append(v.Nav, navItem{Section: s, Current: cur})
	}
	if v.Actions {
		if s := c.session(r); s != "" {
			v.Session, v.CSRF = true, c.csrf.Token(s)
		}
	}
	return v
}

func (c *Console) renderView(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t, ok := c.tmpl[name]
	if !ok {
		c.log.Error("console: no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Render writes a page of a feature's section: body inside the console's
// layout, under title.
func (c *Console) Render(w http.ResponseWriter, r *http.Request, title string, body template.HTML) {
	v := c.newView(r, title, nil)
	v.Content = body
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	c.renderView(w, r, http.StatusOK, "section", v)
}

// Funcs returns the helpers the console's templates use, for a section
// that renders its pages with templates of its own.
func Funcs() template.FuncMap { return maps.Clone(funcs) }

// NotFound writes the page of something that does not exist (for a
// section's handlers too).
func (c *Console) NotFound(w http.ResponseWriter, r *http.Request, what string) {
	c.render(w, r, http.StatusNotFound, "message", "Not found", message{Heading: "Not found", Text: what})
}

// Failed writes the page of an error reading kiln's state (for a
// section's handlers too).
func (c *Console) Failed(w http.ResponseWriter, r *http.Request, err error) {
	c.log.Error("console: page", "path", r.URL.Path, "err", err)
	c.render(w, r, http.StatusInternalServerError, "message", "Error", message{Heading: "kiln could not read its state", Text: err.Error()})
}

// badRequest is the page of a request kiln cannot answer as asked.
func (c *Console) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	c.render(w, r, http.StatusBadRequest, "message", "Bad request", message{Heading: "Bad request", Text: err.Error()})
}

// message is the data of the message page.
type message struct {
	Heading  string
	Text     string
	Link     string
	LinkText string
}

// dur formats a duration to a precision that fits its size: "12ms",
// "4.2s", "3m12s", "2h5m".
func dur(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
