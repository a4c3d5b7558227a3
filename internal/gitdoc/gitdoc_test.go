package gitdoc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/forge"
	"github.com/kiln-images/kiln/internal/forge/forgetest"
	"github.com/kiln-images/kiln/internal/gitrepo"
	"github.com/kiln-images/kiln/internal/manifest"
)

const projectYAML = `project: demo
regions: [local-a, local-b]
use_cases:
  sandbox:
    architectures: [x86_64]
    tests: [tests/boot.sh]
  runner:
    architectures: [x86_64, arm64]
    tests: [tests/boot.sh]
`

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=test", "-c", "user.email=test@example.com"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// world is a bare origin holding a kiln project in images/ on main, and
// clones of it: one per machine.
type world struct {
	t      *testing.T
	base   string
	origin string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	w := &world{t: t, base: t.TempDir()}
	w.origin = filepath.Join(w.base, "origin.git")
	git(t, w.base, "init", "-q", "--bare", "-b", "main", w.origin)
	seed := filepath.Join(w.base, "seed")
	git(t, w.base, "init", "-q", "-b", "main", seed)
	for path, data := range map[string]string{"images/kiln.yaml": projectYAML, "images/tests/boot.sh": "#!/bin/sh\n", "README": "hi\n"} {
		os.MkdirAll(filepath.Dir(filepath.Join(seed, path)), 0o755)
		os.WriteFile(filepath.Join(seed, path), []byte(data), 0o755)
	}
	git(t, seed, "add", "-A")
	git(t, seed, "commit", "-qm", "project")
	git(t, seed, "push", "-q", w.origin, "main")
	return w
}

// clone is a checkout of origin's main, as a CI job has.
type clone struct {
	dir  string
	cfg  *config.Config
	repo *gitrepo.Repo
}

func (w *world) clone(name string) *clone {
	t := w.t
	t.Helper()
	dir := filepath.Join(w.base, name)
	git(t, w.base, "clone", "-q", w.origin, dir)
	cfg, err := config.Load(filepath.Join(dir, "images/kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := gitrepo.Open(t.Context(), filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	return &clone{dir: dir, cfg: cfg, repo: repo}
}

// onOrigin decodes the latest manifest on origin's branch.
func (w *world) onOrigin(branch string) manifest.Manifest {
	t := w.t
	t.Helper()
	out, err := exec.Command("git", "-C", w.origin, "show", branch+":images/manifests/latest.json").Output()
	if err != nil {
		t.Fatalf("no manifest on %s: %v", branch, err)
	}
	m, err := manifest.Decode("origin", out)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func entry(n int, arch string) manifest.Entry {
	return manifest.Entry{Architecture: arch, ID: fmt.Sprintf("img-%017x", n), Name: fmt.Sprintf("image-%d", n), Public: true}
}

// release is a change publishing key to both regions with images n, n+1.
func (c *clone) release(key, arch string, n int) Change {
	m := manifest.Manifest{}
	m.Set(key, "local-a", entry(n, arch))
	m.Set(key, "local-b", entry(n+1, arch))
	return Change{Config: c.cfg, Channel: "latest", Keys: []string{key}, Manifest: m,
		Subject: fmt.Sprintf("latest: %s (kiln run %d)", key, n), About: fmt.Sprintf("kiln run %d released %s.", n, key)}
}

func (c *clone) opts() Options { return Options{Repo: c.repo, Remote: "origin"} }

func ids(m manifest.Manifest, key string) string {
	var out []string
	for _, l := range m.Entries() {
		if l.UseCase == key {
			out = append(out, l.Region+"="+l.ID)
		}
	}
	return strings.Join(out, " ")
}

// A checkout that is behind pushes its change on the newest commit and
// keeps what another pushed meanwhile.
func TestPushFromABehindCheckout(t *testing.T) {
	w := newWorld(t)
	a, b := w.clone("a"), w.clone("b")
	ctx := t.Context()
	res, err := Push(ctx, b.release("runner-x86_64", "x86_64", 10), b.opts(), "main")
	if err != nil || !res.Pushed || res.Attempts != 1 {
		t.Fatalf("b: %+v %v", res, err)
	}
	// a was cloned before b pushed.
	res, err = Push(ctx, a.release("sandbox", "x86_64", 20), a.opts(), "main")
	if err != nil || !res.Pushed {
		t.Fatalf("a: %+v %v", res, err)
	}
	m := w.onOrigin("main")
	if ids(m, "runner-x86_64") != "local-a=img-0000000000000000a local-b=img-0000000000000000b" || ids(m, "sandbox") != "local-a=img-00000000000000014 local-b=img-00000000000000015" {
		t.Errorf("origin's manifest:\n%s", m.Encode())
	}
	if n := git(t, w.origin, "rev-list", "--count", "main"); n != "3" {
		t.Errorf("%s commits on main, want 3", n)
	}
	if files := git(t, w.origin, "show", "--name-only", "--format=", "main"); files != "images/manifests/latest.json" {
		t.Errorf("the commit changes %q", files)
	}
	if body := git(t, w.origin, "log", "-1", "--format=%s%n%b", "main"); !strings.HasPrefix(body, "latest: sandbox (kiln run 20)\n") || !strings.Contains(body, `+ sandbox.local-b.id: "img-00000000000000015"`) {
		t.Errorf("message:\n%s", body)
	}
	// The same change again: origin has it, nothing is pushed.
	res, err = Push(ctx, a.release("sandbox", "x86_64", 20), a.opts(), "main")
	if err != nil || res.Pushed || res.Commit != "" || len(res.Changes) != 0 {
		t.Errorf("again: %+v %v", res, err)
	}
}

// Two pushes race: the branch moves after kiln fetched it (a hook on the
// origin moves it during kiln's push, as another pipeline's push landing
// first would). The remote refuses kiln's push, kiln applies its change on
// the new tip, and both changes are on the branch.
func TestPushRace(t *testing.T) {
	w := newWorld(t)
	a, b := w.clone("a"), w.clone("b")
	ctx := t.Context()
	// b's change is ready on origin as another branch, not yet on main.
	tip := git(t, b.dir, "rev-parse", "HEAD")
	m := manifest.Manifest{}
	m.Set("runner-arm64", "local-a", entry(30, "arm64"))
	other, err := b.repo.CommitFile(ctx, tip, "images/manifests/latest.json", m.Encode(), "latest: runner-arm64")
	if err != nil {
		t.Fatal(err)
	}
	git(t, b.dir, "push", "-q", "origin", other+":refs/heads/other")
	// The hook steps out of git's quarantine of the incoming objects,
	// which forbids ref updates, to move the branch as another push would.
	hook := "#!/bin/sh\nif [ ! -e race-done ]; then touch race-done; env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES git update-ref refs/heads/main refs/heads/other; fi\n"
	os.WriteFile(filepath.Join(w.origin, "hooks/pre-receive"), []byte(hook), 0o755)

	res, err := Push(ctx, a.release("sandbox", "x86_64", 40), a.opts(), "main")
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || !res.Pushed {
		t.Errorf("result %+v; want a second attempt after the race", res)
	}
	got := w.onOrigin("main")
	if ids(got, "runner-arm64") != "local-a=img-0000000000000001e" || ids(got, "sandbox") == "" {
		t.Errorf("origin's manifest after the race:\n%s", got.Encode())
	}
	if parent := git(t, w.origin, "rev-parse", "main^"); parent != other {
		t.Errorf("kiln's commit is on %s, want the other's %s", parent, other)
	}
}

// A rollback's change is the whole manifest.
func TestPushWholeManifest(t *testing.T) {
	w := newWorld(t)
	a := w.clone("a")
	ctx := t.Context()
	if _, err := Push(ctx, a.release("runner-x86_64", "x86_64", 1), a.opts(), "main"); err != nil {
		t.Fatal(err)
	}
	c := a.release("sandbox", "x86_64", 5)
	c.Keys = nil
	if _, err := Push(ctx, c, a.opts(), "main"); err != nil {
		t.Fatal(err)
	}
	if got := w.onOrigin("main"); ids(got, "runner-x86_64") != "" || ids(got, "sandbox") == "" {
		t.Errorf("after a whole-manifest change:\n%s", got.Encode())
	}
}

// A broken manifest on the branch is reported, naming where it is.
func TestPushRefusesBrokenManifestOnBranch(t *testing.T) {
	w := newWorld(t)
	b := w.clone("b")
	os.MkdirAll(filepath.Join(b.dir, "images/manifests"), 0o755)
	os.WriteFile(filepath.Join(b.dir, "images/manifests/latest.json"), []byte(`{"sandbox": {"local-a": {"id": 7}}}`), 0o644)
	git(t, b.dir, "add", "-A")
	git(t, b.dir, "commit", "-qm", "broken")
	git(t, b.dir, "push", "-q", "origin", "main")
	a := w.clone("a")
	_, err := Push(t.Context(), a.release("sandbox", "x86_64", 1), a.opts(), "main")
	if err == nil || !strings.Contains(err.Error(), "origin/main:images/manifests/latest.json") {
		t.Errorf("push onto a broken manifest: %v", err)
	}
	if _, err := Push(t.Context(), a.release("sandbox", "x86_64", 1), a.opts(), "nope"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("push to a branch that does not exist: %v", err)
	}
}

// Propose opens one request, a rerun finds it and pushes nothing, a
// target that moved gets the branch made again on its tip, and a target
// that has the change needs no commit.
func TestPropose(t *testing.T) {
	w := newWorld(t)
	a := w.clone("a")
	ctx := t.Context()
	gl := forgetest.NewGitLab(t, "images/runners", "tok")
	gl.Branches = func(b string) bool {
		return exec.Command("git", "-C", w.origin, "rev-parse", "--verify", "--quiet", "refs/heads/"+b).Run() == nil
	}
	f, err := forge.New(forge.Options{Type: forge.GitLab, APIURL: gl.URL(), Project: "images/runners", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	c := a.release("sandbox", "x86_64", 50)
	const src = "kiln/latest/kiln-run-50"
	res, err := Propose(ctx, c, a.opts(), f, src, "main")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pushed || !res.Created || res.Request == nil || res.Request.Number != 1 || res.Commit == "" {
		t.Fatalf("first: %+v", res)
	}
	if got := git(t, w.origin, "rev-parse", src); got != res.Commit {
		t.Errorf("branch %s = %s, want %s", src, got, res.Commit)
	}
	if parent := git(t, w.origin, "rev-parse", src+"^"); parent != git(t, w.origin, "rev-parse", "main") {
		t.Errorf("the branch is not on main's tip")
	}
	r := gl.Requests()[0]
	if r.Source != src || r.Target != "main" || r.Title != c.Subject || !r.RemoveSourceBranch {
		t.Errorf("request %+v", r)
	}
	for _, want := range []string{"kiln run 50 released sandbox.", "```diff", `+ sandbox.local-a.id: "img-00000000000000032"`, "images/manifests/latest.json", src} {
		if !strings.Contains(r.Description, want) {
			t.Errorf("description lacks %q:\n%s", want, r.Description)
		}
	}
	if _, err := os.Stat(filepath.Join(a.dir, "images/manifests/latest.json")); !os.IsNotExist(err) {
		t.Errorf("the work tree got a manifest: %v", err)
	}

	// A rerun: same branch, same request, nothing pushed.
	again, err := Propose(ctx, c, a.opts(), f, src, "main")
	if err != nil || again.Pushed || again.Created || again.Updated || again.Request.Number != 1 || again.Commit != res.Commit {
		t.Fatalf("rerun: %+v %v", again, err)
	}

	// main moves (another change lands); the rerun rebuilds the branch on
	// it and keeps the request.
	b := w.clone("b")
	if _, err := Push(ctx, b.release("runner-x86_64", "x86_64", 60), b.opts(), "main"); err != nil {
		t.Fatal(err)
	}
	moved, err := Propose(ctx, c, a.opts(), f, src, "main")
	if err != nil || !moved.Pushed || moved.Created || moved.Request.Number != 1 || moved.Commit == res.Commit {
		t.Fatalf("after main moved: %+v %v", moved, err)
	}
	if got := w.onOrigin(src); ids(got, "runner-x86_64") == "" || ids(got, "sandbox") == "" {
		t.Errorf("the rebuilt branch lost an entry:\n%s", got.Encode())
	}
	if n := len(gl.Requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	// Its description now shows the change against main's new tip.
	tip := git(t, w.origin, "rev-parse", "main")
	if d := gl.Requests()[0].Description; !moved.Updated || !strings.Contains(d, "at "+tip[:12]) || strings.Contains(d, "at "+git(t, w.origin, "rev-parse", "main^")[:12]) {
		t.Errorf("after main moved: updated %v, description:\n%s\nwant it against main at %s", moved.Updated, d, tip[:12])
	}

	// Merged by a person: main has the change, nothing left to propose.
	git(t, w.origin, "update-ref", "refs/heads/main", moved.Commit)
	gl.SetState(1, "merged")
	done, err := Propose(ctx, c, a.opts(), f, src, "main")
	if err != nil || done.Commit != "" || done.Pushed || done.Request != nil || len(gl.Requests()) != 1 {
		t.Errorf("after merging: %+v %v", done, err)
	}
}

// Two kilns update one request branch at once: the lease makes the
// second's push fail as "moved", and it goes again.
func TestProposeLeaseRace(t *testing.T) {
	w := newWorld(t)
	a := w.clone("a")
	ctx := t.Context()
	gl := forgetest.NewGitLab(t, "g/p", "tok")
	f, _ := forge.New(forge.Options{Type: forge.GitLab, APIURL: gl.URL(), Project: "g/p", Token: "tok"})
	const src = "kiln/stable/promote-sandbox"
	// Someone else's commit appears on the branch during kiln's push.
	tip := git(t, a.dir, "rev-parse", "HEAD")
	other, _ := a.repo.CommitFile(ctx, tip, "images/other.txt", []byte("x"), "other")
	git(t, a.dir, "push", "-q", "origin", other+":refs/heads/parked")
	// The hook steps out of git's quarantine of the incoming objects,
	// which forbids ref updates, to move the branch as another push would.
	hook := "#!/bin/sh\nif [ ! -e race-done ]; then touch race-done; env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES git update-ref refs/heads/" + src + " refs/heads/parked; fi\n"
	os.WriteFile(filepath.Join(w.origin, "hooks/pre-receive"), []byte(hook), 0o755)
	res, err := Propose(ctx, a.release("sandbox", "x86_64", 1), a.opts(), f, src, "main")
	if err != nil || res.Attempts != 2 || !res.Created {
		t.Fatalf("%+v %v", res, err)
	}
	if got := git(t, w.origin, "rev-parse", src); got != res.Commit {
		t.Errorf("branch %s, want kiln's %s", got, res.Commit)
	}
}

// The forge refusing the token: the branch is pushed, the error says what
// the forge said.
func TestProposeUnauthorized(t *testing.T) {
	w := newWorld(t)
	a := w.clone("a")
	gl := forgetest.NewGitLab(t, "g/p", "right")
	f, _ := forge.New(forge.Options{Type: forge.GitLab, APIURL: gl.URL(), Project: "g/p", Token: "wrong"})
	_, err := Propose(t.Context(), a.release("sandbox", "x86_64", 1), a.opts(), f, "kiln/latest/r", "main")
	var ae *forge.APIError
	if !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("%v", err)
	}
}
