// Package deployweb is the console's deployments section: a page listing
// the project's deployments, a page for each with its record (release per
// region, units, URLs, verifications, approvals, hold, lock, history), and
// the same as API documents:
//
//	GET /api/v1/deployments         kiln deployments -o json
//	GET /api/v1/deployments/{name}  the record, as deployments/NAME.json holds it
//
// Like the rest of the console it reads files (kiln.yaml and the records),
// never the cloud: what runs against what the record says is kiln status.
package deployweb

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/kiln-images/kiln/internal/console"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/report"
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

	tmpl *template.Template
}

// Mount adds the section to the console's navigation and its handlers to
// m. Every handler answers GET (and HEAD) only.
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
	p := showPage{Entry: e, Record: rec}
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

// render writes page name inside the console's layout.
func (s *Section) render(w http.ResponseWriter, r *http.Request, title, name string, data any) {
	var b strings.Builder
	if err := s.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		s.Console.Failed(w, r, fmt.Errorf("deployments page: %w", err))
		return
	}
	s.Console.Render(w, r, title, template.HTML(b.String())) // #nosec: the output of html/template
}
