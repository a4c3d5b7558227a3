package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/refresh"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/report/reporttest"
	"github.com/kiln-images/kiln/internal/server"
)

const testYAML = `project: demo
regions: [local-a, local-b, local-c]
build_region: local-a
cost_tag: {key: deployment_name, value: demo}
channels:
  latest: {}
  stable: {min_interval: 7d}
use_cases:
  sandbox:
    architectures: [x86_64]
    tests: [tests/boot.sh]
    publish: {public: true, deprecate_after: 30d}
    schedule: "0 3 * * *"
`

// fakeChecks is the drift check's state, set by the test.
type fakeChecks struct {
	mu       sync.Mutex
	snap     refresh.Snapshot
	triggers int
	onCheck  func(*refresh.Snapshot)
}

func (f *fakeChecks) Snapshot() refresh.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeChecks) Trigger() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggers++
	if f.onCheck != nil {
		f.onCheck(&f.snap)
	}
	ch := make(chan struct{})
	close(ch)
	return ch
}

// world is a project with one released run of sandbox in local-a..c.
type world struct {
	cfg     *config.Config
	j       *journal.Journal
	checks  *fakeChecks
	run     string
	images  map[string]string // region -> id
	console *Console
	srv     *server.Server
	ts      *httptest.Server
}

func newWorld(t *testing.T, actions *Actions) *world {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tests"), 0o755)
	os.WriteFile(filepath.Join(dir, "tests", "boot.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "kiln.yaml"), []byte(testYAML), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(cfg.StateDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	ctx := context.Background()
	w := &world{cfg: cfg, j: j, checks: &fakeChecks{}, images: map[string]string{}}
	created := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	w.run = journal.NewAssetID(created)
	if err := j.StartRun(ctx, journal.Run{ID: w.run, UseCase: "sandbox", Arch: "x86_64", Version: "20261121.093012", Created: created}); err != nil {
		t.Fatal(err)
	}
	step := func(phase, name, region, detail, resource string, err error) {
		id, berr := j.Begin(ctx, w.run, phase, name, region, detail)
		if berr != nil {
			t.Fatal(berr)
		}
		j.End(ctx, id, resource, err)
	}
	m := manifest.Manifest{}
	var as []cloud.Asset
	step("build", "build", "local-a", "sandbox-x86_64-cand", "img-00000000000000a00", nil)
	step("test", "boot", "local-a", "img-00000000000000a00", "img-00000000000000a00", nil)
	for i, region := range cfg.Regions {
		id := "img-0000000000000000" + string(rune('1'+i))
		w.images[region] = id
		step("replicate", "copy", region, "from img-00000000000000a00 in local-a", id, nil)
		m.Set("sandbox", region, manifest.Entry{Architecture: "x86_64", ID: id, Name: "sandbox-x86_64-20261121.093012",
			Public: true, DeprecationTime: "2026-12-21T09:30:12Z"})
		as = append(as, cloud.Asset{Kind: cloud.KindImage, ID: id, Region: region, State: "available", Created: created,
			Tags: map[string]string{cloud.TagManaged: "true", cloud.TagAssetID: w.run, cloud.TagUseCase: "sandbox",
				cloud.TagPhase: "replicate", "deployment_name": "demo"}})
	}
	path, _ := cfg.ManifestPath("latest")
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := manifest.Write(path, m); err != nil {
		t.Fatal(err)
	}
	step("publish", "document", "", path, path, nil)
	j.SetRun(ctx, w.run, "publish", journal.RunSucceeded)
	os.MkdirAll(filepath.Join(cfg.StateDir(), "runs", w.run), 0o755)
	os.WriteFile(filepath.Join(cfg.StateDir(), "runs", w.run, "test-console.log"),
		[]byte("\x1b[2J\x1b[01;01HBdsDxe: loading Boot0001\r\nWelcome to Debian\r\npassword=hunter2\r\nKILN-TEST-RESULT: PASS\r\n"), 0o644)

	// The check found everything in sync, one orphan.
	rep := drift.Report{Summary: drift.Summary{Checked: 3, InSync: 3, Drifted: map[drift.Kind]int{}, Coverage: 1, Regions: 3, Orphans: 1},
		Findings: []drift.Finding{{Kind: drift.Orphan, Severity: drift.SevOrphan, Region: "local-b", ImageID: "img-000000000000000ff",
			UseCase: "sandbox", Actual: "old", Message: "kiln-managed image of run kiln-x is referenced by no manifest"}}}
	w.checks.snap = refresh.Snapshot{Checks: 1, Started: time.Now().Add(-time.Second), Ended: time.Now(), LastSuccess: time.Now(),
		Result: &refresh.Result{
			Drift:   report.NewDrift([]string{"latest", "stable"}, rep),
			Checked: []drift.Channel{{Name: "latest", Manifest: m}, {Name: "stable", Manifest: manifest.Manifest{}}},
			Assets:  report.NewAssets(as),
		}}

	w.console, err = New(Options{Config: cfg, Backend: "local", Journal: j, Checks: w.checks, CheckEvery: 15 * time.Minute,
		Actions: actions, Schedule: NewScheduleRecord("latest")})
	if err != nil {
		t.Fatal(err)
	}
	w.srv = server.New(server.Config{})
	w.console.Mount(w.srv)
	w.ts = httptest.NewServer(w.srv.Handler())
	t.Cleanup(w.ts.Close)
	return w
}

// get fetches path and returns status and body.
func (w *world) get(t *testing.T, c *http.Client, path string) (int, string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Get(w.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// pages are every page of the console, as a person browses them.
func (w *world) pages() []string {
	return []string{"/", "/channels/latest/history", "/channels/stable/history", "/runs", "/runs?use_case=sandbox&state=succeeded",
		"/runs/" + w.run, "/runs/" + w.run + "/console.log", "/drift", "/assets", "/assets?run=" + w.run, "/schedule"}
}

func (w *world) apis() []string {
	return []string{"/api/v1/status", "/api/v1/runs", "/api/v1/runs/" + w.run, "/api/v1/manifests", "/api/v1/manifests?channel=latest",
		"/api/v1/drift", "/api/v1/assets", "/api/v1/assets?run=" + w.run, "/api/v1/schedule", "/api/v1/schedule?count=5&from=2026-11-21T00:00:00Z"}
}

func TestPages(t *testing.T) {
	w := newWorld(t, nil)
	for _, p := range w.pages() {
		code, body := w.get(t, nil, p)
		if code != 200 {
			t.Errorf("%s: %d\n%s", p, code, body)
		}
	}
	_, body := w.get(t, nil, "/")
	for region, id := range w.images {
		cell := regexp.MustCompile(`(?s)<li class="cell in-sync" data-region="` + region + `">.*?</li>`).FindString(body)
		if !strings.Contains(cell, id) || !strings.Contains(cell, "in sync") || !strings.Contains(cell, "2h") ||
			!strings.Contains(cell, "2026-12-21") || !strings.Contains(cell, "/runs/"+w.run) {
			t.Errorf("the channels page's cell of %s lacks its image, state, age, deprecation or run:\n%s", region, cell)
		}
	}
	if !strings.Contains(body, `href="/channels/latest/history"`) {
		t.Error("no link to the manifest's history")
	}

	_, body = w.get(t, nil, "/runs/"+w.run)
	for _, want := range []string{`data-phase="build"`, `data-phase="test"`, `data-phase="replicate"`, `data-phase="publish"`,
		`<rect class="span succeeded"`, "Welcome to Debian", "KILN-TEST-RESULT: PASS", "3 resources tagged with this run",
		`href="/runs/` + w.run + `/console.log"`} {
		if !strings.Contains(body, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	if strings.Contains(body, "hunter2") || strings.Contains(body, "\x1b") {
		t.Error("run page shows the console log's secret or escape sequences")
	}
	if strings.Contains(body, "--resume") {
		t.Error("a succeeded run offers a resume command")
	}

	_, body = w.get(t, nil, "/drift")
	if !strings.Contains(body, "img-000000000000000ff") || !strings.Contains(body, "3 in sync") {
		t.Errorf("drift page lacks the orphan or the summary:\n%s", body)
	}
	_, body = w.get(t, nil, "/assets")
	if !strings.Contains(body, w.run) || !strings.Contains(body, "3 image") || !strings.Contains(body, "deployment_name") {
		t.Errorf("assets page lacks the run, the count by kind or the cost tag:\n%s", body)
	}
	_, body = w.get(t, nil, "/schedule")
	if !strings.Contains(body, "0 3 * * *") || !strings.Contains(body, w.run) {
		t.Errorf("schedule page lacks the cron or the last run:\n%s", body)
	}
	if code, _ := w.get(t, nil, "/runs/kiln-20990101T000000Z-abcdef"); code != 404 {
		t.Errorf("unknown run: %d", code)
	}
	if code, _ := w.get(t, nil, "/runs/..%2f..%2fetc"); code != 404 {
		t.Errorf("bad run id: %d", code)
	}
	if code, _ := w.get(t, nil, "/static/"); code != 404 {
		t.Errorf("GET /static/: %d, want 404 (no listing)", code)
	}
	if code, _ := w.get(t, nil, "/runs?page=0"); code != 400 {
		t.Errorf("page 0: %d", code)
	}
}

// The drift state of each cell follows the findings of the last check for
// the entry as it was checked.
func TestCellStates(t *testing.T) {
	w := newWorld(t, nil)
	res := w.checks.snap.Result
	res.Drift.Findings = append(res.Drift.Findings,
		drift.Finding{Kind: drift.Public, Severity: drift.SevDrift, Channel: "latest", UseCase: "sandbox", Region: "local-a",
			ImageID: w.images["local-a"], Expected: "public", Actual: "private", Message: "image is private"},
		drift.Finding{Kind: drift.Missing, Severity: drift.SevDrift, Channel: "latest", UseCase: "sandbox", Region: "local-b",
			ImageID: w.images["local-b"], Message: "image does not exist"},
		drift.Finding{Kind: drift.Deprecating, Severity: drift.SevWarning, Channel: "latest", UseCase: "sandbox", Region: "local-c",
			ImageID: w.images["local-c"], Message: "deprecated in 5d"})
	_, body := w.get(t, nil, "/")
	for region, state := range map[string]string{"local-a": "drifted", "local-b": "missing", "local-c": "deprecating"} {
		if !strings.Contains(body, `<li class="cell `+state+`" data-region="`+region+`">`) {
			t.Errorf("%s is not shown %s", region, state)
		}
	}
	// An entry changed since the check is not claimed checked.
	path, _ := w.cfg.ManifestPath("latest")
	m, _ := manifest.Load(path)
	e := m["sandbox"]["local-a"]
	e.ID = "img-000000000000000aa"
	m.Set("sandbox", "local-a", e)
	manifest.Write(path, m)
	_, body = w.get(t, nil, "/")
	if !strings.Contains(body, `<li class="cell unchecked" data-region="local-a">`) {
		t.Error("an entry changed since the check is not shown unchecked")
	}
	// Before any check every entry is unchecked and the API says why.
	w.checks.snap = refresh.Snapshot{Running: true}
	_, body = w.get(t, nil, "/")
	if strings.Contains(body, "cell in-sync") || !strings.Contains(body, "A drift check is running") {
		t.Error("before the first check an entry is shown in sync, or the running check is not said")
	}
	if code, body := w.get(t, nil, "/api/v1/drift"); code != 503 || !strings.Contains(body, "kiln.error/v1") {
		t.Errorf("drift API before a check: %d %s", code, body)
	}
}

// An interrupted run (running in the journal, nobody holding its lock)
// shows the command that resumes it.
func TestInterruptedRun(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	id := journal.NewAssetID(time.Now())
	w.j.StartRun(ctx, journal.Run{ID: id, UseCase: "sandbox", Arch: "x86_64"})
	w.j.Begin(ctx, id, "replicate", "copy", "local-b", "") // never ended
	_, body := w.get(t, nil, "/runs/"+id)
	if !strings.Contains(body, "kiln release --resume "+id) || !strings.Contains(body, "interrupted") {
		t.Errorf("interrupted run page lacks the resume command:\n%s", body)
	}
	w.console.o.RunLocked = func(string) bool { return true }
	_, body = w.get(t, nil, "/runs/"+id)
	if strings.Contains(body, "--resume") {
		t.Error("a run a process works on offers a resume command")
	}
}

// Without actions the server has no write path: every pattern is GET,
// every other method is refused on every page and document, and no page
// has a form.
func TestReadOnly(t *testing.T) {
	w := newWorld(t, nil)
	for _, p := range w.srv.Patterns() {
		if !strings.HasPrefix(p, "GET ") {
			t.Errorf("pattern %q answers more than GET", p)
		}
	}
	paths := append(w.pages(), w.apis()...)
	paths = append(paths, "/login", "/logout", "/promote", "/actions/release", "/actions/promote", "/actions/drift",
		"/api/v1/releases", "/api/v1/promotions", "/static/console.css", "/healthz")
	for _, p := range paths {
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			req, _ := http.NewRequest(method, w.ts.URL+p, strings.NewReader("use_case=sandbox"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 && resp.StatusCode != 405 {
				t.Errorf("%s %s: %d, want 404 or 405", method, p, resp.StatusCode)
			}
		}
	}
	for _, p := range w.pages() {
		_, body := w.get(t, nil, p)
		if strings.Contains(strings.ToLower(body), "<form") {
			t.Errorf("%s has a form without --allow-actions", p)
		}
	}
	for _, p := range []string{"/login", "/promote"} {
		if code, _ := w.get(t, nil, p); code != 404 {
			t.Errorf("GET %s: %d without actions", p, code)
		}
	}
}

// Every API document validates against its schema (docs/schemas), the
// files the commands' documents are checked against.
func TestAPIMatchesSchemas(t *testing.T) {
	w := newWorld(t, nil)
	for _, p := range append(w.apis(), "/api/v1/runs/kiln-20990101T000000Z-abcdef", "/api/v1/manifests?channel=nope", "/api/v1/schedule?count=0") {
		code, body := w.get(t, nil, p)
		var head struct {
			Schema string `json:"schema"`
		}
		if err := json.Unmarshal([]byte(body), &head); err != nil {
			t.Errorf("%s: not JSON (%d): %s", p, code, body)
			continue
		}
		reporttest.Validate(t, p, head.Schema, []byte(body))
		if strings.Contains(body, "null") {
			t.Errorf("%s has a null:\n%s", p, body)
		}
	}
	_, body := w.get(t, nil, "/api/v1/runs/"+w.run)
	var runs report.Runs
	json.Unmarshal([]byte(body), &runs)
	if len(runs.Runs) != 1 || runs.Runs[0].ID != w.run || len(runs.Steps) == 0 {
		t.Errorf("run document %+v", runs)
	}
	_, body = w.get(t, nil, "/api/v1/assets?run="+w.run)
	var as report.Assets
	json.Unmarshal([]byte(body), &as)
	if len(as.Assets) != 3 || len(as.Runs) != 1 {
		t.Errorf("assets of the run: %+v", as)
	}
}

func testActions(releases *[]string) *Actions {
	return &Actions{
		Token: []byte("s3cret-token-of-the-server"),
		Release: func(ctx context.Context, useCase, arch, ch string) (string, func() error, error) {
			if useCase != "sandbox" {
				return "", nil, &BadInputError{errors.New("no use case " + useCase)}
			}
			*releases = append(*releases, useCase+"/"+arch+"->"+ch)
			return "", nil, errors.New("unreachable")
		},
		Promote: func(ctx context.Context, useCase, from, to string, apply bool) (report.Promote, error) {
			rep := report.Promote{Schema: report.SchemaPromote, PromoteReport: pipeline.PromoteReport{UseCase: useCase, From: from, To: to,
				Gates:   []pipeline.Gate{{Name: "complete", Passed: true}, {Name: "interval", Passed: true}},
				Changes: []manifest.Change{{UseCase: useCase, Region: "local-a", Kind: manifest.Added, New: &manifest.Entry{ID: "img-00000000000000001"}}},
				Applied: apply}}
			return rep, nil
		},
	}
}

// With actions: the login takes the token and gives a session; forms need
// the session and its CSRF token; the API needs the bearer token.
func TestActions(t *testing.T) {
	var releases []string
	acts := testActions(&releases)
	w := newWorld(t, acts)
	// Release makes a run in the journal and succeeds.
	acts.Release = func(ctx context.Context, useCase, arch, ch string) (string, func() error, error) {
		if useCase != "sandbox" {
			return "", nil, &BadInputError{errors.New("no use case " + useCase)}
		}
		id := journal.NewAssetID(time.Now())
		w.j.StartRun(ctx, journal.Run{ID: id, UseCase: useCase, Arch: arch})
		releases = append(releases, useCase+"/"+arch+"->"+ch)
		return id, func() error { return nil }, nil
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", w.ts.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	// Logged out: no forms, a login link; forms redirect to the login.
	_, body := w.get(t, browser, "/")
	if strings.Contains(body, "/actions/release") || !strings.Contains(body, "Log in to act") {
		t.Error("logged out, the channels page shows the release form or no login link")
	}
	if resp := post("/actions/release", url.Values{"use_case": {"sandbox/x86_64"}}); resp.StatusCode != 303 ||
		!strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("release without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := post("/login", url.Values{"token": {"wrong"}}); resp.StatusCode != 401 {
		t.Errorf("login with a wrong token: %d", resp.StatusCode)
	}
	resp := post("/login", url.Values{"token": {string(acts.Token)}, "next": {"https://evil.example/"}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	ck := resp.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || strings.Contains(ck[0].Value, string(acts.Token)) {
		t.Fatalf("session cookie %+v", ck)
	}

	_, body = w.get(t, browser, "/")
	token := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(body)
	if token == nil || !strings.Contains(body, `action="/actions/release"`) {
		t.Fatalf("logged in, the channels page has no release form:\n%s", body)
	}
	csrf := token[1]
	if resp := post("/actions/release", url.Values{"use_case": {"sandbox/x86_64"}, "channel": {"latest"}}); resp.StatusCode != 403 {
		t.Errorf("release without the CSRF token: %d", resp.StatusCode)
	}
	resp = post("/actions/release", url.Values{"use_case": {"sandbox/x86_64"}, "channel": {"latest"}, "csrf_token": {csrf}})
	if resp.StatusCode != 303 || !strings.HasPrefix(resp.Header.Get("Location"), "/runs/kiln-") {
		t.Fatalf("release: %d to %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(releases) != 1 || releases[0] != "sandbox/x86_64->latest" {
		t.Errorf("releases %v", releases)
	}
	if resp := post("/actions/release", url.Values{"use_case": {"nope/x86_64"}, "channel": {"latest"}, "csrf_token": {csrf}}); resp.StatusCode != 400 {
		t.Errorf("release of an unknown use case: %d", resp.StatusCode)
	}

	// Promote: the gates, then a form that applies.
	req, _ := http.NewRequest("POST", w.ts.URL+"/actions/promote", strings.NewReader(url.Values{"use_case": {"sandbox"}, "from": {"latest"}, "to": {"stable"}, "csrf_token": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	presp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(presp.Body)
	presp.Body.Close()
	if presp.StatusCode != 200 || !strings.Contains(string(pb), "interval") || !strings.Contains(string(pb), `name="apply" value="1"`) {
		t.Errorf("promote plan page: %d\n%s", presp.StatusCode, pb)
	}

	// The drift check action triggers a check and goes back to the drift page.
	before := w.checks.triggers
	if resp := post("/actions/drift", url.Values{"csrf_token": {csrf}}); resp.StatusCode != 303 || w.checks.triggers != before+1 {
		t.Errorf("drift action: %d, triggers %d", resp.StatusCode, w.checks.triggers-before)
	}

	// The API: bearer token, no cookie.
	api := func(path, auth, body string) (int, string) {
		req, _ := http.NewRequest("POST", w.ts.URL+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := api("/api/v1/drift", "", ""); code != 401 {
		t.Errorf("API without a token: %d", code)
	}
	if code, _ := api("/api/v1/drift", "wrong", ""); code != 401 {
		t.Errorf("API with a wrong token: %d", code)
	}
	code, body := api("/api/v1/drift", string(acts.Token), "")
	if code != 200 {
		t.Errorf("API drift check: %d %s", code, body)
	}
	reporttest.Validate(t, "POST /api/v1/drift", report.SchemaDrift, []byte(body))
	code, body = api("/api/v1/promotions", string(acts.Token), `{"use_case":"sandbox"}`)
	if code != 200 {
		t.Errorf("API promotion plan: %d %s", code, body)
	}
	reporttest.Validate(t, "POST /api/v1/promotions", report.SchemaPromote, []byte(body))
	if code, body := api("/api/v1/releases", string(acts.Token), `{"use_case":"sandbox","bogus":1}`); code != 400 || !strings.Contains(body, "bogus") {
		t.Errorf("API release with an unknown field: %d %s", code, body)
	}
	code, body = api("/api/v1/releases", string(acts.Token), `{"use_case":"sandbox","arch":"x86_64"}`)
	if code != 202 {
		t.Fatalf("API release: %d %s", code, body)
	}
	reporttest.Validate(t, "POST /api/v1/releases", report.SchemaRuns, []byte(body))

	// Logged out again, the forms are gone.
	post("/logout", url.Values{"csrf_token": {csrf}})
	if _, body := w.get(t, browser, "/"); strings.Contains(body, "/actions/release") {
		t.Error("after logout the release form is still shown")
	}
}

// Failed attempts at the token are limited per client.
func TestTokenAttemptsLimited(t *testing.T) {
	var releases []string
	w := newWorld(t, testActions(&releases))
	limited := false
	for i := 0; i < authAttempts+2; i++ {
		req, _ := http.NewRequest("POST", w.ts.URL+"/api/v1/drift", nil)
		req.Header.Set("Authorization", "Bearer guess")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 429 {
			limited = true
			break
		}
	}
	if !limited {
		t.Errorf("%d wrong tokens and never limited", authAttempts+2)
	}
}

func TestCleanConsole(t *testing.T) {
	for in, want := range map[string]string{
		"plain\n":                  "plain\n",
		"a\r\nb\r\n":               "a\nb\n",
		"\x1b[0;32mOK\x1b[0m done": "OK done",
		"\x1b[?25l\x1b[2Jtext\x07": "text",
		"bad \xff utf8":            "bad \uFFFD utf8",
		"tab\tkept\x00":            "tab\tkept",
		"\x1b":                     "",
		"\x1b[":                    "",
	} {
		if got := cleanConsole(in); got != want {
			t.Errorf("cleanConsole(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	steps := []journal.Step{
		{Phase: "build", Name: "build", Region: "a", State: journal.StepSucceeded, Started: t0, Ended: t0.Add(60 * time.Second)},
		{Phase: "replicate", Name: "copy", Region: "a", State: journal.StepSucceeded, Started: t0.Add(60 * time.Second), Ended: t0.Add(80 * time.Second)},
		{Phase: "replicate", Name: "copy", Region: "b", State: journal.StepFailed, Started: t0.Add(60 * time.Second), Ended: t0.Add(100 * time.Second)},
	}
	start, end, phases := timeline(steps, false)
	if !start.Equal(t0) || !end.Equal(t0.Add(100*time.Second)) || len(phases) != 2 {
		t.Fatalf("timeline %s..%s %d phases", start, end, len(phases))
	}
	if phases[1].State != "failed" || phases[1].Took != 40*time.Second || phases[1].Start != 60*time.Second {
		t.Errorf("replicate phase %+v", phases[1])
	}
	if s := phases[1].Steps[1]; s.X != "60.00%" || s.W != "40.00%" {
		t.Errorf("bar of the copy to b at %s width %s, want 60%% and 40%%", s.X, s.W)
	}
}

// A section added by another feature gets a navigation entry and renders
// inside the layout.
func TestSection(t *testing.T) {
	w := newWorld(t, nil)
	w.console.AddSection(Section{Title: "Deployments", Path: "/deployments"})
	w.srv.Handle("GET /deployments", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.console.Render(rw, r, "Deployments", "<p>two deployments</p>")
	}))
	_, body := w.get(t, nil, "/deployments")
	if !strings.Contains(body, `<a href="/deployments" aria-current="page">Deployments</a>`) || !strings.Contains(body, "<p>two deployments</p>") {
		t.Errorf("section page:\n%s", body)
	}
}

func TestDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond:                      "2ms",
		4240 * time.Millisecond:                      "4.2s",
		3*time.Minute + 12400*time.Millisecond:       "3m12s",
		2*time.Hour + 5*time.Minute + 20*time.Second: "2h5m",
		2 * time.Hour:                                "2h0m",
	} {
		if got := dur(d); got != want {
			t.Errorf("dur(%s) = %q, want %q", d, got, want)
		}
	}
}
