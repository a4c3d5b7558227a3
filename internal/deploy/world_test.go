package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/localunit"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
)

// The test binary is also the supervisor of the process units it starts.
func TestMain(m *testing.M) {
	localunit.MaybeSupervise()
	os.Exit(m.Run())
}

// The test project: deployments of process units that serve /health and
// /version (the version kiln gives them) on a loopback port. dev and
// staging run in different regions; staging is promoted from dev after a
// soak; prod needs an approval and a window; sandbox is a template.
const projectYAML = `project: demo
regions: [local-a, local-b]
cost_tag: {key: team, value: demo}
use_cases:
  app:
    architectures: [x86_64]
    tests: [t.sh]
deployments:
  dev:
    image: {use_case: app, channel: latest}
    units:
      web:
        process:
          command: [/usr/bin/python3, server.py, "{port.http}"]
          env: {GREETING: "{inputs.greeting}", TOKEN: "{inputs.token}"}
          ports: [http]
          stop_timeout: 5s
    inputs:
      greeting: {value: hello}
      token: {secret: {env: KILN_TEST_TOKEN}}
    hooks:
      post_deploy: [{name: smoke, command: [./hook.sh]}]
    checks:
      - name: health
        http: {url: "{web.url.http}/health", body: "^ok"}
        count: 2
        interval: 1s
      - name: version
        http: {url: "{web.url.http}/version", json_field: version, equals: "{version}"}
  staging:
    extends: dev
    region: local-b
    hooks: {post_deploy: []}
    promote: {from: dev, soak: 1h}
  prod:
    extends: staging
    promote:
      from: staging
      approval: true
      windows: [{days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}]
  sandbox:
    extends: dev
    template: true
    expire_after: 2d
    hooks: {post_deploy: []}
`

// serverPy answers /health and /version ($KILN_VERSION); with the file
// "broken" in its directory it answers the wrong version.
const serverPy = `import http.server, json, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        v = os.environ.get("KILN_VERSION", "")
        if os.path.exists("broken"):
            v = "not-" + v
        body = {"/health": b"ok\n", "/version": json.dumps({"version": v}).encode()}.get(self.path)
        self.send_response(200 if body else 404)
        self.end_headers()
        self.wfile.write(body or b"")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
`

// hookSh records what the hook saw, secrets included (kiln must not
// print them; the hook may use them).
const hookSh = "#!/bin/sh\necho \"$KILN_DEPLOYMENT $KILN_VERSION $KILN_OUTPUT_WEB_URL_HTTP $KILN_INPUT_TOKEN\" >> hook.log\necho \"token is $KILN_INPUT_TOKEN\"\n[ ! -e hook-fails ]\n"

const secret = "tok-4f1c-never-stored"

// world is a project on the local backend with real process units and a
// fake clock.
type world struct {
	dir   string
	cfg   *config.Config
	store *local.Backend
	clock *clock
	d     *deploy.Deployer
	kinds map[string]deploy.UnitKind
}

// clock is a fake clock for soak times and windows; sleeping advances it
// (verification intervals cost nothing) but also waits a little in real
// time, so that processes being measured have time to start.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	select {
	case <-time.After(50 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// monday10 is a Monday, 10:00 UTC: inside prod's window.
var monday10 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func newWorld(t *testing.T) *world {
	t.Helper()
	t.Setenv("KILN_TEST_TOKEN", secret)
	w := &world{dir: filepath.Join(t.TempDir(), "proj"), clock: &clock{now: monday10}}
	for path, data := range map[string]string{
		"kiln.yaml": projectYAML, "server.py": serverPy, "hook.sh": hookSh, "t.sh": "#!/bin/sh\n", ".gitignore": ".kiln/\nhook.log\n",
	} {
		p := filepath.Join(w.dir, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if w.cfg, err = config.Load(filepath.Join(w.dir, "kiln.yaml")); err != nil {
		t.Fatal(err)
	}
	if w.store, err = local.New(w.cfg.Backend.Local, w.cfg.Backend.Local.Root, w.cfg.Regions); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(w.cfg.StateDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	o := localunit.Options{StateDir: w.cfg.StateDir(), ReadyTimeout: time.Minute}
	w.kinds = map[string]deploy.UnitKind{config.UnitProcess: localunit.NewProcess(o)}
	w.d = &deploy.Deployer{Config: w.cfg, Images: w.store, Kinds: w.kinds, Journal: j, Clock: w.clock, Who: "tester"}
	t.Cleanup(func() { w.destroyAll(t) })
	return w
}

// destroyAll removes every unit the test started (kiln destroy's job,
// which another issue builds).
func (w *world) destroyAll(t *testing.T) {
	ctx := context.Background()
	for _, k := range w.kinds {
		for _, region := range w.cfg.Regions {
			rs, _ := k.Resources(ctx, region, map[string]string{cloud.TagProject: "demo"})
			for _, r := range rs {
				dep, unit, _ := strings.Cut(r.ID, "/")
				if err := k.Destroy(ctx, deploy.Unit{Deployment: dep, Name: unit, Region: region}); err != nil {
					t.Errorf("destroy %s: %v", r.ID, err)
				}
			}
		}
	}
}

// release puts a new release of app in every region and writes it to the
// latest channel's manifest, as kiln release would.
func (w *world) release(t *testing.T, version string) map[string]string {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "disk.raw")
	b := make([]byte, 64<<10)
	rand.Read(b)
	os.WriteFile(disk, b, 0o644)
	tags := map[string]string{cloud.TagManaged: "true", cloud.TagUseCase: "app", cloud.TagVersion: version, cloud.TagArch: "x86_64"}
	name := "app-x86_64-" + version
	img, err := w.store.ImportImage(t.Context(), local.ImportInput{Region: "local-a", Name: name, Arch: "x86_64", Tags: tags, Disk: disk})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{"local-a": img.ID}
	copy, err := w.store.CopyImage(t.Context(), cloud.CopyInput{SourceRegion: "local-a", SourceID: img.ID, Region: "local-b", Name: name, Tags: tags, Token: "copy-" + version})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.WaitImage(t.Context(), "local-b", copy.ID); err != nil {
		t.Fatal(err)
	}
	ids["local-b"] = copy.ID
	m := manifest.Manifest{}
	for region, id := range ids {
		m.Set("app", region, manifest.Entry{Architecture: "x86_64", ID: id, Name: name, Public: true})
	}
	os.MkdirAll(filepath.Join(w.dir, "manifests"), 0o755)
	if err := manifest.Write(filepath.Join(w.dir, "manifests", "latest.json"), m); err != nil {
		t.Fatal(err)
	}
	return ids
}

// deploy plans and applies deployment name.
func (w *world) deploy(t *testing.T, name string, o deploy.PlanOptions) (*deploy.Report, error) {
	t.Helper()
	p, err := w.d.Plan(t.Context(), name, o)
	if err != nil {
		return nil, err
	}
	return w.d.Apply(t.Context(), p, deploy.ApplyOptions{})
}

func (w *world) record(t *testing.T, name string) *record.Record {
	t.Helper()
	r, ok, err := record.Load(w.dir, name)
	if err != nil || !ok {
		t.Fatalf("record %s: %v %v", name, ok, err)
	}
	return r
}

// version asks the deployment's web unit, over HTTP, which version it
// runs.
func (w *world) version(t *testing.T, name string) string {
	t.Helper()
	url := w.record(t, name).Outputs["web.url.http"]
	resp, err := http.Get(url + "/version")
	if err != nil {
		return "unreachable: " + err.Error()
	}
	defer resp.Body.Close()
	var v struct{ Version string }
	json.NewDecoder(resp.Body).Decode(&v)
	return v.Version
}

// noSecret fails when any file of the project or its state holds the
// secret.
func (w *world) noSecret(t *testing.T) {
	t.Helper()
	filepath.WalkDir(w.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSocket != 0 || filepath.Base(p) == "hook.log" {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && strings.Contains(string(data), secret) {
			t.Errorf("%s holds the secret", p)
		}
		return nil
	})
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

var _ = fmt.Sprint

// killSupervised kills a unit's supervisor and its process with SIGKILL,
// as a crash or the OOM killer would.
func killSupervised(t *testing.T, dir string) {
	t.Helper()
	var st struct {
		Supervisor int `json:"supervisor_pid"`
		Child      int `json:"child_pid"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil || json.Unmarshal(data, &st) != nil || st.Child == 0 {
		t.Fatalf("state of %s: %s %v", dir, data, err)
	}
	syscall.Kill(st.Supervisor, syscall.SIGKILL)
	syscall.Kill(-st.Child, syscall.SIGKILL)
	for range 100 {
		if syscall.Kill(st.Supervisor, 0) != nil && syscall.Kill(st.Child, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
