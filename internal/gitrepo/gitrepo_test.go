package gitrepo

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// git runs git in dir for the test's own setup and checks.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=test", "-c", "user.email=test@example.com"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// world is a bare origin with main holding proj/manifests/latest.json and
// proj/run.sh, and a clone of it.
type world struct {
	origin, clone string
}

func newWorld(t *testing.T) world {
	t.Helper()
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	base := t.TempDir()
	w := world{origin: filepath.Join(base, "origin.git"), clone: filepath.Join(base, "clone")}
	git(t, base, "init", "-q", "--bare", "-b", "main", w.origin)
	seed := filepath.Join(base, "seed")
	git(t, base, "init", "-q", "-b", "main", seed)
	os.MkdirAll(filepath.Join(seed, "proj/manifests"), 0o755)
	os.WriteFile(filepath.Join(seed, "proj/manifests/latest.json"), []byte("{}\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "proj/run.sh"), []byte("#!/bin/sh\n"), 0o755)
	git(t, seed, "add", "-A")
	git(t, seed, "commit", "-qm", "seed")
	git(t, seed, "push", "-q", w.origin, "main")
	git(t, base, "clone", "-q", w.origin, w.clone)
	return w
}

func (w world) repo(t *testing.T) *Repo {
	t.Helper()
	r, err := Open(t.Context(), filepath.Join(w.clone, "proj"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPathAndRemote(t *testing.T) {
	w := newWorld(t)
	r := w.repo(t)
	ctx := t.Context()
	for file, want := range map[string]string{
		filepath.Join(w.clone, "proj/manifests/latest.json"):    "proj/manifests/latest.json",
		filepath.Join(w.clone, "proj/new/dir/stable.json"):      "proj/new/dir/stable.json",
		filepath.Join(w.clone, "proj/../proj/manifests/x.json"): "proj/manifests/x.json",
	} {
		got, err := r.Path(ctx, file)
		if err != nil || got != want {
			t.Errorf("Path(%s) = %q, %v; want %q", file, got, err, want)
		}
	}
	if _, err := r.Path(ctx, filepath.Join(t.TempDir(), "x.json")); err == nil || !strings.Contains(err.Error(), "not in a git work tree") {
		t.Errorf("a file outside: %v", err)
	}
	if _, err := Open(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "not in a git work tree") {
		t.Errorf("Open outside a work tree: %v", err)
	}
	if u, err := r.RemoteURL(ctx, "origin"); err != nil || u != w.origin {
		t.Errorf("RemoteURL = %q, %v", u, err)
	}
	if _, err := r.RemoteURL(ctx, "upstream"); err == nil {
		t.Error("RemoteURL of a remote that does not exist")
	}
	if b, err := r.DefaultBranch(ctx, "origin"); err != nil || b != "main" {
		t.Errorf("DefaultBranch = %q, %v", b, err)
	}
}

// A commit of one file changes that file only, keeps the others and their
// modes, and leaves the work tree, the index and HEAD alone.
func TestCommitFileTouchesNothingElse(t *testing.T) {
	w := newWorld(t)
	r := w.repo(t)
	ctx := t.Context()
	// Work in progress in the clone.
	os.WriteFile(filepath.Join(w.clone, "proj/run.sh"), []byte("#!/bin/sh\necho wip\n"), 0o755)
	os.WriteFile(filepath.Join(w.clone, "proj/new.txt"), []byte("new\n"), 0o644)
	git(t, w.clone, "add", "proj/new.txt")
	status, head := git(t, w.clone, "status", "--porcelain"), git(t, w.clone, "rev-parse", "HEAD")

	tip, err := r.Fetch(ctx, "origin", "main")
	if err != nil || tip != head {
		t.Fatalf("Fetch = %q, %v; want %s", tip, err, head)
	}
	data := []byte(`{"a": 1}` + "\n")
	c, err := r.CommitFile(ctx, tip, "proj/manifests/latest.json", data, "latest: a\n\nbody\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := git(t, w.clone, "show", c+":proj/manifests/latest.json"); got != strings.TrimSpace(string(data)) {
		t.Errorf("file in the commit: %q", got)
	}
	if got := git(t, w.clone, "diff", "--name-only", tip, c); got != "proj/manifests/latest.json" {
		t.Errorf("the commit changes %q", got)
	}
	if got := git(t, w.clone, "ls-tree", c, "proj/run.sh"); !strings.HasPrefix(got, "100755") {
		t.Errorf("run.sh lost its mode: %s", got)
	}
	if got := git(t, w.clone, "log", "-1", "--format=%s%n%b", c); got != "latest: a\nbody" {
		t.Errorf("message %q", got)
	}
	if in, err := r.Inspect(ctx, c); err != nil || len(in.Parents) != 1 || in.Parents[0] != tip {
		t.Errorf("Inspect = %+v, %v", in, err)
	}
	if s, h := git(t, w.clone, "status", "--porcelain"), git(t, w.clone, "rev-parse", "HEAD"); s != status || h != head {
		t.Errorf("work tree or HEAD changed:\n%s\n%s\nwas\n%s\n%s", s, h, status, head)
	}
	// Reading it back.
	got, ok, err := r.ReadFile(ctx, c, "proj/manifests/latest.json")
	if err != nil || !ok || string(got) != string(data) {
		t.Errorf("ReadFile = %q %v %v", got, ok, err)
	}
	if _, ok, err := r.ReadFile(ctx, c, "proj/manifests/none.json"); ok || err != nil {
		t.Errorf("ReadFile of a missing file: %v %v", ok, err)
	}
	if _, _, err := r.ReadFile(ctx, c, "proj/manifests"); err == nil {
		t.Error("ReadFile of a directory")
	}
	if _, _, err := r.ReadFile(ctx, strings.Repeat("0", 40), "proj/x"); err == nil {
		t.Error("ReadFile at a commit that does not exist")
	}
}

func TestCommitFileRefusesSymlink(t *testing.T) {
	w := newWorld(t)
	os.Symlink("/etc/passwd", filepath.Join(w.clone, "proj/manifests/stable.json"))
	git(t, w.clone, "add", "-A")
	git(t, w.clone, "commit", "-qm", "link")
	_, err := w.repo(t).CommitFile(t.Context(), git(t, w.clone, "rev-parse", "HEAD"), "proj/manifests/stable.json", []byte("{}"), "x")
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("commit over a symlink: %v", err)
	}
}

func TestFetchMissingBranchAndRootCommit(t *testing.T) {
	w := newWorld(t)
	r := w.repo(t)
	ctx := t.Context()
	tip, err := r.Fetch(ctx, "origin", "kiln/latest/nothing")
	if err != nil || tip != "" {
		t.Fatalf("Fetch of a missing branch = %q, %v", tip, err)
	}
	c, err := r.CommitFile(ctx, "", "m.json", []byte("{}\n"), "root")
	if err != nil {
		t.Fatal(err)
	}
	if got := git(t, w.clone, "ls-tree", "-r", "--name-only", c); got != "m.json" {
		t.Errorf("root commit holds %q", got)
	}
	if _, err := r.Fetch(ctx, "nowhere", "main"); err == nil {
		t.Error("Fetch from a remote that does not exist")
	}
}

func TestPush(t *testing.T) {
	w := newWorld(t)
	r := w.repo(t)
	ctx := t.Context()
	tip, _ := r.Fetch(ctx, "origin", "main")
	c1, _ := r.CommitFile(ctx, tip, "proj/manifests/latest.json", []byte("1\n"), "one")
	if _, err := r.Push(ctx, "origin", c1, "main", PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := git(t, w.origin, "rev-parse", "main"); got != c1 {
		t.Fatalf("origin main = %s, want %s", got, c1)
	}
	// Pushing the same again is fine.
	if _, err := r.Push(ctx, "origin", c1, "main", PushOptions{}); err != nil {
		t.Errorf("second push of the same commit: %v", err)
	}
	// A commit on the old tip is refused: the branch moved.
	c2, _ := r.CommitFile(ctx, tip, "proj/manifests/latest.json", []byte("2\n"), "two")
	_, err := r.Push(ctx, "origin", c2, "main", PushOptions{})
	var rej *RejectedError
	if !errors.As(err, &rej) || !rej.Moved {
		t.Fatalf("stale push: %v", err)
	}
	// A new branch with a lease that it must not exist.
	none := ""
	if _, err := r.Push(ctx, "origin", c2, "kiln/latest/run-1", PushOptions{Lease: &none}); err != nil {
		t.Fatal(err)
	}
	// ... and again: it exists now, the lease fails.
	_, err = r.Push(ctx, "origin", c1, "kiln/latest/run-1", PushOptions{Lease: &none})
	if !errors.As(err, &rej) || !rej.Moved {
		t.Fatalf("push with a broken lease: %v", err)
	}
	// With the right lease it may replace the branch with anything.
	if _, err := r.Push(ctx, "origin", c1, "kiln/latest/run-1", PushOptions{Lease: &c2}); err != nil {
		t.Fatal(err)
	}
	if got := git(t, w.origin, "rev-parse", "kiln/latest/run-1"); got != c1 {
		t.Errorf("branch = %s, want %s", got, c1)
	}
}

// A remote that refuses for another reason is not "moved", and what it
// said comes back.
func TestPushRefusedByHook(t *testing.T) {
	w := newWorld(t)
	hook := filepath.Join(w.origin, "hooks/pre-receive")
	os.WriteFile(hook, []byte("#!/bin/sh\necho 'protected branch: ask a maintainer'\nexit 1\n"), 0o755)
	r := w.repo(t)
	ctx := t.Context()
	tip, _ := r.Fetch(ctx, "origin", "main")
	c, _ := r.CommitFile(ctx, tip, "proj/manifests/latest.json", []byte("1\n"), "one")
	said, err := r.Push(ctx, "origin", c, "main", PushOptions{})
	var rej *RejectedError
	if !errors.As(err, &rej) || rej.Moved || !strings.Contains(rej.Reason, "hook declined") {
		t.Fatalf("push refused by a hook: %v", err)
	}
	if len(said) == 0 || !strings.Contains(strings.Join(said, "\n"), "protected branch") {
		t.Errorf("remote said %q", said)
	}
}

// A remote's credentials never reach kiln's errors, whatever git prints.
func TestErrorsHideCredentials(t *testing.T) {
	w := newWorld(t)
	git(t, w.clone, "remote", "set-url", "origin", "https://gitlab-ci-token:s3cret-job-token@127.0.0.1:1/images.git")
	_, err := w.repo(t).Fetch(t.Context(), "origin", "main")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("fetch error %v", err)
	}
	if got := redactURLs("fatal: unable to access 'https://oauth2:glpat-x@gitlab.com/a/b.git/': 403"); got != "fatal: unable to access 'https://REDACTED@gitlab.com/a/b.git/': 403" {
		t.Errorf("redactURLs: %s", got)
	}
}
