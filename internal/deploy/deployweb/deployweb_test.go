package deployweb

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
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
	c, err := console.New(console.Options{Config: cfg, Backend: "local", Journal: j, Checks: noChecks{}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Mount(mux)
	d := &deploy.Deployer{Config: cfg}
	s := &Section{Console: c, List: d.List, Entry: d.Entry}
	if err := s.Mount(mux); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, dir
}

func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
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
