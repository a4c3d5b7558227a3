package forgetest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// GitHub serves GitHub's pull request API for one repository.
type GitHub struct {
	server
	owner, repo string
	// Branches, when set, says whether a branch exists in the repository;
	// GitHub refuses a pull request from a head that does not.
	Branches func(name string) bool
}

// NewGitHub serves owner/repo to requests that carry token as a bearer
// (or "token") credential and a User-Agent.
func NewGitHub(t testing.TB, ownerRepo, token string) *GitHub {
	owner, repo, _ := strings.Cut(ownerRepo, "/")
	g := &GitHub{owner: owner, repo: repo}
	g.start(t, token, g.serve)
	return g
}

// URL is the API root, as forge.api_url (api.github.com's place).
func (g *GitHub) URL() string { return g.srv.URL }

func (g *GitHub) serve(w http.ResponseWriter, r *http.Request) {
	if a := r.Header.Get("Authorization"); a != "Bearer "+g.token && a != "token "+g.token {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
		return
	}
	if r.Header.Get("User-Agent") == "" {
		writeJSON(w, http.StatusForbidden, map[string]any{"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"})
		return
	}
	path, _, _ := strings.Cut(r.RequestURI, "?")
	pulls := "/repos/" + url.PathEscape(g.owner) + "/" + url.PathEscape(g.repo) + "/pulls"
	if n, ok := strings.CutPrefix(path, pulls+"/"); ok && r.Method == http.MethodPatch {
		g.update(w, r, n)
		return
	}
	if path != pulls {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found", "status": "404"})
		return
	}
	switch r.Method {
	case http.MethodGet:
		g.list(w, r)
	case http.MethodPost:
		g.create(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
	}
}

func (g *GitHub) pr(p *Request) map[string]any {
	return map[string]any{
		"number": p.Number, "title": p.Title, "body": p.Description, "state": p.State,
		"html_url": fmt.Sprintf("%s/%s/%s/pull/%d", g.srv.URL, g.owner, g.repo, p.Number),
		"head":     map[string]any{"ref": p.Source, "label": g.owner + ":" + p.Source},
		"base":     map[string]any{"ref": p.Target, "label": g.owner + ":" + p.Target},
	}
}

func (g *GitHub) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	out := []map[string]any{}
	for _, p := range g.reqs {
		if state != "all" && p.State != state {
			continue
		}
		// head is user:ref; a bare ref matches nothing, as on GitHub.
		if h := q.Get("head"); h != "" && h != g.owner+":"+p.Source {
			continue
		}
		if b := q.Get("base"); b != "" && b != p.Target {
			continue
		}
		out = append(out, g.pr(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func validation(w http.ResponseWriter, errs ...map[string]any) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": errs, "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"})
}

func (g *GitHub) create(w http.ResponseWriter, r *http.Request) {
	body, err := decodeBody(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Problems parsing JSON"})
		return
	}
	for _, k := range []string{"title", "head", "base"} {
		if str(body, k) == "" {
			validation(w, map[string]any{"resource": "PullRequest", "field": k, "code": "missing_field"})
			return
		}
	}
	head, base := str(body, "head"), str(body, "base")
	if g.Branches != nil && !g.Branches(head) {
		validation(w, map[string]any{"resource": "PullRequest", "field": "head", "code": "invalid"})
		return
	}
	for _, p := range g.reqs {
		if p.State == "open" && p.Source == head && p.Target == base {
			validation(w, map[string]any{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for " + g.owner + ":" + head + "."})
			return
		}
	}
	p := &Request{Number: len(g.reqs) + 1, Source: head, Target: base, Title: str(body, "title"), Description: str(body, "body"), State: "open"}
	g.reqs = append(g.reqs, p)
	writeJSON(w, http.StatusCreated, g.pr(p))
}

// update is PATCH .../pulls/:number: title and body, both optional.
func (g *GitHub) update(w http.ResponseWriter, r *http.Request, number string) {
	p := g.find(number)
	if p == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found", "status": "404"})
		return
	}
	body, err := decodeBody(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Problems parsing JSON"})
		return
	}
	if _, ok := body["title"]; ok {
		if str(body, "title") == "" {
			validation(w, map[string]any{"resource": "PullRequest", "field": "title", "code": "missing_field"})
			return
		}
		p.Title = str(body, "title")
	}
	if _, ok := body["body"]; ok {
		p.Description = str(body, "body")
	}
	writeJSON(w, http.StatusOK, g.pr(p))
}
