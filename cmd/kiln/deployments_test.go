package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/localunit"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/report"
)

// deployYAML is a local project whose deployments are process units
// serving /health and /version on a loopback port: the CLI's deployment
// commands end to end, in seconds. (The VM kind is deployed by
// TestLocalDeployEndToEnd.)
const deployYAML = `project: demo
regions: [local-a, local-b]
cost_tag: {key: team, value: demo}
channels: {latest: {}}
use_cases:
  app:
    architectures: [x86_64]
    tests: [tests/boot.sh]
deployments:
  dev:
    image: {use_case: app, channel: latest}
    units:
      web:
        process:
          command: [/usr/bin/python3, server.py, "{port.http}"]
          ports: [http]
          stop_timeout: 5s
    inputs:
      token: {secret: {env: KILN_CLI_TOKEN}}
    checks:
      - name: version
        http: {url: "{web.url.http}/version", json_field: version, equals: "{version}", headers: {Authorization: "Bearer {inputs.token}"}}
        count: 2
        interval: 1s
  staging:
    extends: dev
    region: local-b
    promote: {from: dev}
  sandbox:
    extends: dev
    template: true
`

const deployServer = `import http.server, json, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": os.environ["KILN_VERSION"]}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
`

func newDeployWorld(t *testing.T) *localWorld {
	t.Helper()
	t.Setenv("KILN_CLI_TOKEN", "cli-secret-7d1e")
	t.Setenv("KILN_USER", "ops@example.com")
	w := &localWorld{dir: filepath.Join(t.TempDir(), "proj")}
	for path, data := range map[string]string{
		"kiln.yaml": deployYAML, "server.py": deployServer, "tests/boot.sh": "#!/bin/sh\ntrue\n", ".gitignore": ".kiln/\n",
	} {
		p := filepath.Join(w.dir, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.cfg = filepath.Join(w.dir, "kiln.yaml")
	t.Cleanup(func() { destroyUnits(t, w.config(t)) })
	return w
}

// destroyUnits stops and removes every unit of the project (the job of
// kiln destroy, which another issue builds).
func destroyUnits(t *testing.T, cfg *config.Config) {
	ctx := context.Background()
	o := localunit.Options{StateDir: cfg.StateDir()}
	for _, k := range []deploy.UnitKind{localunit.NewProcess(o), localunit.NewVM(o, nil, "tcg")} {
		for _, region := range cfg.Regions {
			rs, _ := k.Resources(ctx, region, map[string]string{cloud.TagProject: cfg.Project})
			for _, r := range rs {
				dep, unit, _ := strings.Cut(r.ID, "/")
				if err := k.Destroy(ctx, deploy.Unit{Deployment: dep, Name: unit, Region: region}); err != nil {
					t.Errorf("destroy %s: %v", r.ID, err)
				}
			}
		}
	}
}

func TestDeploymentCommands(t *testing.T) {
	w := newDeployWorld(t)
	git(t, w.dir, "init", "-q")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "project")
	w.release(t, "app", "x86_64", "latest", time.Now())

	// Bad input: exit 2, nothing changed.
	for _, args := range [][]string{
		{"deploy"}, {"deploy", "nope"}, {"deploy", "sandbox"}, {"deploy", "--new", "alice"},
		{"deploy", "dev", "--push"}, {"verify"}, {"promote", "--from", "dev", "--to", "staging", "app"},
		{"rollback", "dev"}, {"lock", "dev"},
	} {
		if out, errOut, code := w.kiln(t, args...); code != 2 {
			t.Errorf("kiln %v: exit %d, want 2\n%s%s", args, code, out, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(w.dir, "deployments")); err == nil {
		t.Fatal("bad input wrote records")
	}

	// A plan exits 0, says nothing was changed and starts nothing.
	out, errOut, code := w.kiln(t, "deploy", "dev")
	if code != 0 || !strings.Contains(errOut, "nothing was changed; rerun with --apply") || !regexp.MustCompile(`web +process +create`).MatchString(out) {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "deployments", "dev.json")); err == nil {
		t.Fatal("a plan wrote the record")
	}

	// Apply, commit and tag.
	out, errOut, code = w.kiln(t, "deploy", "dev", "--apply", "--commit", "--tag", "-o", "json")
	if code != 0 {
		t.Fatalf("deploy --apply: exit %d\n%s%s", code, out, errOut)
	}
	checkSchema(t, report.SchemaDeploy, out)
	var dep struct {
		Schema       string `json:"schema"`
		Applied      bool   `json:"applied"`
		State        string `json:"state"`
		Commit       string `json:"commit"`
		Verification struct {
			Passed bool `json:"passed"`
		} `json:"verification"`
		Release struct {
			ID string `json:"id"`
		} `json:"release"`
	}
	if err := json.Unmarshal([]byte(out), &dep); err != nil || dep.Schema != "kiln.deploy/v1" || !dep.Applied || dep.State != "deployed" || !dep.Verification.Passed || dep.Commit == "" {
		t.Fatalf("deploy report %+v %v\n%s", dep, err, out)
	}
	if log := git(t, w.dir, "log", "-1", "--format=%s", "--name-only"); !strings.Contains(log, "dev: deploy "+dep.Release.ID) || !strings.HasSuffix(log, "deployments/dev.json") {
		t.Errorf("commit: %s", log)
	}
	if tags := git(t, w.dir, "tag", "--list", "deploy/dev/*"); tags == "" {
		t.Error("no deploy tag")
	}
	if strings.Contains(git(t, w.dir, "status", "--porcelain"), "deployments/dev.json") {
		t.Error("the record is not committed")
	}

	out, _, code = w.kiln(t, "verify", "dev")
	if code != 0 || !strings.Contains(out, "verification passed") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	out, _, code = w.kiln(t, "verify", "dev", "-o", "json")
	if v := checkSchema(t, report.SchemaVerify, out); code != 0 || v["verification"].(map[string]any)["passed"] != true {
		t.Fatalf("verify -o json: exit %d\n%s", code, out)
	}
	out, _, code = w.kiln(t, "status", "dev", "-o", "json")
	if st := checkSchema(t, report.SchemaStatus, out); code != 0 || len(st["deployments"].([]any)) != 1 {
		t.Fatalf("status -o json: exit %d\n%s", code, out)
	}
	out, _, code = w.kiln(t, "status", "dev")
	if code != 0 || !strings.Contains(out, "in sync with its record") || !strings.Contains(out, "output web.url.http = http://127.0.0.1:") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}

	// Promotion: a plan first, then the release in staging.
	out, errOut, code = w.kiln(t, "promote", "--from", "dev", "--to", "staging")
	if code != 0 || !regexp.MustCompile(`verified +pass`).MatchString(out) || !strings.Contains(errOut, "rerun with --apply") {
		t.Fatalf("promote plan: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = w.kiln(t, "promote", "--from", "dev", "--to", "staging", "-o", "json")
	if pr := checkSchema(t, report.SchemaPromoteDeployment, out); code != 0 || pr["passed"] != true {
		t.Fatalf("promote plan -o json: exit %d\n%s", code, out)
	}
	out, errOut, code = w.kiln(t, "promote", "--from", "dev", "--to", "staging", "--apply", "--commit")
	if code != 0 {
		t.Fatalf("promote: exit %d\n%s%s", code, out, errOut)
	}
	staging := readRecord(t, w.dir, "staging")
	if staging.Release.ID != dep.Release.ID || staging.Release.PromotedFrom != "dev" || len(staging.Verifications) != 1 {
		t.Errorf("staging: %+v", staging.Release)
	}

	// Roll staging back to before the promotion: it had no release then.
	if _, _, code := w.kiln(t, "rollback", "staging", "--ref", "HEAD~1", "--apply"); code != 2 {
		t.Errorf("rollback to a ref without staging's record: exit %d, want 2", code)
	}
	git(t, w.dir, "tag", "staging-1")
	out, _, code = w.kiln(t, "rollback", "staging", "--ref", "staging-1", "-o", "json")
	if rb := checkSchema(t, report.SchemaRollbackDeployment, out); code != 0 || rb["applied"] == true {
		t.Fatalf("rollback plan -o json: exit %d\n%s", code, out)
	}
	if out, errOut, code := w.kiln(t, "rollback", "staging", "--ref", "staging-1", "--apply"); code != 0 || !strings.Contains(out, "staging is held") {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = w.kiln(t, "promote", "--from", "dev", "--to", "staging", "--apply")
	if code != 1 || !regexp.MustCompile(`not-held +FAIL`).MatchString(out) {
		t.Errorf("promotion into a held deployment: exit %d\n%s", code, out)
	}

	// Lock, disable, enable, approve.
	if out, _, code := w.kiln(t, "lock", "dev", "--reason", "demo at 3pm", "-o", "json"); code != 0 {
		t.Fatal("lock")
	} else {
		checkSchema(t, report.SchemaLock, out)
	}
	if out, _, code := w.kiln(t, "deploy", "dev", "--apply"); code != 1 || !strings.Contains(out, "REFUSED: locked by ops@example.com") {
		t.Errorf("deploy of a locked deployment: exit %d\n%s", code, out)
	}
	out, _, _ = w.kiln(t, "unlock", "dev", "-o", "json")
	checkSchema(t, report.SchemaUnlock, out)
	if out, _, code := w.kiln(t, "disable", "dev", "-o", "json"); code != 0 {
		t.Fatal("disable")
	} else {
		checkSchema(t, report.SchemaDisable, out)
	}
	if out, _, code := w.kiln(t, "verify", "dev"); code != 1 {
		t.Errorf("verify of a disabled deployment: exit %d\n%s", code, out)
	}
	if out, _, code := w.kiln(t, "enable", "dev", "-o", "json"); code != 0 {
		t.Fatal("enable")
	} else {
		checkSchema(t, report.SchemaEnable, out)
	}
	if out, _, code := w.kiln(t, "approve", "staging", "--comment", "ok", "-o", "json"); code != 0 {
		t.Fatal("approve")
	} else {
		checkSchema(t, report.SchemaApprove, out)
	}
	if a := readRecord(t, w.dir, "staging").Approvals; len(a) != 1 || a[0].By != "ops@example.com" || a[0].Release != dep.Release.ID {
		t.Errorf("approvals %+v", a)
	}

	// A personal deployment, and the list.
	if out, errOut, code := w.kiln(t, "deploy", "--new", "alice", "--from", "sandbox", "--apply"); code != 0 {
		t.Fatalf("personal deployment: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = w.kiln(t, "deployments", "-o", "json")
	var list struct {
		Schema      string             `json:"schema"`
		Deployments []deploy.ListEntry `json:"deployments"`
	}
	checkSchema(t, report.SchemaDeployments, out)
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || list.Schema != "kiln.deployments/v1" || len(list.Deployments) != 4 {
		t.Fatalf("deployments: %v\n%s", err, out)
	}
	if e := list.Deployments[0]; e.Name != "alice" || e.Kind != "personal" || e.Expires.IsZero() {
		t.Errorf("alice: %+v", e)
	}
	out, _, code = w.kiln(t, "status")
	if code != 0 || strings.Count(out, "in sync with its record") != 3 {
		t.Errorf("status of all: exit %d\n%s", code, out)
	}
	// No file kiln wrote holds the secret.
	filepath.WalkDir(w.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Type().IsRegular() {
			if data, _ := os.ReadFile(p); strings.Contains(string(data), "cli-secret-7d1e") {
				t.Errorf("%s holds the secret", p)
			}
		}
		return nil
	})
}

func readRecord(t *testing.T, dir, name string) *record.Record {
	t.Helper()
	r, ok, err := record.Load(dir, name)
	if err != nil || !ok {
		t.Fatalf("record %s: %v %v", name, ok, err)
	}
	return r
}
