// Package deployweb is the console's deployments section: a page listing
// the project's deployments, a page for each with its record (release per
// region, units, URLs, verifications, approvals, hold, lock, history), and
// the same as API documents:
//
//	GET /api/v1/deployments         kiln deployments -o json
//	GET /api/v1/deployments/{name}  the record, as deployments/NAME.json holds it
//
// Like the rest of the console its pages read files (kiln.yaml and the
// records), never the cloud: what runs against what the record says is
// kiln status. With the console's actions on, it adds one action, a
// verification (kiln verify NAME), through the console's login and token:
//
//	POST /deployments/{name}/verify                 the page's Verify now (form)
//	POST /api/v1/deployments/{name}/verifications   kiln verify -o json (bearer token)
package deployweb

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/console"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/server"
)

//go:embed templates/*.html
var templateFS embed.FS

// shownVerifications is how many of a deployment's latest verifications
// its page lists; the record keeps more, and the API serves them all.
const shownVerifications = 10

// Section serves the deployments pages inside Console.
type Section struct {
	Console *console.Console
	// List returns the project's deployments, as kiln deployments does;
	// Entry one of them and its record (deploy.Deployer's methods).
	List  func() ([]deploy.ListEntry, error)
	Entry func(name string) (e deploy.ListEntry, rec *record.Record, ok bool, err error)
	// Verify runs a deployment's checks and records the outcome, as kiln
	// verify does, under the server's context: a verification started
	// from a page goes on when the page has answered. With the console's
	// actions on, a deployment's page offers it to a logged-in user and
	// POST /api/v1/deployments/{name}/verifications to a bearer of the
	// token; nil offers neither.
	Verify func(name string) (*deploy.VerifyReport, error)
	// Wait is how long a verify request waits for the outcome before it
	// answers that the verification is still running (default
	// verifyWait).
	Wait time.Duration
	// Log gets who asked for a verification and its outcome; nil logs
	// nothing.
	Log *slog.Logger

	tmpl *template.Template

	mu        sync.Mutex
	verifying map[string]bool // deployments a verification started here runs on
}

// verifyWait keeps a verify request under the server's write timeout; a
// longer verification goes on and lands in the record.
const verifyWait = 45 * time.Second

// Mount adds the section to the console's navigation and its handlers to
// m. Without the console's actions (or without Verify) every handler
// answers GET (and HEAD) only.
func (s *Section) Mount(m console.Mounter) error {
	t, err := template.New("deployweb").Funcs(console.Funcs()).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return fmt.Errorf("deployments templates: %w", err)
	}
	s.tmpl = t
	s.Console.AddSection(console.Section{Title: "Deployments", Path: "/deployments"})
	// Records change under the server (kiln deploy, verify): never cached.
	get := func(pattern string, h http.HandlerFunc) {
		m.Handle("GET "+pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			h(w, r)
		}))
	}
	get("/deployments", s.list)
	get("/deployments/{name}", s.show)
	get("/api/v1/deployments", s.apiList)
	get("/api/v1/deployments/{name}", s.apiShow)
	if s.Verify != nil {
		s.Console.HandleForm(m, "POST /deployments/{name}/verify", s.verifyForm)
		s.Console.HandleAPI(m, "POST /api/v1/deployments/{name}/verifications", s.apiVerify)
	}
	return nil
}

// entry returns deployment name's list entry and its record (nil when it
// has none yet); the error of a name kiln does not know matches
// errNotFound.
func (s *Section) entry(name string) (deploy.ListEntry, *record.Record, error) {
	e, rec, ok, err := s.Entry(name)
	if err == nil && !ok {
		err = fmt.Errorf("%w %q: kiln.yaml and deployments/ have none of that name", errNotFound, name)
	}
	return e, rec, err
}

// errNotFound is the error of a deployment kiln does not know.
var errNotFound = errors.New("no such deployment")

// listPage is the data of the deployments page.
type listPage struct {
	Deployments []deploy.ListEntry
}

func (s *Section) list(w http.ResponseWriter, r *http.Request) {
	list, err := s.List()
	if err != nil {
		s.Console.Failed(w, r, err)
		return
	}
	s.render(w, r, "Deployments", "list", listPage{Deployments: list})
}

// showPage is the data of a deployment's page.
type showPage struct {
	Entry  deploy.ListEntry
	Record *record.Record // nil: never deployed
	// Verifications are the latest first, at most shownVerifications.
	Verifications []record.Verification
	// Older is how many more the record holds.
	Older int
	// History is the record's events, latest first.
	History []record.Event
	Units   []unitRow
	Regions []regionImage
	// CSRF is the verify form's token; empty shows no form.
	CSRF string
	// Verifying: a verification started from the console runs now.
	Verifying bool
}

type unitRow struct {
	Name string
	record.Unit
}

type regionImage struct {
	Region, Image string
}

func (s *Section) show(w http.ResponseWriter, r *http.Request) {
	e, rec, err := s.entry(r.PathValue("name"))
	if errors.Is(err, errNotFound) {
		s.Console.NotFound(w, r, err.Error())
		return
	}
	if err != nil {
		s.Console.Failed(w, r, err)
		return
	}
	p := showPage{Entry: e, Record: rec, Verifying: s.running(e.Name)}
	// A session exists only with the console's actions on, which is when
	// Mount mounted the verify form.
	if tok, ok := s.Console.FormToken(r); ok && s.Verify != nil && rec != nil && rec.Release != nil {
		p.CSRF = tok
	}
	if rec != nil {
		v := slices.Clone(rec.Verifications)
		slices.Reverse(v)
		if len(v) > shownVerifications {
			p.Older = len(v) - shownVerifications
			v = v[:shownVerifications]
		}
		p.Verifications = v
		p.History = slices.Clone(rec.History)
		slices.Reverse(p.History)
		for _, n := range slices.Sorted(maps.Keys(rec.Units)) {
			p.Units = append(p.Units, unitRow{Name: n, Unit: rec.Units[n]})
		}
		if rec.Release != nil {
			for _, reg := range slices.Sorted(maps.Keys(rec.Release.Images)) {
				p.Regions = append(p.Regions, regionImage{Region: reg, Image: rec.Release.Images[reg]})
			}
		}
	}
	s.render(w, r, "Deployment "+e.Name, "show", p)
}

func (s *Section) apiList(w http.ResponseWriter, r *http.Request) {
	list, err := s.List()
	if err != nil {
		s.Console.APIError(w, http.StatusInternalServerError, err)
		return
	}
	s.Console.WriteJSON(w, http.StatusOK, report.Deployments{Schema: report.SchemaDeployments, Deployments: list})
}

func (s *Section) apiShow(w http.ResponseWriter, r *http.Request) {
	e, rec, err := s.entry(r.PathValue("name"))
	switch {
	case errors.Is(err, errNotFound):
		s.Console.APIError(w, http.StatusNotFound, err)
	case err != nil:
		s.Console.APIError(w, http.StatusInternalServerError, err)
	case rec == nil:
		s.Console.APIError(w, http.StatusNotFound, fmt.Errorf("deployment %s has no record: it was never deployed", e.Name))
	default:
		data, err := rec.Encode()
		if err != nil {
			s.Console.APIError(w, http.StatusInternalServerError, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	}
}

// errBusy is the error of a verification asked for while one started
// from the console runs on that deployment: one at a time keeps a double
// click from measuring twice.
var errBusy = errors.New("a verification started from the console is still running on it; its outcome will be on the deployment's page")

// errPending is the outcome of a verification still running when the
// request stops waiting.
var errPending = errors.New("still running")

// verify starts deployment name's verification and waits for its outcome
// up to s.Wait, or until the request ends: errPending then, and the
// verification goes on.
func (s *Section) verify(req *http.Request, name string) (*deploy.VerifyReport, error) {
	_, rec, err := s.entry(name)
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.Release == nil {
		return nil, cloud.Mark(fmt.Errorf("deployment %s was never deployed, so there is nothing to verify: kiln deploy %s --apply", name, name), errNotDeployed)
	}
	s.mu.Lock()
	if s.verifying[name] {
		s.mu.Unlock()
		return nil, fmt.Errorf("deployment %s: %w", name, errBusy)
	}
	if s.verifying == nil {
		s.verifying = map[string]bool{}
	}
	s.verifying[name] = true
	s.mu.Unlock()
	s.log().Info("console: verification started", "deployment", name, "client", server.Client(req))
	type outcome struct {
		rep *deploy.VerifyReport
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		rep, err := s.Verify(name)
		switch {
		case err != nil:
			s.log().Error("console: verification did not run", "deployment", name, "err", err)
		default:
			s.log().Info("console: verified", "deployment", name, "release", rep.Release, "passed", rep.Verification.Passed)
		}
		s.mu.Lock()
		delete(s.verifying, name)
		s.mu.Unlock()
		done <- outcome{rep, err}
	}()
	wait := s.Wait
	if wait <= 0 {
		wait = verifyWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case o := <-done:
		return o.rep, o.err
	case <-t.C:
	case <-req.Context().Done():
	}
	return nil, errPending
}

// errNotDeployed is the error of verifying a deployment with no release.
var errNotDeployed = errors.New("not deployed")

func (s *Section) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// running reports whether a verification started here runs on name.
func (s *Section) running(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.verifying[name]
}

// statusOf is the HTTP status of a verify request's error.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errBusy), errors.Is(err, errNotDeployed), errors.Is(err, cloud.ErrInvalid):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// verifyForm runs the checks from the deployment's page and shows the
// page again, with the outcome at the top of its verifications.
func (s *Section) verifyForm(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	page := "/deployments/" + url.PathEscape(name)
	_, err := s.verify(r, name)
	if err != nil && !errors.Is(err, errPending) {
		s.Console.Message(w, r, statusOf(err), "The verification did not run", err.Error(), page, "Back to "+name)
		return
	}
	http.Redirect(w, r, page+"#verifications", http.StatusSeeOther)
}

// apiVerify answers with kiln verify's document, or, when the checks take
// longer than the request waits, 202 and the deployment's entry: its
// verified_at changes when the outcome is recorded.
func (s *Section) apiVerify(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rep, err := s.verify(r, name)
	switch {
	case errors.Is(err, errPending):
		e, _, err := s.entry(name)
		if err != nil {
			s.Console.APIError(w, statusOf(err), err)
			return
		}
		w.Header().Set("Location", "/api/v1/deployments/"+url.PathEscape(name))
		s.Console.WriteJSON(w, http.StatusAccepted, report.Deployments{Schema: report.SchemaDeployments, Deployments: []deploy.ListEntry{e}})
	case err != nil:
		s.Console.APIError(w, statusOf(err), err)
	default:
		s.Console.WriteJSON(w, http.StatusOK, report.Verify{Schema: report.SchemaVerify, VerifyReport: rep})
	}
}

// render writes page name inside the console's layout.
func (s *Section) render(w http.ResponseWriter, r *http.Request, title, name string, data any) {
	var b strings.Builder
	if err := s.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		s.Console.Failed(w, r, fmt.Errorf("deployments page: %w", err))
		return
	}
	s.Console.Render(w, r, title, template.HTML(b.String())) // #nosec: the output of html/template
}
