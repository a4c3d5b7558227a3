package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// --commit records each manifest change of release, promote and rollback
// in git, only the manifest, with a message naming what happened; a
// command that changes nothing commits nothing.
func TestAWSManifestCommits(t *testing.T) {
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	w := newAWSWorld(t, "{public: true}")
	os.WriteFile(filepath.Join(w.dir, ".gitignore"), []byte(".kiln/\n"), 0o644)
	git(t, w.dir, "init", "-q", "-b", "main")
	git(t, w.dir, "config", "user.name", "Release Bot")
	git(t, w.dir, "config", "user.email", "bot@example.com")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "project")
	// An unrelated change in the work tree stays out of kiln's commits.
	os.WriteFile(filepath.Join(w.dir, "scripts/setup.sh"), []byte("#!/bin/sh\necho changed\n"), 0o755)

	release := func() (run, commit string) {
		t.Helper()
		out, stderr, code := w.kiln(t, "release", "ci-runner", "--commit", "-o", "json")
		if code != 0 {
			t.Fatalf("release --commit: exit %d\n%s", code, stderr)
		}
		var rep struct {
			Run    struct{ ID, Version string }
			Commit string `json:"commit"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if rep.Commit == "" || rep.Commit != git(t, w.dir, "rev-parse", "HEAD") {
			t.Fatalf("release reported commit %q, HEAD is %s", rep.Commit, git(t, w.dir, "rev-parse", "HEAD"))
		}
		if subject := git(t, w.dir, "log", "-1", "--format=%s"); subject != "latest: ci-runner x86_64 "+rep.Run.Version+" (kiln run "+rep.Run.ID+")" {
			t.Errorf("subject %q", subject)
		}
		return rep.Run.ID, rep.Commit
	}
	onlyFile := func(commit, want string) {
		t.Helper()
		if files := git(t, w.dir, "show", "--name-only", "--format=", commit); files != want {
			t.Errorf("commit %s changed %q, want only %s", commit, files, want)
		}
	}

	run1, c1 := release()
	onlyFile(c1, "manifests/latest.json")
	if body := git(t, w.dir, "log", "-1", "--format=%b"); !strings.Contains(body, "us-east-1") {
		t.Errorf("message body has no diff:\n%s", body)
	}
	if st := git(t, w.dir, "status", "--porcelain"); st != "M scripts/setup.sh" {
		t.Errorf("work tree after release --commit:\n%s", st)
	}
	git(t, w.dir, "tag", "v1")
	v1 := git(t, w.dir, "show", "v1:manifests/latest.json")

	run2, c2 := release()
	if run2 == run1 || c2 == c1 {
		t.Fatalf("second release: run %s commit %s, same as the first", run2, c2)
	}

	if _, stderr, code := w.kiln(t, "promote", "ci-runner", "--apply", "--commit"); code != 0 {
		t.Fatalf("promote --commit: exit %d\n%s", code, stderr)
	}
	onlyFile("HEAD", "manifests/stable.json")
	if subject := git(t, w.dir, "log", "-1", "--format=%s"); subject != "stable: promote ci-runner from latest" {
		t.Errorf("promote subject %q", subject)
	}
	head := git(t, w.dir, "rev-parse", "HEAD")
	if _, stderr, code := w.kiln(t, "promote", "ci-runner", "--apply", "--commit"); code != 0 {
		t.Fatalf("second promote: exit %d\n%s", code, stderr)
	}
	if now := git(t, w.dir, "rev-parse", "HEAD"); now != head {
		t.Errorf("a promote that changed nothing made commit %s", now)
	}

	if _, stderr, code := w.kiln(t, "rollback", "--channel", "latest", "--ref", "v1", "--apply", "--commit"); code != 0 {
		t.Fatalf("rollback --commit: exit %d\n%s", code, stderr)
	}
	onlyFile("HEAD", "manifests/latest.json")
	if subject := git(t, w.dir, "log", "-1", "--format=%s"); subject != "latest: roll back to v1" {
		t.Errorf("rollback subject %q", subject)
	}
	if got := git(t, w.dir, "show", "HEAD:manifests/latest.json"); got != v1 {
		t.Errorf("rolled-back manifest in git:\n%s\nwant\n%s", got, v1)
	}
	if n := git(t, w.dir, "rev-list", "--count", "HEAD"); n != "5" {
		t.Errorf("%s commits, want 5 (project, 2 releases, promote, rollback)", n)
	}
}

// --commit where the manifest is not in a git work tree, or --push
// without --commit, is refused before anything is made.
func TestAWSCommitRefusedUpFront(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"release", "ci-runner", "--commit"}, "not in a git work tree"},
		{[]string{"release", "ci-runner", "--push"}, "--push goes with --commit"},
	} {
		_, stderr, code := w.kiln(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
	out, err := w.ec2("us-east-1").DescribeImages(t.Context(), &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagManaged), Values: []string{"true"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Images) != 0 {
		t.Errorf("refused releases made %d images", len(out.Images))
	}
	if _, err := os.Stat(filepath.Join(w.dir, "manifests")); !os.IsNotExist(err) {
		t.Errorf("refused releases wrote manifests: %v", err)
	}
}

// gitProject makes the world's directory a git repository with its
// project committed, pushing to a bare remote.
func (w *awsWorld) gitProject(t *testing.T) (remote string) {
	t.Helper()
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	os.WriteFile(filepath.Join(w.dir, ".gitignore"), []byte(".kiln/\n"), 0o644)
	git(t, w.dir, "init", "-q", "-b", "main")
	git(t, w.dir, "config", "user.name", "Release Bot")
	git(t, w.dir, "config", "user.email", "bot@example.com")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "project")
	remote = filepath.Join(t.TempDir(), "remote.git")
	git(t, w.dir, "init", "-q", "--bare", remote)
	git(t, w.dir, "remote", "add", "origin", remote)
	git(t, w.dir, "push", "-q", "-u", "origin", "main")
	return remote
}

// TestAWSCommitRetryFinishesTheJob: a commit or push that failed after the
// manifest was written is finished by running the same command again.
func TestAWSCommitRetryFinishesTheJob(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	remote := w.gitProject(t)
	out, stderr, code := w.kiln(t, "build", "ci-runner")
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	run := strings.TrimSpace(out)
	for _, phase := range []string{"test", "replicate"} {
		if _, stderr, code := w.kiln(t, phase, "--run", run); code != 0 {
			t.Fatalf("%s: exit %d\n%s", phase, code, stderr)
		}
	}
	// A pre-commit hook that refuses the real commit (it stages the
	// manifest), not the empty check kiln makes first.
	writeHook(t, w.dir, "pre-commit", `if git diff --cached --name-only | grep -q manifests/; then echo "manifest commits frozen" >&2; exit 1; fi`)
	_, stderr, code = w.kiln(t, "publish", "--run", run, "--commit", "--push")
	if code != 2 || !strings.Contains(stderr, "manifest commits frozen") || strings.Contains(stderr, "KILN") {
		t.Fatalf("publish with a refusing hook: exit %d\n%s", code, stderr)
	}
	if n := git(t, w.dir, "rev-list", "--count", "HEAD"); n != "1" {
		t.Fatalf("%s commits after a refused commit", n)
	}
	os.Remove(filepath.Join(w.dir, ".git", "hooks", "pre-commit"))
	// The push fails the first time.
	flag := filepath.Join(t.TempDir(), "refuse-push")
	os.WriteFile(flag, nil, 0o644)
	writeHook(t, w.dir, "pre-push", `if [ -e `+flag+` ]; then rm `+flag+`; echo "remote busy" >&2; exit 1; fi`)
	_, stderr, code = w.kiln(t, "publish", "--run", run, "--commit", "--push")
	if code != 2 || !strings.Contains(stderr, "but not pushed") {
		t.Fatalf("publish whose push fails: exit %d\n%s", code, stderr)
	}
	head := git(t, w.dir, "rev-parse", "HEAD")
	if files := git(t, w.dir, "show", "--name-only", "--format=", head); files != "manifests/latest.json" {
		t.Fatalf("the retried commit changed %q", files)
	}
	if git(t, remote, "rev-parse", "main") == head {
		t.Fatal("pushed although the push failed")
	}
	// The retry pushes what is committed, and makes no second commit.
	_, stderr, code = w.kiln(t, "publish", "--run", run, "--commit", "--push")
	if code != 0 {
		t.Fatalf("retry: exit %d\n%s", code, stderr)
	}
	if got := git(t, remote, "rev-parse", "main"); got != head || git(t, w.dir, "rev-parse", "HEAD") != head {
		t.Errorf("after the retry: remote at %s, HEAD at %s, want both %s", got, git(t, w.dir, "rev-parse", "HEAD"), head)
	}
	// Reruns of finished phases are done, not failures.
	for _, phase := range []string{"test", "replicate"} {
		_, stderr, code := w.kiln(t, phase, "--run", run)
		if code != 0 || !strings.Contains(stderr, "published already") {
			t.Errorf("%s after publish: exit %d\n%s", phase, code, stderr)
		}
	}
}

// TestAWSCommitOnlyKilnsChange: a hand edit of another entry stays
// uncommitted in the work tree; a hand edit of the entries kiln writes is
// refused before anything is made; a detached HEAD is warned about.
func TestAWSCommitOnlyKilnsChange(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	w.gitProject(t)
	if _, stderr, code := w.kiln(t, "release", "ci-runner", "--commit", "--version", "1.1"); code != 0 {
		t.Fatalf("release: exit %d\n%s", code, stderr)
	}
	path := filepath.Join(w.dir, "manifests", "latest.json")
	committed, _ := os.ReadFile(path)
	handEdited := strings.Replace(string(committed), "{\n", `{
  "other-team": {
    "us-east-1": {
      "architecture": "x86_64",
      "deprecation_time": "",
      "id": "ami-0123456789abcdef0",
      "name": "theirs",
      "public": false
    }
  },
`, 1)
	os.WriteFile(path, []byte(handEdited), 0o644)
	if _, stderr, code := w.kiln(t, "release", "ci-runner", "--commit", "--version", "1.2"); code != 0 {
		t.Fatalf("release with another entry edited: exit %d\n%s", code, stderr)
	}
	if got := git(t, w.dir, "show", "HEAD:manifests/latest.json"); strings.Contains(got, "other-team") {
		t.Errorf("kiln's commit took in the hand edit:\n%s", got)
	}
	if work, _ := os.ReadFile(path); !strings.Contains(string(work), "other-team") {
		t.Error("the hand edit is gone from the work tree")
	}
	if st := git(t, w.dir, "status", "--porcelain"); st != "M manifests/latest.json" {
		t.Errorf("status: %q, want the hand edit as an unstaged change", st)
	}

	// An edit of kiln's own entries: refused, nothing made.
	before := w.allImages(t)
	os.WriteFile(path, []byte(strings.Replace(handEdited, `"public": true`, `"public": false`, 1)), 0o644)
	_, stderr, code := w.kiln(t, "release", "ci-runner", "--commit", "--version", "1.3")
	if code != 2 || !strings.Contains(stderr, "uncommitted edits to the entries kiln writes") || !strings.Contains(stderr, "ci-runner") {
		t.Fatalf("release over an edit of its entries: exit %d\n%s", code, stderr)
	}
	if after := w.allImages(t); len(after) != len(before) {
		t.Errorf("the refused release made images: %d -> %d", len(before), len(after))
	}
	git(t, w.dir, "checkout", "--", "manifests/latest.json")

	// Detached HEAD: a warning, and --push is refused up front.
	git(t, w.dir, "checkout", "-q", "--detach")
	_, stderr, code = w.kiln(t, "release", "ci-runner", "--commit", "--push")
	if code != 2 || !strings.Contains(stderr, "HEAD is detached") {
		t.Fatalf("--push on a detached HEAD: exit %d\n%s", code, stderr)
	}
	_, stderr, code = w.kiln(t, "release", "ci-runner", "--commit", "--version", "1.4")
	if code != 0 || !strings.Contains(stderr, "warning: HEAD is detached") {
		t.Fatalf("--commit on a detached HEAD: exit %d\n%s", code, stderr)
	}
}
