package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/gitlabci"
	"github.com/kiln-images/kiln/internal/report"
)

// kiln ci gitlab writes the pipeline next to kiln.yaml, --check passes on
// it and fails once kiln.yaml changes, and a file kiln did not write is
// never overwritten.
func TestCIGitLabWriteAndCheck(t *testing.T) {
	w := newLocalWorld(t, 50)
	file := filepath.Join(w.dir, ".gitlab-ci.yml")
	out, stderr, code := w.kiln(t, "ci", "gitlab", "-o", "json")
	if code != 0 {
		t.Fatalf("ci gitlab: exit %d\n%s", code, stderr)
	}
	checkSchema(t, report.SchemaCI, out)
	var rep report.CI
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Schema != "kiln.ci/v1" || !rep.Written || !rep.Stale || rep.File != file || len(rep.Jobs) != 3*4+2+3 {
		t.Errorf("report %+v", rep)
	}
	data, err := os.ReadFile(file)
	if err != nil || !strings.HasPrefix(string(data), gitlabci.Header+"kiln.yaml;") {
		t.Fatalf("%s: %v\n%s", file, err, data)
	}
	if _, stderr, code := w.kiln(t, "ci", "gitlab", "--check"); code != 0 || !strings.Contains(stderr, "is up to date") {
		t.Errorf("--check on a fresh file: exit %d %s", code, stderr)
	}
	// Writing again changes nothing.
	if out, _, code := w.kiln(t, "ci", "gitlab", "-o", "json"); code != 0 || !strings.Contains(out, `"written": false`) {
		t.Errorf("second write: exit %d\n%s", code, out)
	}

	// kiln.yaml changes: the committed pipeline is stale.
	cfg, _ := os.ReadFile(w.cfg)
	os.WriteFile(w.cfg, append(cfg, "ci: {channels: {stable: automatic}}\n"...), 0o644)
	_, stderr, code = w.kiln(t, "ci", "gitlab", "--check")
	if code != 1 || !strings.Contains(stderr, ".gitlab-ci.yml is stale") || !strings.Contains(stderr, "run kiln ci gitlab") {
		t.Errorf("--check on a stale file: exit %d %s", code, stderr)
	}
	if after, _ := os.ReadFile(file); string(after) != string(data) {
		t.Error("--check wrote the file")
	}
	os.Remove(file)
	if _, stderr, code := w.kiln(t, "ci", "gitlab", "--check"); code != 1 || !strings.Contains(stderr, "does not exist") {
		t.Errorf("--check without a file: exit %d %s", code, stderr)
	}

	// A pipeline of the team's own is left alone.
	os.WriteFile(file, []byte("stages: [lint]\n"), 0o644)
	if _, stderr, code := w.kiln(t, "ci", "gitlab"); code != 2 || !strings.Contains(stderr, "kiln did not write it") {
		t.Errorf("over a foreign file: exit %d %s", code, stderr)
	}
	if got, _ := os.ReadFile(file); string(got) != "stages: [lint]\n" {
		t.Error("a foreign file was changed")
	}
}

// The README shows the pipeline kiln ci gitlab writes for the example
// project, as it writes it.
func TestREADMEShowsTheGeneratedPipeline(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	open := "```yaml\n" + gitlabci.Header
	i := strings.Index(string(readme), open)
	if i < 0 {
		t.Fatal("the README shows no generated pipeline")
	}
	block := string(readme[i+len("```yaml\n"):])
	block = block[:strings.Index(block, "```\n")]
	dir := initProject(t)
	if _, stderr, code := kiln(t, "ci", "gitlab", "-c", filepath.Join(dir, "kiln.yaml")); code != 0 {
		t.Fatalf("ci gitlab: exit %d %s", code, stderr)
	}
	got, _ := os.ReadFile(filepath.Join(dir, ".gitlab-ci.yml"))
	if string(got) != block {
		t.Errorf("the README's pipeline is not what kiln ci gitlab writes for the example; paste it again:\n%s", got)
	}
}
