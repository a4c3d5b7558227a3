package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/forge/forgetest"
)

// These tests run the pipeline `kiln ci gitlab` writes with
// gitlab-ci-local (pinned; `make ci-tools` installs it into .tools/), the
// shell executor, each job in its own copy of the checkout
// (--shell-isolation) as on a runner of its own. What they cannot show:
// gitlab-ci-local ignores resource_group (4.73.0; upstream issue #1713), so
// jobs of one channel do run at once here; that two of them lose no
// update comes from kiln itself, which records each change as a commit on
// the branch's newest tip and again on the new tip when the push is
// refused (internal/gitdoc; TestPushRace forces that refusal).

// gitlabCILocal is the pinned gitlab-ci-local.
func gitlabCILocal(t *testing.T) string {
	t.Helper()
	p := os.Getenv("KILN_GITLAB_CI_LOCAL")
	if p == "" {
		p, _ = filepath.Abs("../../.tools/npm/node_modules/.bin/gitlab-ci-local")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("gitlab-ci-local is not installed (%v): run `make ci-tools`", err)
	}
	return p
}

var (
	fixtureBinOnce sync.Once
	fixtureBinDir  string
	fixtureBinErr  error
)

// fixtureKiln builds kiln with the fixture builder (-tags
// kiln_fixture_builder) and returns the directory holding it, for PATH.
func fixtureKiln(t *testing.T) string {
	t.Helper()
	fixtureBinOnce.Do(func() {
		fixtureBinDir, fixtureBinErr = os.MkdirTemp("", "kiln-fixture-bin-")
		if fixtureBinErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-tags", "kiln_fixture_builder", "-o", filepath.Join(fixtureBinDir, "kiln"), ".").CombinedOutput()
		if err != nil {
			fixtureBinErr = fmt.Errorf("go build -tags kiln_fixture_builder: %v\n%s", err, out)
		}
	})
	if fixtureBinErr != nil {
		t.Fatal(fixtureBinErr)
	}
	return fixtureBinDir
}

// ciWorld is a GitLab project as gitlab-ci-local sees it: a bare origin
// holding a kiln project with its generated pipeline, and clones of it,
// one per runner.
type ciWorld struct {
	base, origin string
	bin          string // directory of the kiln jobs run
}

// newCIWorld commits files (path -> content) with the pipeline `kiln ci
// gitlab` writes for them to a new origin's main.
func newCIWorld(t *testing.T, bin string, files map[string]string) *ciWorld {
	t.Helper()
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	w := &ciWorld{base: t.TempDir(), bin: bin}
	w.origin = filepath.Join(w.base, "origin.git")
	git(t, w.base, "init", "-q", "--bare", "-b", "main", w.origin)
	seed := filepath.Join(w.base, "seed")
	files[".gitignore"] = ".kiln/\n.gitlab-ci-local/\n"
	for path, data := range files {
		p := filepath.Join(seed, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git(t, seed, "init", "-q", "-b", "main")
	if _, stderr, code := kiln(t, "ci", "gitlab", "-c", filepath.Join(seed, "kiln.yaml")); code != 0 {
		t.Fatalf("kiln ci gitlab: exit %d\n%s", code, stderr)
	}
	git(t, seed, "add", "-A")
	git(t, seed, "commit", "-qm", "project and pipeline")
	git(t, seed, "remote", "add", "origin", w.origin)
	git(t, seed, "push", "-q", "origin", "main")
	return w
}

func (w *ciWorld) clone(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(w.base, name)
	git(t, w.base, "clone", "-q", w.origin, dir)
	return dir
}

// ciRun is one gitlab-ci-local run of the pipeline.
type ciRun struct {
	cmd *exec.Cmd
	out bytes.Buffer
	err error
}

// start starts a pipeline in the clone dir with variables (NAME=VALUE) and
// further gitlab-ci-local arguments.
func (w *ciWorld) start(t *testing.T, dir string, args ...string) *ciRun {
	t.Helper()
	home := t.TempDir()
	p := &ciRun{cmd: exec.Command(gitlabCILocal(t), append([]string{"--shell-isolation", "--no-color", "--no-json-schema-validation", "--ignore-predefined-vars", "CI_PIPELINE_SOURCE", "--home", home}, args...)...)}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "PATH="+w.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

func (p *ciRun) wait() error {
	p.err = p.cmd.Wait()
	return p.err
}

// jobs returns the jobs of a finished pipeline and whether each passed,
// from gitlab-ci-local's summary.
func (p *ciRun) jobs() map[string]bool {
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^ (PASS|FAIL|WARN) +(\S+)`).FindAllStringSubmatch(p.out.String(), -1) {
		out[m[2]] = m[1] != "FAIL"
	}
	return out
}

func (p *ciRun) mustPass(t *testing.T, name string, want ...string) {
	t.Helper()
	if p.err != nil {
		t.Fatalf("pipeline %s: %v\n%s", name, p.err, p.out.String())
	}
	jobs := p.jobs()
	var got []string
	for j, ok := range jobs {
		got = append(got, j)
		if !ok {
			t.Errorf("pipeline %s: job %s failed", name, j)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("pipeline %s ran %v, want %v\n%s", name, got, want, p.out.String())
	}
}

const ciLocalYAML = `project: demo
backend: {local: {root: %s}}
regions: [local-a, local-b, local-c]
build_region: local-a
cost_tag: {key: deployment_name, value: demo}
channels:
  latest: {}
  stable: {}
use_cases:
  sandbox:
    architectures: [x86_64]
    tests: [tests/boot.sh]
    publish: {public: true, deprecate_after: 30d}
  runner:
    architectures: [x86_64, arm64]
    regions: [local-a, local-b]
    tests: [tests/boot.sh]
    publish: {public: false, accounts: ["111122223333"], deprecate_after: 90d}
`

// Two pipelines at once on two runners, on the local backend (one store,
// as a shared file system would be): one releases the sandbox and promotes
// it to stable, the other the runner's two architectures. Three publish
// jobs write latest at the same time; all three releases are in latest's
// history and in the file, and the promotion in stable's. A scheduled
// pipeline afterwards runs only the check, drift and cleanup, and finds
// the manifests and the store in agreement.
func TestGitLabPipelineLocal(t *testing.T) {
	store := filepath.Join(t.TempDir(), "store")
	w := newCIWorld(t, fixtureKiln(t), map[string]string{
		"kiln.yaml":     fmt.Sprintf(ciLocalYAML, store),
		"tests/boot.sh": "#!/bin/sh\ntrue\n",
	})
	a, b := w.clone(t, "runner-a"), w.clone(t, "runner-b")
	pa := w.start(t, a, "--variable", "CI_PIPELINE_SOURCE=web", "--variable", "KILN_USE_CASE=sandbox", "--manual", "promote:sandbox:stable")
	pb := w.start(t, b, "--variable", "CI_PIPELINE_SOURCE=web", "--variable", "KILN_USE_CASE=runner")
	pa.wait()
	pb.wait()
	pa.mustPass(t, "sandbox", "kiln:check", "build:sandbox:x86_64", "test:sandbox:x86_64", "replicate:sandbox:x86_64", "publish:sandbox:x86_64", "promote:sandbox:stable")
	pb.mustPass(t, "runner", "kiln:check",
		"build:runner:x86_64", "test:runner:x86_64", "replicate:runner:x86_64", "publish:runner:x86_64",
		"build:runner:arm64", "test:runner:arm64", "replicate:runner:arm64", "publish:runner:arm64")
	retries := strings.Count(pa.out.String()+pb.out.String(), "the branch moved; applying the change again")
	t.Logf("pushes refused because another landed first, then made again: %d", retries)

	// Every release is in latest, with images the store has.
	latest := originManifest(t, w.origin, "main", "latest")
	b2, err := local.New(config.LocalBackend{AccountID: "000000000000"}, store, localRegions)
	if err != nil {
		t.Fatal(err)
	}
	for key, regions := range map[string][]string{"sandbox": localRegions, "runner-x86_64": {"local-a", "local-b"}, "runner-arm64": {"local-a", "local-b"}} {
		for _, r := range regions {
			e, ok := latest.Get(key, r)
			if !ok {
				t.Errorf("latest on main has no %s in %s:\n%s", key, r, latest.Encode())
				continue
			}
			img, err := b2.Image(t.Context(), r, e.ID)
			if err != nil || img.Tags[cloud.TagTest] != cloud.TestPassed {
				t.Errorf("%s %s: image %s: %v %v", key, r, e.ID, img.Tags, err)
			}
		}
	}
	// ... and in its history: one commit per publish, each naming its run.
	subjects := strings.Split(git(t, w.origin, "log", "--format=%s", "main", "--", "manifests/latest.json"), "\n")
	if len(subjects) != 3 {
		t.Errorf("latest's history: %q, want the three releases", subjects)
	}
	for _, want := range []string{"latest: sandbox x86_64", "latest: runner x86_64", "latest: runner arm64"} {
		if !slices.ContainsFunc(subjects, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("latest's history lacks %q: %q", want, subjects)
		}
	}
	stable := originManifest(t, w.origin, "main", "stable")
	if s, _ := stable.Get("sandbox", "local-a"); s.ID == "" || s.ID != latest["sandbox"]["local-a"].ID {
		t.Errorf("stable on main:\n%s", stable.Encode())
	}
	for _, c := range strings.Split(git(t, w.origin, "log", "--format=%H", "main"), "\n")[:4] {
		if files := git(t, w.origin, "show", "--name-only", "--format=", c); files != "manifests/latest.json" && files != "manifests/stable.json" {
			t.Errorf("kiln's commit %s changes %q", c, files)
		}
	}

	// A scheduled maintenance pipeline: the check, drift (in sync) and the
	// orphan cleanup; no release.
	git(t, w.origin, "tag", "v1", "main")
	c := w.clone(t, "runner-c")
	pc := w.start(t, c, "--variable", "CI_PIPELINE_SOURCE=schedule", "--variable", "KILN_TASK=maintenance")
	pc.wait()
	pc.mustPass(t, "maintenance", "kiln:check", "kiln:drift", "kiln:cleanup")
	if !strings.Contains(pc.out.String(), "in sync") {
		t.Errorf("drift did not report in sync:\n%s", pc.out.String())
	}
}

// The pipeline on the aws backend (moto, through the wire-format stub, as
// the other aws tests), documenting by merge request against the GitLab
// test server: the chain releases to every region, the publish job opens
// one merge request with the manifest, and retrying the publish job
// finds it.
func TestGitLabPipelineAWS(t *testing.T) {
	aw := newAWSWorld(t, "{public: true}")
	gl := forgetest.NewGitLab(t, "images/runners", forgeToken)
	t.Setenv("GITLAB_TOKEN", forgeToken)
	files := map[string]string{}
	for _, f := range []string{"kiln.yaml", "scripts/setup.sh", "tests/boot.sh"} {
		data, err := os.ReadFile(filepath.Join(aw.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(data)
	}
	files["kiln.yaml"] += "forge: {type: gitlab, api_url: '" + gl.URL() + "', project: images/runners}\nci: {document: merge-request}\n"
	w := newCIWorld(t, filepath.Dir(kilnBinary(t)), files)
	gl.Branches = func(b string) bool {
		return exec.Command("git", "-C", w.origin, "rev-parse", "--verify", "--quiet", "refs/heads/"+b).Run() == nil
	}
	mainBefore := git(t, w.origin, "rev-parse", "main")
	a := w.clone(t, "runner-a")
	p := w.start(t, a, "--variable", "CI_PIPELINE_SOURCE=web")
	p.wait()
	chain := []string{"kiln:check", "build:ci-runner:x86_64", "test:ci-runner:x86_64", "replicate:ci-runner:x86_64", "publish:ci-runner:x86_64"}
	p.mustPass(t, "aws", chain...)

	reqs := gl.Requests()
	if len(reqs) != 1 || reqs[0].Target != "main" || !strings.HasPrefix(reqs[0].Source, "kiln/latest/kiln-") {
		t.Fatalf("merge requests %+v", reqs)
	}
	run := strings.TrimPrefix(reqs[0].Source, "kiln/latest/")
	m := originManifest(t, w.origin, reqs[0].Source, "latest")
	for _, region := range awsRegions {
		imgs := aw.images(t, region, run)
		e, ok := m.Get("ci-runner", region)
		if len(imgs) != 1 || !ok || e.ID != *imgs[0].ImageId {
			t.Errorf("%s: %d images of run %s, manifest entry %+v", region, len(imgs), run, e)
		}
	}
	if got := git(t, w.origin, "rev-parse", "main"); got != mainBefore {
		t.Error("main moved; the change belongs in the merge request")
	}

	// Retrying the publish job (it reads the run from the build job's
	// artifact) finds the merge request.
	p = w.start(t, a, "--variable", "CI_PIPELINE_SOURCE=web", "publish:ci-runner:x86_64")
	p.wait()
	p.mustPass(t, "retried publish", "publish:ci-runner:x86_64")
	if n := len(gl.Requests()); n != 1 || !strings.Contains(p.out.String(), "merge request "+gl.URL()[:len(gl.URL())-len("/api/v4")]) {
		t.Errorf("after a retried publish: %d merge requests\n%s", n, p.out.String())
	}
}
