package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/report/reporttest"
)

// checkSchema validates a JSON document against the schema its "schema"
// field names (which must be want) and returns the decoded document.
func checkSchema(t *testing.T, want, doc string) map[string]any {
	t.Helper()
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal([]byte(doc), &head); err != nil {
		t.Fatalf("%s: not one JSON document: %v\n%s", want, err, doc)
	}
	if head.Schema != want {
		t.Fatalf("schema %q, want %q\n%s", head.Schema, want, doc)
	}
	reporttest.Validate(t, want, want, []byte(doc))
	var m map[string]any
	json.Unmarshal([]byte(doc), &m)
	return m
}

// TestJSONContract runs every command with -o json on a real project (aws
// on moto, with a git repository) and checks each document against the
// JSON Schema registered for it; errors with -o json are kiln.error/v1
// documents on stderr. Every registered report must be seen.
func TestJSONContract(t *testing.T) {
	w := newAWSWorld(t, "{public: true, deprecate_after: 180d}")
	git(t, w.dir, "init", "-q")
	seen := map[string]bool{}
	// ok runs a command that must succeed (or exit with code) and checks
	// its stdout against schema.
	run := func(schema string, code int, args ...string) map[string]any {
		t.Helper()
		out, stderr, got := w.kiln(t, append(args, "-o", "json")...)
		if got != code {
			t.Fatalf("kiln %s: exit %d, want %d\n%s%s", strings.Join(args, " "), got, code, out, stderr)
		}
		seen[schema] = true
		return checkSchema(t, schema, out)
	}
	// fails runs a command that must fail and checks stderr's last line.
	fails := func(code int, args ...string) map[string]any {
		t.Helper()
		out, stderr, got := w.kiln(t, append(args, "-o", "json")...)
		if got != code || out != "" {
			t.Fatalf("kiln %s: exit %d, want %d; stdout %q", strings.Join(args, " "), got, code, out)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		seen[report.SchemaError] = true
		return checkSchema(t, report.SchemaError, lines[len(lines)-1])
	}

	run(report.SchemaVersion, 0, "version")
	initDir := filepath.Join(t.TempDir(), "fresh")
	if rep := run(report.SchemaInit, 0, "init", initDir); rep["git"] != false || len(rep["files"].([]any)) == 0 {
		t.Errorf("init report %v", rep)
	}
	run(report.SchemaValidate, 0, "validate")
	run(report.SchemaSchedule, 0, "schedule")
	run(report.SchemaRuns, 0, "runs")
	run(report.SchemaManifestValidate, 0, "manifest", "validate")

	// The phases one by one, then a release.
	b := run(report.SchemaBuild, 0, "build", "ci-runner")
	id := b["run"].(map[string]any)["id"].(string)
	run(report.SchemaTest, 0, "test", "--run", id)
	run(report.SchemaReplicate, 0, "replicate", "--run", id)
	pub := run(report.SchemaPublish, 0, "publish", "--run", id)
	if _, ok := pub["exports"].([]any); !ok {
		t.Errorf("publish report without an exports list: %v", pub["exports"])
	}
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "first release")
	git(t, w.dir, "tag", "v1")
	rel := run(report.SchemaRelease, 0, "release", "ci-runner")
	relID := rel["run"].(map[string]any)["id"].(string)
	git(t, w.dir, "commit", "-qam", "second release")

	// A released run is recorded as released, on the overlapped path too.
	runs := run(report.SchemaRuns, 0, "runs", "--run", relID)
	if r := runs["runs"].([]any)[0].(map[string]any); r["state"] != string(journal.RunSucceeded) || r["phase"] != "publish" {
		t.Errorf("run %s after kiln release: state %v, phase %v; want succeeded, publish", relID, r["state"], r["phase"])
	}
	if steps := runs["steps"].([]any); len(steps) == 0 {
		t.Error("runs --run lists no steps")
	}
	run(report.SchemaRuns, 0, "runs")

	run(report.SchemaManifestShow, 0, "manifest", "show")
	diff := run(report.SchemaManifestDiff, 1, "manifest", "diff", "v1:latest", "latest")
	if c := diff["changes"].([]any); len(c) != len(awsRegions) {
		t.Errorf("diff v1:latest latest: %d changes, want %d", len(c), len(awsRegions))
	}
	run(report.SchemaManifestDiff, 0, "manifest", "diff", "latest", "latest")
	run(report.SchemaAssets, 0, "assets")
	run(report.SchemaAssets, 0, "assets", "--run", relID)
	run(report.SchemaDrift, 0, "drift", "--git-refs", "v*")
	run(report.SchemaReconcile, 0, "reconcile")
	// Promotion plans: the interval gate of stable passes on a new channel.
	pr := run(report.SchemaPromote, 0, "promote", "ci-runner", "--from", "latest", "--to", "stable")
	if pr["applied"] != false || len(pr["changes"].([]any)) == 0 {
		t.Errorf("promote plan %v", pr)
	}
	run(report.SchemaPromote, 0, "promote", "ci-runner", "--from", "latest", "--to", "stable", "--apply")
	rb := run(report.SchemaRollback, 0, "rollback", "--channel", "latest", "--ref", "v1")
	if rb["applied"] != false || len(rb["changes"].([]any)) == 0 {
		t.Errorf("rollback plan %v", rb)
	}
	run(report.SchemaCleanup, 0, "cleanup", "--orphans")
	run(report.SchemaCleanup, 0, "cleanup", "--run", id, "--apply", "--force-recent")
	run(report.SchemaPrune, 0, "prune", "--keep", "1")
	// An image a kiln older than project tags made: adopt plans to take
	// it (the applied document is checked in TestDeletionIsScopedToTheProjectAWS).
	legacyTags := awsReleaseTags(journal.NewAssetID(time.Now().Add(-3 * time.Hour)))
	delete(legacyTags, cloud.TagProject)
	legacy := w.seed(t, "eu-west-1", "legacy-release", legacyTags)
	ad := run(report.SchemaAdopt, 0, "adopt")
	if items := ad["items"].([]any); ad["applied"] != false || len(items) != 1 ||
		items[0].(map[string]any)["action"] != "adopt" || items[0].(map[string]any)["asset"].(map[string]any)["id"] != aws.ToString(legacy.ImageId) {
		t.Errorf("adopt plan %v", ad)
	}

	// kiln serve's own document, from its API.
	_, st := serveConsole(t, w.cfg, serveOptions{}).get(t, "/api/v1/status")
	seen[report.SchemaServeStatus] = true
	checkSchema(t, report.SchemaServeStatus, string(st))

	// Errors and findings on stderr, as documents.
	e := fails(2, "rollback", "--channel", "latest", "--ref", "v9")
	if !strings.Contains(e["message"].(string), "no tag, branch or commit") {
		t.Errorf("rollback --ref v9: %v", e["message"])
	}
	os.WriteFile(filepath.Join(w.dir, "manifests", "broken.json"), []byte(`{"ci-runner": {"us-east-1": {"id": 7}}}`), 0o644)
	e = fails(2, "manifest", "validate", filepath.Join(w.dir, "manifests", "broken.json"))
	if p := e["problems"].([]any); len(p) == 0 || !strings.HasSuffix(p[0].(map[string]any)["file"].(string), "broken.json") {
		t.Errorf("manifest validate problems: %v", e["problems"])
	}
	data, _ := os.ReadFile(w.cfg)
	os.WriteFile(w.cfg, bytes.Replace(data, []byte("build_region: us-east-1"), []byte("build_region: mars-1"), 1), 0o644)
	e = fails(2, "validate")
	if p := e["problems"].([]any); len(p) != 1 || p[0].(map[string]any)["field"] != "build_region" || p[0].(map[string]any)["line"] == nil {
		t.Errorf("validate problems: %v", e["problems"])
	}
	os.WriteFile(w.cfg, data, 0o644)

	// Documents of features this project does not configure are checked
	// against their schemas where those features are tested.
	checkedElsewhere := map[string]string{
		report.SchemaIndex:        "TestDownloadsWithLXCAndCurl",
		report.SchemaVerifyImage:  "TestDownloadsWithLXCAndCurl",
		report.SchemaDistribution: "TestAWSDistribution",

		report.SchemaDeploy:             "TestDeploymentCommands",
		report.SchemaDeployments:        "TestDeploymentCommands",
		report.SchemaStatus:             "TestDeploymentCommands",
		report.SchemaVerify:             "TestDeploymentCommands",
		report.SchemaLock:               "TestDeploymentCommands",
		report.SchemaUnlock:             "TestDeploymentCommands",
		report.SchemaApprove:            "TestDeploymentCommands",
		report.SchemaDisable:            "TestDeploymentCommands",
		report.SchemaEnable:             "TestDeploymentCommands",
		report.SchemaPromoteDeployment:  "TestDeploymentCommands",
		report.SchemaRollbackDeployment: "TestDeploymentCommands",
		report.SchemaCI:                 "TestCIGitLabWriteAndCheck",
		report.SchemaDestroy:            "TestDestroyLocal",
	}
	for _, k := range report.Kinds() {
		if !seen[k.Schema] && checkedElsewhere[k.Schema] == "" {
			t.Errorf("no command printed %s in this test", k.Schema)
		}
	}
}
