// Package console is kiln serve's web console: server-rendered pages of a
// project's channels, runs, drift, assets and schedule, the same data as a
// JSON API under /api/v1 whose documents are those the commands print with
// -o json, and, only when the server is started with --allow-actions, the
// forms and endpoints that start a release, promote or run a drift check
// (and those a feature's section mounts through HandleForm and HandleAPI).
//
// Pages read the journal, the channel manifests (and their git history)
// and the last results of the server's drift check; a page view never
// calls the cloud.
package console

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/ratelimit"
	"github.com/kiln-images/kiln/internal/refresh"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/server"
)

// Journal is what the console reads from the journal.
type Journal interface {
	Runs(ctx context.Context) ([]journal.Run, error)
	RunsPage(ctx context.Context, useCase string, state journal.RunState, offset, limit int) ([]journal.Run, int, error)
	Run(ctx context.Context, id string) (journal.Run, []journal.Step, error)
	Latest(ctx context.Context) ([]journal.Run, error)
}

// Checks is the server's drift check: its last results, and a way to ask
// for a new one (an action).
type Checks interface {
	Snapshot() refresh.Snapshot
	Trigger() <-chan struct{}
}

// Actions are what a person may do from the console. The server wires
// them to the code the commands run.
type Actions struct {
	// Token is the bearer token that authorises them (compared in
	// constant time).
	Token []byte
	// Release starts a release of useCase (arch "" for its only one) into
	// channel and returns the new run's asset id once the journal holds
	// the run. The release goes on in the background, under the server's
	// context rather than ctx (the request's); wait returns its outcome.
	Release func(ctx context.Context, useCase, arch, channel string) (id string, wait func() error, err error)
	// Promote checks the gates of a promotion and, with apply and every
	// gate passed, promotes.
	Promote func(ctx context.Context, useCase, from, to string, apply bool) (report.Promote, error)
}

// Options configure a console.
type Options struct {
	Config  *config.Config
	Backend string // the backend's name, for the status document
	Journal Journal
	Checks  Checks
	// CheckEvery is how often the server's drift check runs, for display.
	CheckEvery time.Duration
	// Schedule is the scheduler's record when the server runs it; nil
	// otherwise.
	Schedule *ScheduleRecord
	// Actions, when set, mounts the login, the forms and the write
	// endpoints; nil mounts none of them.
	Actions *Actions
	// RunLocked reports whether a process holds a run's lock: a run the
	// journal says is running and nobody holds was interrupted.
	RunLocked func(id string) bool
	// SecureCookies marks cookies Secure (the server speaks HTTPS).
	SecureCookies bool
	Log           *slog.Logger
}

// Mounter is where the console mounts its handlers (*server.Server).
type Mounter interface {
	Handle(pattern string, h http.Handler)
}

// A Section is an entry of the console's navigation bar. The console's
// own pages are sections; a feature with pages of its own (deployments)
// mounts its handlers on the server, adds its section with AddSection and
// renders its pages inside the console's layout with Render.
type Section struct {
	Title string
	Path  string
}

// Console serves the pages and the API.
type Console struct {
	o    Options
	log  *slog.Logger
	tmpl map[string]*template.Template
	csrf *server.CSRF

	mu       sync.Mutex
	sections []Section
	sessions *sessions
	authLim  *ratelimit.Limiter
	busy     bool // a release started from the console is under way
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns a console.
func New(o Options) (*Console, error) {
	if o.Config == nil || o.Journal == nil || o.Checks == nil {
		return nil, fmt.Errorf("console: Config, Journal and Checks are required")
	}
	if o.Actions != nil && len(o.Actions.Token) == 0 {
		return nil, fmt.Errorf("console: actions need a token")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.RunLocked == nil {
		o.RunLocked = func(string) bool { return false }
	}
	c := &Console{o: o, log: o.Log, csrf: server.NewCSRF(), sessions: newSessions(sessionTTL, maxSessions),
		authLim: ratelimit.New(authAttempts, authWindow, 10_000)}
	c.sections = []Section{
		{"Channels", "/"}, {"Runs", "/runs"}, {"Drift", "/drift"}, {"Assets", "/assets"}, {"Schedule", "/schedule"},
	}
	var err error
	if c.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	return c, nil
}

// AddSection adds an entry to the navigation bar.
func (c *Console) AddSection(s Section) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sections = append(c.sections, s)
}

// Mount mounts the pages, the API and, with actions, the forms and write
// endpoints. Without actions every handler answers GET (and HEAD) only.
func (c *Console) Mount(m Mounter) {
	m.Handle("GET /static/console.css", c.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, staticFS, "static/console.css")
	}), "public, max-age=3600"))
	page := func(pattern string, h http.HandlerFunc) { m.Handle("GET "+pattern, c.headers(h, "no-store")) }
	page("/{$}", c.channelsPage)
	page("/channels/{channel}/history", c.historyPage)
	page("/runs", c.runsPage)
	page("/runs/{id}", c.runPage)
	page("/runs/{id}/console.log", c.consoleLog)
	page("/drift", c.driftPage)
	page("/assets", c.assetsPage)
	page("/schedule", c.schedulePage)

	api := func(pattern string, h http.HandlerFunc) { m.Handle("GET "+pattern, c.headers(h, "no-store")) }
	api("/api/v1/status", c.apiStatus)
	api("/api/v1/runs", c.apiRuns)
	api("/api/v1/runs/{id}", c.apiRun)
	api("/api/v1/manifests", c.apiManifests)
	api("/api/v1/drift", c.apiDrift)
	api("/api/v1/assets", c.apiAssets)
	api("/api/v1/schedule", c.apiSchedule)

	if c.o.Actions != nil {
		c.mountActions(m)
	}
}

// contentSecurityPolicy lets the pages load their stylesheet and submit
// their forms to this server, and nothing else: no scripts, no frames, no
// other origins.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the console's content security policy and caching on top
// of the server's headers.
func (c *Console) headers(h http.Handler, cache string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		w.Header().Set("Cache-Control", cache)
		h.ServeHTTP(w, r)
	})
}

// navSections returns the navigation bar's entries.
func (c *Console) navSections() []Section {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sections)
}

// relPath is path relative to the project directory, for display.
func (c *Console) relPath(path string) string {
	if rel, err := filepath.Rel(c.o.Config.Dir, path); err == nil {
		return rel
	}
	return path
}
