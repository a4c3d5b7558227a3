package main

import (
	"github.com/kiln-images/kiln/internal/report"

	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kiln runs the CLI in-process with args and returns its outputs and exit
// code.
func kiln(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// initProject writes the example project into a new directory.
func initProject(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proj")
	if _, stderr, code := kiln(t, "init", dir); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	return dir
}

func TestVersion(t *testing.T) {
	out, _, code := kiln(t, "version", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v report.Version
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Schema != "kiln.version/v1" || !strings.HasPrefix(v.GoVersion, "go") || v.Version == "" {
		t.Fatalf("version report %+v", v)
	}
}

func TestInitThenValidate(t *testing.T) {
	dir := initProject(t)
	for _, f := range []string{"kiln.yaml", "scripts/provision.sh", "tests/boot.sh", ".gitignore"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not write %s: %v", f, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "tests/boot.sh")); err != nil || st.Mode()&0o100 == 0 {
		t.Errorf("tests/boot.sh is not executable: %v %v", st.Mode(), err)
	}
	out, stderr, code := kiln(t, "validate", "-c", filepath.Join(dir, "kiln.yaml"))
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("validate: exit %d\n%s%s", code, out, stderr)
	}
	// A second init into the same directory refuses and writes nothing.
	before, _ := os.ReadFile(filepath.Join(dir, "kiln.yaml"))
	os.WriteFile(filepath.Join(dir, "kiln.yaml"), append(before, '#'), 0o644)
	_, stderr, code = kiln(t, "init", dir)
	if code != 2 || !strings.Contains(stderr, "refusing to overwrite") {
		t.Fatalf("second init: exit %d: %s", code, stderr)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "kiln.yaml"))
	if !bytes.Equal(after, append(before, '#')) {
		t.Fatal("second init changed kiln.yaml")
	}
}

func TestBadInputExitsTwoAndNamesTheProblem(t *testing.T) {
	dir := initProject(t)
	cfg := filepath.Join(dir, "kiln.yaml")
	data, _ := os.ReadFile(cfg)
	bad := strings.Replace(string(data), "build_region: local-a", "build_region: local-z", 1)
	bad = strings.Replace(bad, "architectures: [x86_64]", "architectures: [sparc]", 1)
	os.WriteFile(cfg, []byte(bad), 0o644)

	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"config errors all at once", []string{"validate", "-c", cfg},
			[]string{"kiln.yaml:", "build_region", "local-z", "architectures", "sparc"}},
		{"missing config", []string{"validate", "-c", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml"}},
		{"config is a directory", []string{"validate", "-c", dir}, []string{dir}},
		{"unknown output format", []string{"version", "-o", "yaml"}, []string{"-o", "yaml", "table, json"}},
		{"unknown flag", []string{"validate", "--frobnicate"}, []string{"frobnicate"}},
		{"unknown command", []string{"frobnicate"}, []string{"frobnicate"}},
		{"bad run id", []string{"runs", "-c", filepath.Join(dir, "x.yaml"), "--run", "nope"}, []string{"x.yaml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := kiln(t, c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

const designManifest = `{
  "aws-linux-ephemeral": {
    "us-east-1": {
      "architecture": "x86_64",
      "deprecation_time": "",
      "id": "ami-048b8191da9c5e202",
      "name": "ubuntu",
      "public": true
    }
  }
}
`

func TestManifestCommands(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.json")
	b := filepath.Join(dir, "b.json")
	os.WriteFile(a, []byte(designManifest), 0o644)
	os.WriteFile(b, []byte(strings.Replace(designManifest, `"public": true`, `"public": false`, 1)), 0o644)
	noConfig := filepath.Join(dir, "kiln.yaml")

	out, stderr, code := kiln(t, "manifest", "validate", "-c", noConfig, a, b)
	if code != 0 || strings.Count(out, "ok") != 2 {
		t.Fatalf("validate: exit %d\n%s%s", code, out, stderr)
	}
	out, _, code = kiln(t, "manifest", "diff", a, b)
	if code != 1 || !strings.Contains(out, "public") {
		t.Fatalf("diff of different manifests: exit %d, want 1\n%s", code, out)
	}
	if _, _, code = kiln(t, "manifest", "diff", a, a); code != 0 {
		t.Fatalf("diff of equal manifests: exit %d, want 0", code)
	}

	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, []byte(strings.Replace(designManifest, `"x86_64"`, `"sparc"`, 1)), 0o644)
	_, stderr, code = kiln(t, "manifest", "validate", "-c", noConfig, broken)
	if code != 2 || !strings.Contains(stderr, "broken.json") || !strings.Contains(stderr, "sparc") {
		t.Fatalf("invalid manifest: exit %d: %s", code, stderr)
	}
}

func TestManifestDiffFromGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed: install the git package")
	}
	dir := t.TempDir()
	gitRun := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@e"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitRun("init", "-q")
	path := filepath.Join(dir, "stable.json")
	os.WriteFile(path, []byte(designManifest), 0o644)
	gitRun("add", ".")
	gitRun("commit", "-qm", "v1")
	gitRun("tag", "v1.0.0")
	os.WriteFile(path, []byte(strings.Replace(designManifest, "ami-048b8191da9c5e202", "ami-0123456789abcdef0", 1)), 0o644)

	out, stderr, code := kiln(t, "manifest", "diff", "-c", filepath.Join(dir, "kiln.yaml"), "v1.0.0:stable.json", path)
	if code != 1 || !strings.Contains(out, "ami-048b8191da9c5e202") || !strings.Contains(out, "ami-0123456789abcdef0") {
		t.Fatalf("diff against git ref: exit %d\n%s%s", code, out, stderr)
	}
	_, stderr, code = kiln(t, "manifest", "diff", "-c", filepath.Join(dir, "kiln.yaml"), "v9.9.9:stable.json", path)
	if code != 2 || !strings.Contains(stderr, "v9.9.9") {
		t.Fatalf("unknown ref: exit %d: %s", code, stderr)
	}
}

func TestRunsEmptyJournal(t *testing.T) {
	dir := initProject(t)
	out, stderr, code := kiln(t, "runs", "-c", filepath.Join(dir, "kiln.yaml"), "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r report.Runs
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Schema != "kiln.runs/v1" || len(r.Runs) != 0 {
		t.Fatalf("runs report %q: %v", out, err)
	}
	_, stderr, code = kiln(t, "runs", "-c", filepath.Join(dir, "kiln.yaml"), "--run", "kiln-20261121T093012Z-7f3a9c")
	if code != 2 || !strings.Contains(stderr, "kiln-20261121T093012Z-7f3a9c") {
		t.Fatalf("unknown run: exit %d: %s", code, stderr)
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, _, code := kiln(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "kiln") {
			t.Errorf("completion %s: exit %d, %d bytes", sh, code, len(out))
		}
	}
}
