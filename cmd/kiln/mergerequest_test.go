package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/forge/forgetest"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/pipeline"
)

const forgeToken = "glpat-Kiln-T3st-Token-0123456789"

// gitOrigin makes the world's project a clone of a new bare repository
// (its origin, main), with forgeYAML appended to kiln.yaml, and returns
// the origin's path.
func (w *localWorld) gitOrigin(t *testing.T, forgeYAML string) string {
	t.Helper()
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	origin := filepath.Join(t.TempDir(), "images.git")
	git(t, filepath.Dir(origin), "init", "-q", "--bare", "-b", "main", origin)
	if forgeYAML != "" {
		f, err := os.OpenFile(w.cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(forgeYAML)
		f.Close()
	}
	git(t, w.dir, "init", "-q", "-b", "main")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "project")
	git(t, w.dir, "remote", "add", "origin", origin)
	git(t, w.dir, "push", "-q", "-u", "origin", "main")
	return origin
}

// replicated makes a run of useCase up to its copies in every region (a
// candidate from the fixture builder, passed, copied), as CI jobs before
// publish would, and returns its id.
func (w *localWorld) replicated(t *testing.T, useCase, arch string) string {
	t.Helper()
	ctx := t.Context()
	cfg := w.config(t)
	j, err := journal.Open(journalPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	p := &pipeline.Pipeline{Config: cfg, Backend: &fakeBuilder{Backend: w.store(t, time.Now())}, Journal: j, Concurrency: 3}
	r, err := p.NewRun(ctx, useCase, arch, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Build(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Test(ctx, r, false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Replicate(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// documented is the part of a report --merge-request and --push-to add.
type documented struct {
	MergeRequest *struct {
		Branch       string `json:"branch"`
		TargetBranch string `json:"target_branch"`
		Commit       string `json:"commit"`
		Pushed       bool   `json:"pushed"`
		URL          string `json:"url"`
		Number       int    `json:"number"`
		Created      bool   `json:"created"`
	} `json:"merge_request"`
	Push *struct {
		Branch   string `json:"branch"`
		Commit   string `json:"commit"`
		Pushed   bool   `json:"pushed"`
		Attempts int    `json:"attempts"`
	} `json:"push"`
}

func decodeDocumented(t *testing.T, out string) documented {
	t.Helper()
	var d documented
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return d
}

// originManifest decodes a channel's manifest on a branch of origin.
func originManifest(t *testing.T, origin, branch, channel string) manifest.Manifest {
	t.Helper()
	out, err := exec.Command("git", "-C", origin, "show", branch+":manifests/"+channel+".json").Output()
	if err != nil {
		t.Fatalf("manifests/%s.json on %s: %v", channel, branch, err)
	}
	m, err := manifest.Decode(branch, out)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A publish with --merge-request pushes the manifest change alone to
// kiln/latest/RUN on main's tip and opens one merge request; a rerun of
// publish and a release --resume find it; its URL is in the JSON and the
// journal; the token is nowhere kiln writes.
func TestMergeRequestOnceThenFound(t *testing.T) {
	w := newLocalWorld(t, 50)
	gl := forgetest.NewGitLab(t, "images/runners", forgeToken)
	origin := w.gitOrigin(t, "forge: {type: gitlab, api_url: '"+gl.URL()+"', project: images/runners, token_env: KILN_TEST_FORGE_TOKEN}\n")
	gl.Branches = func(b string) bool {
		return exec.Command("git", "-C", origin, "rev-parse", "--verify", "--quiet", "refs/heads/"+b).Run() == nil
	}
	t.Setenv("KILN_TEST_FORGE_TOKEN", forgeToken)
	run := w.replicated(t, "sandbox", "x86_64")
	mainBefore := git(t, origin, "rev-parse", "main")

	out, stderr, code := w.kiln(t, "publish", "--run", run, "--merge-request", "-o", "json")
	if code != 0 {
		t.Fatalf("publish --merge-request: exit %d\n%s", code, stderr)
	}
	d := decodeDocumented(t, out)
	mr := d.MergeRequest
	if mr == nil || !mr.Created || mr.Number != 1 || mr.Branch != "kiln/latest/"+run || mr.TargetBranch != "main" || !mr.Pushed || !strings.HasSuffix(mr.URL, "/-/merge_requests/1") {
		t.Fatalf("merge_request %+v\n%s", mr, out)
	}
	reqs := gl.Requests()
	if len(reqs) != 1 || reqs[0].Source != mr.Branch || reqs[0].Target != "main" || !strings.Contains(reqs[0].Title, run) {
		t.Fatalf("forge holds %+v", reqs)
	}
	for _, want := range []string{run, "local-a, local-b, local-c", `+ sandbox.local-a.id:`} {
		if !strings.Contains(reqs[0].Description, want) {
			t.Errorf("description lacks %q:\n%s", want, reqs[0].Description)
		}
	}
	if got := git(t, origin, "rev-parse", mr.Branch); got != mr.Commit {
		t.Errorf("branch %s at %s, reported %s", mr.Branch, got, mr.Commit)
	}
	if parent := git(t, origin, "rev-parse", mr.Branch+"^"); parent != mainBefore {
		t.Errorf("the request's commit is on %s, not main's tip %s", parent, mainBefore)
	}
	if files := git(t, origin, "show", "--name-only", "--format=", mr.Branch); files != "manifests/latest.json" {
		t.Errorf("the commit changes %q, want only the manifest", files)
	}
	if m := originManifest(t, origin, mr.Branch, "latest"); len(m["sandbox"]) != 3 {
		t.Errorf("the branch's manifest:\n%s", m.Encode())
	}
	if git(t, origin, "rev-parse", "main") != mainBefore {
		t.Error("main moved")
	}
	if st := git(t, w.dir, "status", "--porcelain"); st != "?? manifests/" {
		t.Errorf("work tree: %q (the manifest is written there, nothing is committed to the branch checked out)", st)
	}

	// The journal has the step, with the URL.
	rout, _, code := w.kiln(t, "runs", "--run", run, "-o", "json")
	if code != 0 || !strings.Contains(rout, `"merge request"`) || !strings.Contains(rout, mr.URL) {
		t.Errorf("journal of the run lacks the merge request step with its URL:\n%s", rout)
	}

	// A rerun of publish finds the request.
	out, stderr, code = w.kiln(t, "publish", "--run", run, "--merge-request", "-o", "json")
	if code != 0 {
		t.Fatalf("second publish: exit %d\n%s", code, stderr)
	}
	if again := decodeDocumented(t, out).MergeRequest; again == nil || again.Created || again.Pushed || again.URL != mr.URL || again.Commit != mr.Commit {
		t.Errorf("rerun: %+v", again)
	}
	// So does release --resume.
	out, stderr, code = w.kiln(t, "release", "--resume", run, "--merge-request", "-o", "json")
	if code != 0 {
		t.Fatalf("release --resume: exit %d\n%s", code, stderr)
	}
	if again := decodeDocumented(t, out).MergeRequest; again == nil || again.Created || again.URL != mr.URL {
		t.Errorf("resume: %+v", again)
	}
	if !strings.Contains(stderr, "merge request "+mr.URL+" is open") {
		t.Errorf("resume's stderr:\n%s", stderr)
	}
	if n := len(gl.Requests()); n != 1 {
		t.Errorf("%d merge requests, want 1", n)
	}

	// The token is in no output, no journal, no git object.
	j, _ := os.ReadFile(journalPath(w.config(t)))
	history, _ := exec.Command("git", "-C", origin, "log", "--all", "-p").CombinedOutput()
	for what, text := range map[string]string{"stdout": out, "stderr": stderr, "journal": string(j), "origin's history": string(history), "forge description": gl.Requests()[0].Description} {
		if strings.Contains(text, forgeToken) {
			t.Errorf("the token is in %s", what)
		}
	}
}

// --merge-request refuses before anything is done when it cannot work: no
// token, no forge to be found, together with --commit.
func TestMergeRequestRefusedUpFront(t *testing.T) {
	w := newLocalWorld(t, 50)
	w.gitOrigin(t, "")
	t.Setenv("GITLAB_TOKEN", "")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"release", "sandbox", "--merge-request"}, "a local path has no forge"},
		{[]string{"release", "sandbox", "--merge-request", "--commit"}, "leave out --commit"},
		{[]string{"release", "sandbox", "--merge-request", "--push-to", "main"}, "give one"},
		{[]string{"release", "sandbox", "--push-to", "a..b"}, `"a..b" is not a branch name`},
		{[]string{"promote", "sandbox", "--apply", "--merge-request"}, "a local path has no forge"},
	} {
		_, stderr, code := w.kiln(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
	// A forge that can be found, but no token.
	git(t, w.dir, "remote", "set-url", "origin", "https://gitlab.example.com/images/runners.git")
	_, stderr, code := w.kiln(t, "release", "sandbox", "--merge-request")
	if code != 2 || !strings.Contains(stderr, "$GITLAB_TOKEN is empty") {
		t.Errorf("no token: exit %d, %s", code, stderr)
	}
	if runs, _, _ := w.kiln(t, "runs", "-o", "json"); strings.Contains(runs, "sandbox") {
		t.Errorf("a refused release started a run:\n%s", runs)
	}
}

// --push-to from a checkout that is behind: another machine pushed the
// runner's entries to main after this checkout was made; kiln's commit
// goes on main's tip with both.
func TestPushToFromBehind(t *testing.T) {
	w := newLocalWorld(t, 50)
	origin := w.gitOrigin(t, "")
	// Another machine's push: runner entries on main.
	other := filepath.Join(t.TempDir(), "other")
	git(t, filepath.Dir(other), "clone", "-q", origin, other)
	rel := w.release(t, "runner", "x86_64", "latest", time.Now())
	data, err := os.ReadFile(filepath.Join(w.dir, "manifests/latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(other, "manifests"), 0o755)
	os.WriteFile(filepath.Join(other, "manifests/latest.json"), data, 0o644)
	git(t, other, "add", "-A")
	git(t, other, "commit", "-qm", "latest: runner")
	git(t, other, "push", "-q", "origin", "main")
	// This checkout never saw it.
	os.RemoveAll(filepath.Join(w.dir, "manifests"))

	run := w.replicated(t, "sandbox", "x86_64")
	out, stderr, code := w.kiln(t, "publish", "--run", run, "--push-to", "main", "-o", "json")
	if code != 0 {
		t.Fatalf("publish --push-to: exit %d\n%s", code, stderr)
	}
	p := decodeDocumented(t, out).Push
	if p == nil || !p.Pushed || p.Branch != "main" || p.Commit != git(t, origin, "rev-parse", "main") {
		t.Fatalf("push %+v\n%s", p, out)
	}
	m := originManifest(t, origin, "main", "latest")
	if e, ok := m.Get("runner-x86_64", "local-a"); !ok || e.ID != rel.images["local-a"].ID {
		t.Errorf("the other machine's entry is gone:\n%s", m.Encode())
	}
	if len(m["sandbox"]) != 3 {
		t.Errorf("this run's entries are missing:\n%s", m.Encode())
	}
	if subject := git(t, origin, "log", "-1", "--format=%s", "main"); !strings.Contains(subject, run) {
		t.Errorf("subject %q", subject)
	}
	// Again: main has it, nothing is pushed.
	out, _, code = w.kiln(t, "publish", "--run", run, "--push-to", "main", "-o", "json")
	if p := decodeDocumented(t, out).Push; code != 0 || p == nil || p.Pushed || p.Commit != "" {
		t.Errorf("second publish --push-to: exit %d, %+v", code, p)
	}
}

// Promote and rollback with --merge-request on GitHub: each opens one pull
// request from a branch named for what it does, holding the target
// channel's manifest as the command wrote it, and finds it again.
func TestPullRequestPromoteAndRollback(t *testing.T) {
	w := newLocalWorld(t, 50)
	gh := forgetest.NewGitHub(t, "images/runners", forgeToken)
	origin := w.gitOrigin(t, "forge: {type: github, api_url: '"+gh.URL()+"', project: images/runners}\n")
	t.Setenv("GITHUB_TOKEN", forgeToken)
	first := w.release(t, "sandbox", "x86_64", "latest", time.Now())
	git(t, w.dir, "add", "manifests")
	git(t, w.dir, "commit", "-qm", "latest: sandbox")
	git(t, w.dir, "tag", "v1")
	git(t, w.dir, "push", "-q", "origin", "main", "v1")
	w.release(t, "sandbox", "x86_64", "latest", time.Now())
	git(t, w.dir, "commit", "-qam", "latest: sandbox again")
	git(t, w.dir, "push", "-q", "origin", "main")

	for i := 0; i < 2; i++ {
		out, stderr, code := w.kiln(t, "promote", "sandbox", "--from", "latest", "--to", "stable", "--apply", "--merge-request", "-o", "json")
		if code != 0 {
			t.Fatalf("promote: exit %d\n%s", code, stderr)
		}
		mr := decodeDocumented(t, out).MergeRequest
		if mr == nil || mr.Branch != "kiln/stable/promote-sandbox-from-latest" || mr.Number != 1 || mr.Created != (i == 0) {
			t.Fatalf("promote %d: %+v", i, mr)
		}
	}
	if m := originManifest(t, origin, "kiln/stable/promote-sandbox-from-latest", "stable"); len(m["sandbox"]) != 3 {
		t.Errorf("promotion branch's stable manifest:\n%s", m.Encode())
	}

	out, stderr, code := w.kiln(t, "rollback", "--channel", "latest", "--to", "v1", "--apply", "--merge-request", "-o", "json")
	if code != 0 {
		t.Fatalf("rollback: exit %d\n%s", code, stderr)
	}
	mr := decodeDocumented(t, out).MergeRequest
	if mr == nil || mr.Branch != "kiln/latest/rollback-v1" || mr.Number != 2 || !mr.Created {
		t.Fatalf("rollback: %+v", mr)
	}
	m := originManifest(t, origin, mr.Branch, "latest")
	if e, ok := m.Get("sandbox", "local-a"); !ok || e.ID != first.images["local-a"].ID {
		t.Errorf("rollback branch's manifest is not v1's:\n%s", m.Encode())
	}
	reqs := gh.Requests()
	if len(reqs) != 2 || reqs[1].Title != "latest: roll back to v1" || !strings.Contains(reqs[0].Description, "gates passed: complete") {
		t.Errorf("pull requests %+v", reqs)
	}
}

// kiln killed on either side of opening the merge request: the rerun ends
// with exactly one request.
func TestMergeRequestCrash(t *testing.T) {
	for _, point := range []string{"begin publish merge request", "end publish merge request"} {
		t.Run(point, func(t *testing.T) {
			w := newLocalWorld(t, 50)
			gl := forgetest.NewGitLab(t, "images/runners", forgeToken)
			origin := w.gitOrigin(t, "forge: {type: gitlab, api_url: '"+gl.URL()+"', project: images/runners}\n")
			t.Setenv("GITLAB_TOKEN", forgeToken)
			run := w.replicated(t, "sandbox", "x86_64")
			p, code := runKiln(t, []string{"KILN_FAILPOINT=~" + point}, "publish", "--run", run, "--merge-request", "-c", w.cfg)
			if code != -1 {
				t.Fatalf("kiln was not killed at %q: exit %d\n%s", point, code, p.stderr.String())
			}
			opened := len(gl.Requests())
			out, stderr, code := w.kiln(t, "publish", "--run", run, "--merge-request", "-o", "json")
			if code != 0 {
				t.Fatalf("rerun: exit %d\n%s", code, stderr)
			}
			mr := decodeDocumented(t, out).MergeRequest
			if n := len(gl.Requests()); n != 1 || mr == nil || mr.Number != 1 || mr.Created != (opened == 0) {
				t.Errorf("after a kill at %q (%d opened before): %d requests, rerun %+v", point, opened, n, mr)
			}
			if got := git(t, origin, "rev-parse", mr.Branch); got != mr.Commit {
				t.Errorf("branch at %s, reported %s", got, mr.Commit)
			}
		})
	}
}

// kiln killed on either side of its push: the rerun leaves exactly one
// commit of the change on main.
func TestPushToCrash(t *testing.T) {
	for _, point := range []string{"begin publish push", "end publish push"} {
		t.Run(point, func(t *testing.T) {
			w := newLocalWorld(t, 50)
			origin := w.gitOrigin(t, "")
			run := w.replicated(t, "sandbox", "x86_64")
			p, code := runKiln(t, []string{"KILN_FAILPOINT=~" + point}, "publish", "--run", run, "--push-to", "main", "-c", w.cfg)
			if code != -1 {
				t.Fatalf("kiln was not killed at %q: exit %d\n%s", point, code, p.stderr.String())
			}
			if _, stderr, code := w.kiln(t, "publish", "--run", run, "--push-to", "main"); code != 0 {
				t.Fatalf("rerun: exit %d\n%s", code, stderr)
			}
			if n := git(t, origin, "rev-list", "--count", "main", "--", "manifests/latest.json"); n != "1" {
				t.Errorf("after a kill at %q: %s commits of the manifest on main, want 1", point, n)
			}
			if m := originManifest(t, origin, "main", "latest"); len(m["sandbox"]) != 3 {
				t.Errorf("main's manifest:\n%s", m.Encode())
			}
		})
	}
}
