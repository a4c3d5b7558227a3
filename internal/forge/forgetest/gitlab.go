package forgetest

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// GitLab serves GitLab's merge request API (v4) for one project.
type GitLab struct {
	server
	project string
	// Branches, when set, says whether a branch exists in the repository;
	// GitLab refuses a merge request from a branch that does not.
	Branches func(name string) bool
}

// NewGitLab serves project (group/project, groups may nest) to requests
// that carry token as PRIVATE-TOKEN or as a bearer token.
func NewGitLab(t testing.TB, project, token string) *GitLab {
	g := &GitLab{project: project}
	g.start(t, token, g.serve)
	return g
}

// URL is the API root, as forge.api_url.
func (g *GitLab) URL() string { return g.srv.URL + "/api/v4" }

func (g *GitLab) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("PRIVATE-TOKEN") != g.token && r.Header.Get("Authorization") != "Bearer "+g.token {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "401 Unauthorized"})
		return
	}
	// The project is one path segment: its full path URL-encoded.
	// Unencoded slashes route nowhere.
	want := "/api/v4/projects/" + url.PathEscape(g.project) + "/merge_requests"
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if iid, ok := strings.CutPrefix(path, want+"/"); ok && r.Method == http.MethodPut {
		g.update(w, r, iid)
		return
	}
	if path != want {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "404 Project Not Found"})
		return
	}
	switch r.Method {
	case http.MethodGet:
		g.list(w, r)
	case http.MethodPost:
		g.create(w, r)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"message": "405 Method Not Allowed"})
	}
}

func (g *GitLab) mr(m *Request) map[string]any {
	return map[string]any{
		"id": 1000 + m.Number, "iid": m.Number, "title": m.Title, "description": m.Description,
		"state": m.State, "source_branch": m.Source, "target_branch": m.Target,
		"web_url": fmt.Sprintf("%s/%s/-/merge_requests/%d", g.srv.URL, g.project, m.Number),
	}
}

func (g *GitLab) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out := []map[string]any{}
	for i := len(g.reqs) - 1; i >= 0; i-- { // newest first, as GitLab
		m := g.reqs[i]
		if s := q.Get("state"); s != "" && s != "all" && s != m.State {
			continue
		}
		if s := q.Get("source_branch"); s != "" && s != m.Source {
			continue
		}
		if s := q.Get("target_branch"); s != "" && s != m.Target {
			continue
		}
		out = append(out, g.mr(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *GitLab) create(w http.ResponseWriter, r *http.Request) {
	body, err := decodeBody(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	var missing []string
	for _, k := range []string{"source_branch", "target_branch", "title"} {
		if str(body, k) == "" {
			missing = append(missing, k+" is missing")
		}
	}
	if len(missing) > 0 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": strings.Join(missing, ", ")})
		return
	}
	src, dst := str(body, "source_branch"), str(body, "target_branch")
	if src == dst {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": []string{"You can't use same project/branch for source and target"}})
		return
	}
	if g.Branches != nil && !g.Branches(src) {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": []string{fmt.Sprintf("Source branch %q does not exist", src)}})
		return
	}
	for _, m := range g.reqs {
		if m.State == "opened" && m.Source == src && m.Target == dst {
			writeJSON(w, http.StatusConflict, map[string]any{"message": []string{"Another open merge request already exists for this source branch: !" + strconv.Itoa(m.Number)}})
			return
		}
	}
	rm, _ := body["remove_source_branch"].(bool)
	m := &Request{Number: len(g.reqs) + 1, Source: src, Target: dst, Title: str(body, "title"), Description: str(body, "description"), State: "opened", RemoveSourceBranch: rm}
	g.reqs = append(g.reqs, m)
	writeJSON(w, http.StatusCreated, g.mr(m))
}

// update is PUT .../merge_requests/:iid: title and description, both
// optional; GitLab refuses an empty title.
func (g *GitLab) update(w http.ResponseWriter, r *http.Request, iid string) {
	m := g.find(iid)
	if m == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "404 Not found"})
		return
	}
	body, err := decodeBody(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	if t, ok := body["title"]; ok {
		if s, _ := t.(string); s == "" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "title is empty"})
			return
		}
		m.Title = str(body, "title")
	}
	if _, ok := body["description"]; ok {
		m.Description = str(body, "description")
	}
	writeJSON(w, http.StatusOK, g.mr(m))
}
