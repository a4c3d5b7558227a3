package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/manifest/consumertest"
	"github.com/kiln-images/kiln/internal/report"
)

// runnerFormats are the runner fleet's manifest formats (see
// internal/manifest/testdata/consumer): the older keyed by use case, the
// newer by {os}-{arch}-{role}; both written by Python's json.dump(indent=2).
const runnerFormats = `manifest_formats:
  runners-v1:
    key: "{use_case}"
    fields:
      - {name: id, source: id}
      - {name: name, value: ubuntu}
      - {name: image_use_case, source: use_case}
      - {name: region, source: region}
      - {name: architecture, source: arch}
      - {name: deprecation_time, source: deprecation_time, layout: "2006-01-02T15:04:05.000Z"}
      - {name: public, source: public}
    encoding: {indent: 2, trailing_newline: false, escape: ascii}
  runners-v2:
    key: "{os}-{arch}-{role}"
    arch: {x86_64: amd64, arm64: arm64}
    fields:
      - {name: id, source: id}
      - {name: name, value: ubuntu}
      - {name: region, source: region}
      - {name: os, attribute: os}
      - {name: arch, source: arch}
      - {name: role, attribute: role}
      - {name: deprecation_time, source: deprecation_time, layout: "2006-01-02T15:04:05.000Z"}
      - {name: public, source: public}
    encoding: {indent: 2, trailing_newline: false, escape: ascii}
`

// runnersLocal is the runner project on the local backend: writing the
// older format with one architecture (v1), or the newer with two, reading
// the older (v2).
func runnersLocal(v string) string {
	channels, archs := "{format: runners-v1}", "[x86_64]"
	if v == "v2" {
		channels, archs = "{format: runners-v2, reads: [runners-v1]}", "[x86_64, arm64]"
	}
	return `project: runners
regions: [local-a, local-b]
build_region: local-a
cost_tag: {key: deployment_name, value: runners}
channels:
  latest: ` + channels + `
  stable: ` + channels + `
` + runnerFormats + `use_cases:
  linux-ephemeral:
    architectures: ` + archs + `
    attributes: {os: linux, role: ephemeral}
    tests: [tests/boot.sh]
    publish: {public: true, deprecate_after: 30d}
`
}

// checkConsumerLayout checks that the manifest at path is laid out as the
// consumer's Python tool writes it, and returns its bytes.
func checkConsumerLayout(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasSuffix(data, []byte("\n")) {
		t.Fatalf("%s ends with a newline; the consumer's files do not", path)
	}
	if again := consumertest.PythonDump(t, data, 2); !bytes.Equal(again, data) {
		t.Fatalf("%s is not in the layout of json.dump(indent=2):\nkiln:\n%s\npython:\n%s", path, data, again)
	}
	return data
}

// fileEntry is an entry of a manifest file as its consumer reads it.
type fileEntry map[string]any

// readFile decodes a manifest file the way a consumer does, key → region →
// fields.
func readFile(t *testing.T, path string) map[string]map[string]fileEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]fileEntry
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// Both of the runner fleet's formats on the local backend: the project
// releases, promotes and drift-checks in the older, then moves to the newer
// with a second architecture; the files are the consumer's layout byte for
// byte, Terraform reads them, the older diffs cleanly against the newer and
// validate catches what drift does not look at.
func TestLocalConsumerFormats(t *testing.T) {
	w := newLocalWorldYAML(t, runnersLocal("v1"))
	latest := filepath.Join(w.dir, "manifests/latest.json")
	stable := filepath.Join(w.dir, "manifests/stable.json")
	day := time.Date(2026, 11, 21, 9, 30, 12, 0, time.UTC)

	// The older format: one architecture, keyed by use case.
	first := w.release(t, "linux-ephemeral", "x86_64", "latest", day)
	checkConsumerLayout(t, latest)
	v1 := readFile(t, latest)
	e := v1["linux-ephemeral"]["local-b"]
	if len(v1) != 1 || len(v1["linux-ephemeral"]) != 2 || e["id"] != first.images["local-b"].ID || e["name"] != "ubuntu" ||
		e["image_use_case"] != "linux-ephemeral" || e["region"] != "local-b" || e["architecture"] != "x86_64" ||
		e["deprecation_time"] != "2026-12-21T09:30:12.000Z" || e["public"] != true {
		t.Fatalf("latest.json in runners-v1:\n%v", v1)
	}
	if out, stderr, code := w.kiln(t, "promote", "linux-ephemeral", "--from", "latest", "--to", "stable", "--apply"); code != 0 {
		t.Fatalf("promote: exit %d\n%s%s", code, out, stderr)
	}
	if a, b := checkConsumerLayout(t, latest), checkConsumerLayout(t, stable); !bytes.Equal(a, b) {
		t.Fatalf("stable differs from latest after promoting everything:\n%s\n%s", a, b)
	}
	// The image names are not "ubuntu", and that is no drift: name is a
	// constant of the format.
	if out, stderr, code := w.kiln(t, "drift"); code != 0 {
		t.Fatalf("drift in runners-v1: exit %d\n%s%s", code, out, stderr)
	}
	git(t, w.dir, "init", "-q")
	git(t, w.dir, "add", "kiln.yaml", "manifests", ".gitignore", "tests")
	git(t, w.dir, "commit", "-qm", "runners-v1")
	git(t, w.dir, "tag", "v1")

	// The newer format, reading the older: the files stay as they are
	// until something changes.
	if err := os.WriteFile(w.cfg, []byte(runnersLocal("v2")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := w.kiln(t, "validate")
	if code != 0 {
		t.Fatalf("validate with runners-v1 files under runners-v2: exit %d\n%s%s", code, out, stderr)
	}
	out, _, code = w.kiln(t, "manifest", "show", "--channel", "latest")
	if code != 0 || !strings.Contains(out, "linux-ephemeral  local-a") || !strings.Contains(out, first.images["local-a"].ID) {
		t.Fatalf("manifest show of a runners-v1 file: exit %d\n%s", code, out)
	}
	arm := w.release(t, "linux-ephemeral", "arm64", "latest", day.Add(time.Hour))
	checkConsumerLayout(t, latest)
	v2 := readFile(t, latest)
	amd, arm64 := v2["linux-amd64-ephemeral"]["local-a"], v2["linux-arm64-ephemeral"]["local-a"]
	if len(v2) != 2 || amd["id"] != first.images["local-a"].ID || amd["arch"] != "amd64" || amd["os"] != "linux" || amd["role"] != "ephemeral" ||
		arm64["id"] != arm.images["local-a"].ID || arm64["arch"] != "arm64" || arm64["deprecation_time"] != "2026-12-21T10:30:12.000Z" {
		t.Fatalf("latest.json in runners-v2:\n%v", v2)
	}
	for _, key := range []string{"linux-amd64-ephemeral", "linux-arm64-ephemeral"} {
		for region, e := range v2[key] {
			if len(e) != 8 || e["name"] != "ubuntu" || e["region"] != region {
				t.Errorf("%s %s: %v", key, region, e)
			}
		}
	}

	// The older file against the newer: the x86_64 images are the same,
	// only the arm64 entries are new.
	out, stderr, code = w.kiln(t, "manifest", "diff", "v1:manifests/latest.json", latest)
	if code != 1 {
		t.Fatalf("manifest diff across formats: exit %d\n%s%s", code, out, stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "+ linux-arm64-ephemeral.") {
			t.Fatalf("manifest diff across formats shows more than the arm64 entries:\n%s", out)
		}
	}
	t.Logf("diff v1 → v2:\n%s", out)
	if n := strings.Count(out, "\n"); n != 2*8 {
		t.Fatalf("manifest diff: %d lines, want 16 (two regions × eight fields):\n%s", n, out)
	}
	out, _, code = w.kiln(t, "manifest", "diff", "v1:manifests/stable.json", stable)
	if code != 0 || !strings.HasPrefix(out, "no differences") {
		t.Fatalf("diff of an unchanged file in the old format: exit %d\n%s", code, out)
	}

	// Promote moves both architectures into stable, rewritten in the newer
	// format.
	if out, stderr, code := w.kiln(t, "promote", "linux-ephemeral", "--from", "latest", "--to", "stable", "--apply"); code != 0 {
		t.Fatalf("promote in runners-v2: exit %d\n%s%s", code, out, stderr)
	}
	if a, b := checkConsumerLayout(t, latest), checkConsumerLayout(t, stable); !bytes.Equal(a, b) {
		t.Fatalf("stable differs from latest:\n%s\n%s", a, b)
	}

	// --commit records kiln's own uncommitted change of a file in a
	// declared format (the promotion above) as kiln's, in that format;
	// HEAD had the older one.
	if out, stderr, code := w.kiln(t, "promote", "linux-ephemeral", "--from", "latest", "--to", "stable", "--apply", "--commit"); code != 0 {
		t.Fatalf("promote --commit in runners-v2: exit %d\n%s%s", code, out, stderr)
	}
	if got := git(t, w.dir, "show", "HEAD:manifests/stable.json"); got != strings.TrimSpace(string(checkConsumerLayout(t, stable))) {
		t.Fatalf("committed stable.json is not the work tree's runners-v2 file:\n%s", got)
	}
	if msg := git(t, w.dir, "log", "-1", "--format=%B"); !strings.Contains(msg, "+ linux-arm64-ephemeral.local-a.id: ") || strings.Contains(msg, "linux-ephemeral.local-a") {
		t.Errorf("commit message, in runners-v2's terms, with only the arm64 entries new:\n%s", msg)
	}
	if st := git(t, w.dir, "status", "--porcelain", "--", "manifests/stable.json"); st != "" {
		t.Errorf("stable.json after --commit: %q", st)
	}
	// A hand edit of the entries kiln writes, in the file's own terms, is
	// refused before anything changes.
	committed, _ := os.ReadFile(stable)
	edited := bytes.Replace(committed, []byte(`"id": "`+first.images["local-a"].ID+`"`), []byte(`"id": "`+arm.images["local-b"].ID+`"`), 1)
	os.WriteFile(stable, edited, 0o644)
	out, stderr, code = w.kiln(t, "promote", "linux-ephemeral", "--from", "latest", "--to", "stable", "--apply", "--commit")
	if code != 2 || !strings.Contains(stderr, "uncommitted edits to the entries kiln writes") || !strings.Contains(stderr, "~ linux-amd64-ephemeral.local-a.id: ") {
		t.Fatalf("promote --commit over a hand edit in runners-v2: exit %d\n%s%s", code, out, stderr)
	}
	if now, _ := os.ReadFile(stable); !bytes.Equal(now, edited) {
		t.Fatal("the refused promotion changed stable.json")
	}
	git(t, w.dir, "checkout", "--", "manifests/stable.json")

	// The consumer reads it: Terraform, as the runner module does.
	tf := t.TempDir()
	got := consumertest.TerraformOutputs(t, tf, `
locals { images = jsondecode(file("`+stable+`")) }
output "amd64" { value = local.images["linux-amd64-ephemeral"]["local-b"].id }
output "arm64" { value = local.images["linux-arm64-ephemeral"]["local-a"].id }
`, "amd64", "arm64")
	if got["amd64"] != first.images["local-b"].ID || got["arm64"] != arm.images["local-a"].ID {
		t.Fatalf("terraform reads %v; want %s and %s", got, first.images["local-b"].ID, arm.images["local-a"].ID)
	}

	// Drift compares what the cloud holds, in the file's terms.
	if out, stderr, code := w.kiln(t, "drift"); code != 0 {
		t.Fatalf("drift in runners-v2: exit %d\n%s%s", code, out, stderr)
	}
	if err := w.store(t, time.Now()).SetLaunchPermissions(t.Context(), "local-b", arm.images["local-b"].ID, cloud.LaunchPermissions{}); err != nil {
		t.Fatal(err)
	}
	out, _, code = w.kiln(t, "drift", "-o", "json")
	var dr report.Drift
	if err := json.Unmarshal([]byte(out), &dr); err != nil {
		t.Fatal(err)
	}
	if code != 1 || len(dr.Findings) != 2 {
		t.Fatalf("drift after making an arm64 image private: exit %d\n%s", code, out)
	}
	for _, f := range dr.Findings {
		if f.Kind != "public" || f.Key != "linux-arm64-ephemeral" || f.UseCase != "linux-ephemeral-arm64" || f.Region != "local-b" {
			t.Fatalf("finding %+v", f)
		}
	}
	if out, stderr, code := w.kiln(t, "reconcile", "--apply"); code != 0 {
		t.Fatalf("reconcile: exit %d\n%s%s", code, out, stderr)
	}
	if out, _, code := w.kiln(t, "drift"); code != 0 {
		t.Fatalf("drift after reconcile: exit %d\n%s", code, out)
	}

	// Constants and attributes are validate's to check: a hand edit is an
	// error with its place and what is allowed, and changes nothing.
	good, _ := os.ReadFile(stable)
	bad := bytes.Replace(good, []byte(`"role": "ephemeral"`), []byte(`"role": "persistent"`), 1)
	bad = bytes.Replace(bad, []byte(`"name": "ubuntu"`), []byte(`"name": "debian"`), 1)
	os.WriteFile(stable, bad, 0o644)
	out, stderr, code = w.kiln(t, "validate")
	if code != 2 ||
		!strings.Contains(stderr, `stable.json:5:15: linux-amd64-ephemeral.local-a.name: must be "ubuntu" in every entry (a constant of format runners-v2); found "debian"`) ||
		!strings.Contains(stderr, `stable.json:9:15: linux-amd64-ephemeral.local-a.role: "persistent" disagrees with its key linux-amd64-ephemeral, whose use case linux-ephemeral has role "ephemeral"; want "ephemeral"`) {
		t.Fatalf("validate of a hand-edited file: exit %d\n%s%s", code, out, stderr)
	}
	if after, _ := os.ReadFile(stable); !bytes.Equal(after, bad) {
		t.Fatal("validate changed the file")
	}
	os.WriteFile(stable, good, 0o644)

	// Roll back to v1's stable: its entries come back, written in the
	// newer format.
	out, stderr, code = w.kiln(t, "rollback", "--channel", "stable", "--ref", "v1", "--apply")
	if code != 0 {
		t.Fatalf("rollback to a runners-v1 file: exit %d\n%s%s", code, out, stderr)
	}
	rolled := readFile(t, stable)
	checkConsumerLayout(t, stable)
	if len(rolled) != 1 || rolled["linux-amd64-ephemeral"]["local-a"]["id"] != first.images["local-a"].ID {
		t.Fatalf("stable after rollback to v1:\n%v", rolled)
	}
	cfg := w.config(t)
	if _, l, err := channel.Open(cfg, "stable"); err != nil || l.Format().Name != "runners-v2" {
		t.Fatalf("stable after rollback is in %v, %v", l, err)
	}
	if m, err := channel.Load(cfg, "stable"); err != nil || len(m.Entries()) != 2 {
		t.Fatalf("stable: %v, %v", m, err)
	}
}
