package deployweb

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/console"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/refresh"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/report/reporttest"
)

// noChecks is a drift check that never ran: the deployments pages do not
// read it.
type noChecks struct{}

func (noChecks) Snapshot() refresh.Snapshot { return refresh.Snapshot{} }
func (noChecks) Trigger() <-chan struct{}   { return nil }

// newServer serves the console with the deployments section for the
// example project (dev, staging, prod and no records yet) in a temporary
// directory, and returns the server and the project's directory.
func newServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	srv, dir, _ := newSection(t, nil)
	return srv, dir
}

// token is the server's token when the console's actions are on.
const token = "s3cret-token-for-tests"

// newSection serves the section with actions on when with is not nil,
// which then sets the section's fields (Verify, Wait) before it mounts.
func newSection(t *testing.T, with func(*Section, *deploy.Deployer)) (*httptest.Server, string, *Section) {
	t.Helper()
	dir := t.TempDir()
	ex, err := fs.Sub(config.Example, "example")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, ex); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	o := console.Options{Config: cfg, Backend: "local", Journal: j, Checks: noChecks{}}
	if with != nil {
		o.Actions = &console.Actions{Token: []byte(token)}
	}
	c, err := console.New(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Mount(mux)
	d := &deploy.Deployer{Config: cfg, Journal: j, Who: "tester"}
	s := &Section{Console: c, List: d.List, Entry: d.Entry}
	if with != nil {
		with(s, d)
	}
	if err := s.Mount(mux); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, dir, s
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, body := do(t, http.DefaultClient, mustRequest(t, "GET", srv.URL+path, nil))
	return resp.StatusCode, body
}

// devRecord is dev after a deploy, a failed and a passed verification and
// a lock.
func devRecord(t *testing.T, dir string) *record.Record {
	t.Helper()
	at := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	r := record.New("dev", "demo", "local-a", "000000000000")
	r.State = record.StateDeployed
	r.DeployedAt, r.DeployedBy, r.Run = at, "alice", "kiln-20261204T100000Z-abcdef"
	r.Release = &record.Release{ID: "20261204.100000-3f9a1c2b", UseCase: "debian-sandbox", Arch: "x86_64", Version: "20261204.100000",
		ImageName: "debian-sandbox-x86_64-20261204.100000", Images: map[string]string{"local-a": "img-0123456789abcdef0"},
		Channel: "latest", Manifest: "manifests/latest.json"}
	r.Units = map[string]record.Unit{"web": {Kind: "vm", Token: "t"}}
	r.URLs = []string{"http://127.0.0.1:41234"}
	r.AddVerification(record.Verification{At: at.Add(time.Minute), Release: r.Release.ID, Passed: false,
		Checks: []record.CheckResult{{Name: "health", Measurements: 3, Failures: 3, Detail: "status 503, want 200"}}})
	r.AddVerification(record.Verification{At: at.Add(2 * time.Minute), Release: r.Release.ID, Passed: true,
		Checks: []record.CheckResult{{Name: "health", Passed: true, Measurements: 3}}})
	r.AddEvent(record.Event{At: at, Action: "deploy", By: "alice", Release: r.Release.ID})
	r.Lock = &record.Mark{By: "bob", At: at.Add(time.Hour), Reason: "incident 42"}
	if err := record.Save(dir, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestListPage(t *testing.T) {
	srv, dir := newServer(t)
	code, body := get(t, srv, "/deployments")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`<a href="/deployments" aria-current="page">Deployments</a>`,
		`<tr data-deployment="dev">`, `<tr data-deployment="staging">`, `<tr data-deployment="prod">`,
		`<span class="status new">new</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("list page lacks %s", want)
		}
	}
	devRecord(t, dir)
	_, body = get(t, srv, "/deployments")
	row := body[strings.Index(body, `<tr data-deployment="dev">`):]
	row = row[:strings.Index(row, "</tr>")]
	for _, want := range []string{`<span class="status deployed">deployed</span>`, "<code>20261204.100000-3f9a1c2b</code>",
		`<span class="status passed">passed</span>`, `<span class="badge warning">locked</span>`, "local-a"} {
		if !strings.Contains(row, want) {
			t.Errorf("dev's row lacks %s:\n%s", want, row)
		}
	}
}

func TestShowPage(t *testing.T) {
	srv, dir := newServer(t)
	_, body := get(t, srv, "/deployments/staging")
	if !strings.Contains(body, "Never deployed: <code>kiln deploy staging --apply</code>") {
		t.Errorf("staging's page:\n%s", body)
	}
	devRecord(t, dir)
	code, body := get(t, srv, "/deployments/dev")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`<a href="/deployments" aria-current="page">Deployments</a>`, // the section stays current
		"<code>img-0123456789abcdef0</code>", "channel latest", "<td>web</td><td>vm</td>",
		`href="http://127.0.0.1:41234"`, "by bob", "incident 42", "status 503, want 200",
		`href="/runs/kiln-20261204T100000Z-abcdef"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dev's page lacks %s", want)
		}
	}
	// The latest verification first.
	if p, f := strings.Index(body, `<span class="status passed">passed</span>`), strings.Index(body, `<span class="status failed">failed</span>`); p < 0 || f < 0 || p > f {
		t.Errorf("verifications not latest first (passed at %d, failed at %d)", p, f)
	}
	for _, path := range []string{"/deployments/nope", "/deployments/..%2fkiln", "/api/v1/deployments/nope"} {
		if code, _ := get(t, srv, path); code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, code)
		}
	}
}

// The API serves kiln deployments' document and the record as it is in
// git.
func TestAPI(t *testing.T) {
	srv, dir := newServer(t)
	devRecord(t, dir)
	code, body := get(t, srv, "/api/v1/deployments")
	var list report.Deployments
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != http.StatusOK {
		t.Fatalf("status %d, %v:\n%s", code, err, body)
	}
	reporttest.Validate(t, "/api/v1/deployments", report.SchemaDeployments, []byte(body))
	if list.Schema != report.SchemaDeployments || len(list.Deployments) != 3 || list.Deployments[0].Name != "dev" || list.Deployments[0].Verified != "passed" {
		t.Errorf("list %+v", list)
	}
	code, body = get(t, srv, "/api/v1/deployments/dev")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	file, err := os.ReadFile(record.Path(dir, "dev"))
	if err != nil {
		t.Fatal(err)
	}
	if body != string(file) {
		t.Errorf("record from the API:\n%s\nwant deployments/dev.json byte for byte:\n%s", body, file)
	}
	if _, err := record.Decode("api", []byte(body), "dev"); err != nil {
		t.Error(err)
	}
	for _, path := range []string{"/deployments", "/deployments/dev", "/api/v1/deployments", "/api/v1/deployments/dev", "/api/v1/deployments/nope"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store (records change under the server)", path, cc)
		}
	}
	if code, body := get(t, srv, "/api/v1/deployments/staging"); code != http.StatusNotFound || !strings.Contains(body, "never deployed") {
		t.Errorf("staging: status %d %s", code, body)
	} else {
		reporttest.Validate(t, "/api/v1/deployments/staging", report.SchemaError, []byte(body))
	}
}

// app serves what the example's checks ask of dev's web unit: /health
// answers ok (or, when sick, 503) and /version the release's version.
func app(t *testing.T, version string, sick *atomic.Bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			if sick.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok\n")
		case "/version":
			json.NewEncoder(w).Encode(map[string]string{"version": version})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// deployedDev records dev as deployed with its web unit at appURL and no
// verification yet.
func deployedDev(t *testing.T, dir, appURL string) *record.Record {
	t.Helper()
	r := devRecord(t, dir)
	r.Verifications, r.Lock = nil, nil
	r.Outputs = map[string]string{"web.url.http": appURL}
	r.URLs = []string{appURL}
	if err := record.Save(dir, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// login returns a client holding a console session.
func login(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(srv.URL+"/login", url.Values{"token": {token}, "next": {"/deployments"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/deployments" {
		t.Fatalf("login: status %d at %s", resp.StatusCode, resp.Request.URL)
	}
	return c
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`action="/deployments/dev/verify" class="row"><input type="hidden" name="csrf_token" value="([^"]+)"`)

// Verify now on a deployment's page runs its checks (the deployer's own,
// against a live app) and shows the page again with the outcome on top.
func TestVerifyForm(t *testing.T) {
	var sick atomic.Bool
	srv, dir, _ := newSection(t, func(s *Section, d *deploy.Deployer) {
		s.Verify = func(name string) (*deploy.VerifyReport, error) { return d.Verify(context.Background(), name) }
	})
	r := deployedDev(t, dir, app(t, "20261204.100000", &sick).URL)

	// Without a session the page offers no form and the action sends to the login.
	if _, body := get(t, srv, "/deployments/dev"); strings.Contains(body, "Verify now") {
		t.Error("the page offers Verify now without a session")
	}
	resp, err := http.PostForm(srv.URL+"/deployments/dev/verify", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/login" {
		t.Errorf("verify without a session ended at %s, want the login", resp.Request.URL)
	}

	c := login(t, srv)
	resp, body := do(t, c, mustRequest(t, "GET", srv.URL+"/deployments/dev", nil))
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("dev's page offers no verify form to a session:\n%s", body)
	}
	// A form without the session's CSRF token is refused.
	resp, _ = do(t, c, formRequest(t, srv.URL+"/deployments/dev/verify", url.Values{"csrf_token": {"forged"}}))
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged CSRF token: status %d, want 403", resp.StatusCode)
	}
	if got := loadRecord(t, dir); len(got.Verifications) != 0 {
		t.Fatalf("a refused form verified: %+v", got.Verifications)
	}

	resp, body = do(t, c, formRequest(t, srv.URL+"/deployments/dev/verify", url.Values{"csrf_token": {m[1]}}))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/deployments/dev" {
		t.Fatalf("verify: status %d at %s:\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	got := loadRecord(t, dir)
	if len(got.Verifications) != 1 || !got.Verifications[0].Passed || got.Verifications[0].Release != r.Release.ID || len(got.Verifications[0].Checks) != 2 {
		t.Fatalf("record's verifications after Verify now: %+v", got.Verifications)
	}
	if !strings.Contains(body, `<span class="status passed">passed</span>`) || !strings.Contains(body, "health: passed, 3 measurements") {
		t.Errorf("the page after Verify now lacks the outcome:\n%s", body)
	}

	// A failing app is recorded as failed, and the page says what the check saw.
	sick.Store(true)
	_, body = do(t, c, formRequest(t, srv.URL+"/deployments/dev/verify", url.Values{"csrf_token": {m[1]}}))
	if got := loadRecord(t, dir); len(got.Verifications) != 2 || got.Verifications[1].Passed {
		t.Fatalf("record's verifications after a failing check: %+v", got.Verifications)
	}
	if !strings.Contains(body, "status 503") {
		t.Errorf("the page does not say what the failed check saw:\n%s", body)
	}

	// A deployment never deployed: 409 and a page saying so; an unknown one: 404.
	for _, tt := range []struct {
		path, says string
		status     int
	}{
		{"/deployments/staging/verify", "deployment staging was never deployed, so there is nothing to verify", http.StatusConflict},
		{"/deployments/nope/verify", "no such deployment", http.StatusNotFound},
	} {
		resp, body := do(t, c, formRequest(t, srv.URL+tt.path, url.Values{"csrf_token": {m[1]}}))
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.says) {
			t.Errorf("%s: status %d, want %d saying %q:\n%s", tt.path, resp.StatusCode, tt.status, tt.says, body)
		}
	}
}

// The API verifies with a bearer token and answers kiln verify's
// document.
func TestVerifyAPI(t *testing.T) {
	var sick atomic.Bool
	srv, dir, _ := newSection(t, func(s *Section, d *deploy.Deployer) {
		s.Verify = func(name string) (*deploy.VerifyReport, error) { return d.Verify(context.Background(), name) }
	})
	r := deployedDev(t, dir, app(t, "20261204.100000", &sick).URL)
	for _, tok := range []string{"", "wrong"} {
		if resp, body := postVerify(t, srv, tok, "dev"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: status %d %s", tok, resp.StatusCode, body)
		}
	}
	if got := loadRecord(t, dir); len(got.Verifications) != 0 {
		t.Fatalf("verified without the token: %+v", got.Verifications)
	}
	resp, body := postVerify(t, srv, token, "dev")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d:\n%s", resp.StatusCode, body)
	}
	reporttest.Validate(t, "POST /api/v1/deployments/dev/verifications", report.SchemaVerify, []byte(body))
	var v report.Verify
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.Schema != report.SchemaVerify || v.Deployment != "dev" || v.Release != r.Release.ID || !v.Verification.Passed {
		t.Errorf("document %+v", v)
	}
	if got := loadRecord(t, dir); len(got.Verifications) != 1 || !got.Verifications[0].At.Equal(v.Verification.At) {
		t.Errorf("record's verifications %+v, want the one answered", got.Verifications)
	}
	for name, want := range map[string]int{"staging": http.StatusConflict, "nope": http.StatusNotFound} {
		resp, body := postVerify(t, srv, token, name)
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", name, resp.StatusCode, want)
		}
		reporttest.Validate(t, "error of /verifications", report.SchemaError, []byte(body))
	}
}

// A verification longer than the request waits answers 202 and lands in
// the record when it ends; another one meanwhile is refused, and the page
// says one is running.
func TestVerifyOutlivesRequest(t *testing.T) {
	var sick atomic.Bool
	hold := make(chan struct{})
	srv, dir, _ := newSection(t, func(s *Section, d *deploy.Deployer) {
		s.Verify = func(name string) (*deploy.VerifyReport, error) {
			<-hold
			return d.Verify(context.Background(), name)
		}
		s.Wait = 100 * time.Millisecond
	})
	deployedDev(t, dir, app(t, "20261204.100000", &sick).URL)
	resp, body := postVerify(t, srv, token, "dev")
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") != "/api/v1/deployments/dev" {
		t.Fatalf("status %d, Location %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	reporttest.Validate(t, "202 of /verifications", report.SchemaDeployments, []byte(body))
	if resp, body := postVerify(t, srv, token, "dev"); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "still running") {
		t.Errorf("a second verification while one runs: status %d %s", resp.StatusCode, body)
	}
	if _, body := get(t, srv, "/deployments/dev"); !strings.Contains(body, "A verification started from the console is running") {
		t.Error("dev's page does not say a verification is running")
	}
	close(hold)
	deadline := time.Now().Add(30 * time.Second)
	for len(loadRecord(t, dir).Verifications) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the verification that outlived its request never reached the record")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func postVerify(t *testing.T, srv *httptest.Server, tok, name string) (*http.Response, string) {
	t.Helper()
	req := mustRequest(t, "POST", srv.URL+"/api/v1/deployments/"+name+"/verifications", nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return do(t, http.DefaultClient, req)
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func formRequest(t *testing.T, u string, form url.Values) *http.Request {
	t.Helper()
	req := mustRequest(t, "POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func loadRecord(t *testing.T, dir string) *record.Record {
	t.Helper()
	r, ok, err := record.Load(dir, "dev")
	if err != nil || !ok {
		t.Fatalf("dev's record: %v", err)
	}
	return r
}
