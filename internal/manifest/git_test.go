package manifest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testRepo is a real git repository with a release history:
//
//	v0.9.0          README only, no manifest yet
//	v1.0.0          manifests/stable.json = m1
//	v1.1.0-rc1      (same commit as v1.0.0)
//	v1.1.0          m2
//	(untagged)      README changed, manifest not
//	v2.0.0 v1.10.0  m3
//	bad-1           on branch "broken": a malformed manifest
type testRepo struct {
	dir        string
	m1, m2, m3 Manifest
	commits    map[string]string // tag -> commit hash
	dates      map[string]time.Time
}

const manifestPath = "manifests/stable.json"

// gitT runs git for test setup with a fixed identity and no user config.
func gitT(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("the git tests need the git command: %v", err)
	}
	cmd := exec.Command("git", append([]string{
		"-c", "user.name=Kiln Test", "-c", "user.email=kiln@example.com",
		"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main",
	}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	r := &testRepo{dir: t.TempDir(), commits: map[string]string{}, dates: map[string]time.Time{}}
	r.m1 = Manifest{"aws-linux-ephemeral": {"us-east-1": designEntry}}
	r.m2 = bigManifest()
	r.m3, _ = diffPair()
	delete(r.m3, "notebook-cluster")

	write := func(name string, data []byte) {
		p := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	day := 0
	commit := func(msg string, tags ...string) {
		day++
		date := time.Date(2026, 1, day, 12, 0, 0, 0, time.FixedZone("", 3600))
		env := []string{"GIT_AUTHOR_DATE=" + date.Format(time.RFC3339), "GIT_COMMITTER_DATE=" + date.Format(time.RFC3339)}
		gitT(t, r.dir, env, "add", "-A")
		gitT(t, r.dir, env, "commit", "-q", "-m", msg)
		hash := gitT(t, r.dir, nil, "rev-parse", "HEAD")
		for _, tag := range tags {
			gitT(t, r.dir, nil, "tag", tag)
			r.commits[tag] = hash
			r.dates[tag] = date
		}
	}
	gitT(t, r.dir, nil, "init", "-q")
	write("README", []byte("kiln test repo\n"))
	commit("Add README", "v0.9.0")
	write(manifestPath, r.m1.Encode())
	commit("Release 1.0.0", "v1.0.0", "v1.1.0-rc1")
	write(manifestPath, r.m2.Encode())
	commit("Release 1.1.0", "v1.1.0")
	write("README", []byte("kiln test repo, now with docs\n"))
	commit("Document the repo")
	write(manifestPath, r.m3.Encode())
	commit("Release 2.0.0", "v2.0.0", "v1.10.0")

	gitT(t, r.dir, nil, "checkout", "-q", "-b", "broken")
	write(manifestPath, []byte(`{"aws-linux-ephemeral": {"us-east-1": {"id": 5}}}`))
	commit("Break the manifest", "bad-1")
	gitT(t, r.dir, nil, "checkout", "-q", "main")
	return r
}

func TestParseSource(t *testing.T) {
	dir := t.TempDir()
	colon := filepath.Join(dir, "v1:odd.json")
	if err := os.WriteFile(colon, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		arg  string
		want Source
	}{
		{"v1.2.0:manifests/stable.json", Source{Ref: "v1.2.0", Path: "manifests/stable.json"}},
		{"HEAD~2:manifests/a:b.json", Source{Ref: "HEAD~2", Path: "manifests/a:b.json"}},
		{"manifests/stable.json", Source{Path: "manifests/stable.json"}},
		{colon, Source{Path: colon}}, // exists, so not REF:PATH
		{":manifests/stable.json", Source{Path: ":manifests/stable.json"}},
		{"v1:", Source{Path: "v1:"}},
		{"", Source{}},
	}
	for _, tt := range tests {
		got := ParseSource(tt.arg)
		if got != tt.want {
			t.Errorf("ParseSource(%q) = %+v; want %+v", tt.arg, got, tt.want)
		}
		if tt.arg != "" && got.String() != tt.arg {
			t.Errorf("ParseSource(%q).String() = %q", tt.arg, got.String())
		}
	}
}

func TestRead(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()

	tests := []struct {
		name    string
		repoDir string
		src     Source
		want    []byte
	}{
		{"tag", r.dir, Source{"v1.0.0", manifestPath}, r.m1.Encode()},
		{"parsed REF:PATH", r.dir, ParseSource("v1.1.0:" + manifestPath), r.m2.Encode()},
		{"older tag of a changed file", r.dir, Source{"v1.1.0", manifestPath}, r.m2.Encode()},
		{"branch", r.dir, Source{"main", manifestPath}, r.m3.Encode()},
		{"commit hash", r.dir, Source{r.commits["v1.1.0"], manifestPath}, r.m2.Encode()},
		{"relative ref", r.dir, Source{"main~2", manifestPath}, r.m2.Encode()},
		{"repo subdirectory", filepath.Join(r.dir, "manifests"), Source{"v1.0.0", "stable.json"}, r.m1.Encode()},
		{"absolute path", r.dir, Source{"v1.0.0", filepath.Join(r.dir, manifestPath)}, r.m1.Encode()},
		{"plain file", "/nonexistent", Source{Path: filepath.Join(r.dir, manifestPath)}, r.m3.Encode()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(ctx, tt.repoDir, tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("Read(%s) =\n%s\nwant:\n%s", tt.src, got, tt.want)
			}
		})
	}

	errTests := []struct {
		name     string
		repoDir  string
		src      Source
		want     string
		notExist bool
	}{
		// git's wording after "fatal: " varies between versions.
		{"unknown ref", r.dir, Source{"v9", manifestPath},
			"read v9:manifests/stable.json: git ls-tree -z -l v9 -- ./manifests/stable.json: fatal: *v9", false},
		{"file absent at ref", r.dir, Source{"v0.9.0", manifestPath},
			"read v0.9.0:manifests/stable.json: file does not exist", true},
		{"directory at ref", r.dir, Source{"v1.0.0", "manifests"},
			"read v1.0.0:manifests: is a directory, not a manifest file", false},
		{"option-like ref", r.dir, Source{"--output=/tmp/x", manifestPath},
			`read --output=/tmp/x:manifests/stable.json: git ref "--output=/tmp/x": must be a tag, branch or commit and must not start with '-'`, false},
		{"missing plain file", r.dir, Source{Path: filepath.Join(r.dir, "nope.json")},
			"load manifest: open " + filepath.Join(r.dir, "nope.json") + ": no such file or directory", true},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(ctx, tt.repoDir, tt.src)
			if err == nil || !matchStar(err.Error(), tt.want) {
				t.Fatalf("Read(%s) error:\n%v\nwant:\n%s", tt.src, err, tt.want)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist {
				t.Fatalf("errors.Is(err, fs.ErrNotExist) = %v; want %v", got, tt.notExist)
			}
		})
	}

	t.Run("not a repository", func(t *testing.T) {
		_, err := Read(ctx, t.TempDir(), Source{"v1.0.0", manifestPath})
		if err == nil || !strings.Contains(err.Error(), "fatal: not a git repository") {
			t.Fatalf("Read outside a repository: %v", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := Read(ctx, r.dir, Source{"v1.0.0", manifestPath})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Read with a canceled context: %v", err)
		}
	})
}

func TestTags(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()
	tests := []struct {
		pattern string
		want    []string
	}{
		{"v1.*", []string{"v1.0.0", "v1.1.0-rc1", "v1.1.0", "v1.10.0"}},
		{"v*", []string{"v0.9.0", "v1.0.0", "v1.1.0-rc1", "v1.1.0", "v1.10.0", "v2.0.0"}},
		{"bad-*", []string{"bad-1"}},
		{"v3.*", nil},
	}
	for _, tt := range tests {
		got, err := Tags(ctx, r.dir, tt.pattern)
		if err != nil {
			t.Fatalf("Tags(%q): %v", tt.pattern, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Tags(%q) = %q; want %q", tt.pattern, got, tt.want)
		}
	}
	all, err := Tags(ctx, r.dir, "")
	if err != nil {
		t.Fatal(err)
	}
	// Patterns git would take for options are refused, not run.
	for _, p := range []string{"--contains=HEAD", "-d", "--delete", "-l"} {
		if got, err := Tags(ctx, r.dir, p); err == nil || !strings.Contains(err.Error(), "must not start with '-'") {
			t.Errorf("Tags(%q) = %q, %v; want a refusal", p, got, err)
		}
	}
	if after, _ := Tags(ctx, r.dir, ""); len(after) != len(all) {
		t.Errorf("a refused pattern changed the tags: %q", after)
	}
	if len(all) != 7 || !slices.Contains(all, "bad-1") || !slices.Contains(all, "v2.0.0") {
		t.Errorf("Tags(\"\") = %q; want all 7 tags", all)
	}

	if _, err := Tags(ctx, t.TempDir(), "v*"); err == nil || !strings.HasPrefix(err.Error(), "list tags: git ") ||
		!strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("Tags outside a repository: %v", err)
	}
}

func TestAtRefs(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()

	got, err := AtRefs(ctx, r.dir, manifestPath, []string{"v0.9.0", "v1.0.0", "v1.1.0", "v2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Manifest{"v1.0.0": r.m1, "v1.1.0": r.m2, "v2.0.0": r.m3}
	if len(got) != len(want) {
		t.Fatalf("AtRefs returned refs %v; want v1.0.0, v1.1.0, v2.0.0 (v0.9.0 has no manifest)", slices.Sorted(maps.Keys(got)))
	}
	for ref, m := range want {
		if !got[ref].Equal(m) {
			t.Errorf("manifest at %s differs: %v", ref, Diff(m, got[ref]))
		}
	}

	if got, err := AtRefs(ctx, r.dir, manifestPath, nil); err != nil || len(got) != 0 {
		t.Errorf("AtRefs with no refs = %v, %v", got, err)
	}

	_, err = AtRefs(ctx, r.dir, manifestPath, []string{"v1.0.0", "bad-1"})
	wantErr := "bad-1:manifests/stable.json:1:46: aws-linux-ephemeral.us-east-1.id: must be a string, found number 5\n" +
		`bad-1:manifests/stable.json:1:39: aws-linux-ephemeral.us-east-1: missing fields "architecture", "deprecation_time", "name", "public"`
	if err == nil || err.Error() != wantErr {
		t.Errorf("AtRefs with a malformed manifest:\n%v\nwant:\n%s", err, wantErr)
	}

	if _, err := AtRefs(ctx, r.dir, manifestPath, []string{"v1.0.0", "v9"}); err == nil || !strings.Contains(err.Error(), "Not a valid object name v9") {
		t.Errorf("AtRefs with an unknown ref: %v", err)
	}
}

func TestHistory(t *testing.T) {
	r := newTestRepo(t)
	ctx := context.Background()

	revs, err := History(ctx, r.dir, manifestPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Revision{
		{Commit: r.commits["v2.0.0"], Date: r.dates["v2.0.0"], Subject: "Release 2.0.0"},
		{Commit: r.commits["v1.1.0"], Date: r.dates["v1.1.0"], Subject: "Release 1.1.0"},
		{Commit: r.commits["v1.0.0"], Date: r.dates["v1.0.0"], Subject: "Release 1.0.0"},
	}
	if len(revs) != len(want) {
		t.Fatalf("History = %+v; want %+v", revs, want)
	}
	for i := range want {
		if revs[i].Commit != want[i].Commit || revs[i].Subject != want[i].Subject || !revs[i].Date.Equal(want[i].Date) {
			t.Errorf("revision %d = %+v; want %+v", i, revs[i], want[i])
		}
	}

	limited, err := History(ctx, r.dir, manifestPath, 2)
	if err != nil || len(limited) != 2 || limited[1].Commit != r.commits["v1.1.0"] {
		t.Errorf("History limit 2 = %+v, %v", limited, err)
	}

	// From a subdirectory, with the path relative to it.
	sub, err := History(ctx, filepath.Join(r.dir, "manifests"), "stable.json", 0)
	if err != nil || len(sub) != 3 {
		t.Errorf("History from a subdirectory = %+v, %v", sub, err)
	}

	none, err := History(ctx, r.dir, "manifests/latest.json", 0)
	if err != nil || len(none) != 0 {
		t.Errorf("History of a never-committed file = %+v, %v", none, err)
	}

	if _, err := History(ctx, t.TempDir(), manifestPath, 0); err == nil || !strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("History outside a repository: %v", err)
	}
}

// matchStar reports whether s equals pattern, where a "*" in pattern
// stands for any text on one line.
func matchStar(s, pattern string) bool {
	before, after, ok := strings.Cut(pattern, "*")
	if !ok {
		return s == pattern
	}
	if !strings.HasPrefix(s, before) || !strings.HasSuffix(s, after) || len(s) < len(before)+len(after) {
		return false
	}
	return !strings.Contains(s[len(before):len(s)-len(after)], "\n")
}

func TestCommit(t *testing.T) {
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	ctx := t.Context()
	r := newTestRepo(t)
	gitT(t, r.dir, nil, "config", "user.name", "Release Bot")
	gitT(t, r.dir, nil, "config", "user.email", "bot@example.com")
	gitT(t, r.dir, nil, "config", "commit.gpgsign", "false")
	path := filepath.Join(r.dir, manifestPath)
	before := gitT(t, r.dir, nil, "rev-parse", "HEAD")
	msg := func(s string) Message { return Message{Subject: s} }

	// Unchanged: no commit.
	if res, err := CommitEntries(ctx, path, nil, msg("nothing"), false); err != nil || res.Hash != "" {
		t.Fatalf("Commit of an unchanged file = %+v, %v", res, err)
	}
	// Another file changed and staged, one changed and not: both stay out
	// of the commit.
	os.WriteFile(filepath.Join(r.dir, "README"), []byte("staged\n"), 0o644)
	gitT(t, r.dir, nil, "add", "README")
	os.WriteFile(filepath.Join(r.dir, "NOTES"), []byte("untracked\n"), 0o644)
	if err := os.WriteFile(path, r.m1.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := CommitEntries(ctx, path, nil, Message{Subject: "stable: roll back to v1.0.0", Trailers: []string{"Kiln-Override-Gate: interval: hotfix"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	hash := res.Hash
	if head := gitT(t, r.dir, nil, "rev-parse", "HEAD"); hash == "" || hash != head || head == before {
		t.Fatalf("Commit = %q; HEAD %s, was %s", hash, head, before)
	}
	if files := gitT(t, r.dir, nil, "show", "--name-only", "--format=", hash); files != manifestPath {
		t.Errorf("commit changed %q, want only %s", files, manifestPath)
	}
	got := gitT(t, r.dir, nil, "log", "-1", "--format=%an <%ae>%n%B", hash)
	if !strings.HasPrefix(got, "Release Bot <bot@example.com>\nstable: roll back to v1.0.0\n\n- ") ||
		!strings.HasSuffix(got, "\n\nKiln-Override-Gate: interval: hotfix") {
		t.Errorf("commit:\n%s", got)
	}
	if st := gitT(t, r.dir, nil, "status", "--porcelain"); st != "M  README\n?? NOTES" {
		t.Errorf("status after Commit:\n%s", st)
	}
	if data := gitT(t, r.dir, nil, "show", "HEAD:"+manifestPath); data+"\n" != string(r.m1.Encode()) {
		t.Errorf("committed manifest:\n%s", data)
	}

	// No identity configured (as on a bare CI runner): commit as kiln.
	gitT(t, r.dir, nil, "config", "--unset", "user.name")
	gitT(t, r.dir, nil, "config", "--unset", "user.email")
	gitT(t, r.dir, nil, "config", "user.useConfigOnly", "true")
	os.WriteFile(path, r.m2.Encode(), 0o644)
	if res, err = CommitEntries(ctx, path, nil, msg("latest: new"), false); err != nil {
		t.Fatal(err)
	}
	if got := gitT(t, r.dir, nil, "log", "-1", "--format=%an <%ae>", res.Hash); got != "kiln <kiln@localhost>" {
		t.Errorf("author %q", got)
	}

	// Push goes to the upstream; without one the commit stays and the
	// error says so.
	os.WriteFile(path, r.m3.Encode(), 0o644)
	res, err = CommitEntries(ctx, path, nil, msg("latest: newer"), true)
	if err == nil || res.Hash == "" || !strings.Contains(err.Error(), "committed as "+res.Hash+", but not pushed") {
		t.Fatalf("Commit with push and no upstream = %+v, %v", res, err)
	}
	remote := filepath.Join(t.TempDir(), "remote.git")
	gitT(t, r.dir, nil, "init", "-q", "--bare", remote)
	gitT(t, r.dir, nil, "remote", "add", "origin", remote)
	gitT(t, r.dir, nil, "push", "-q", "-u", "origin", "main")
	os.WriteFile(path, r.m1.Encode(), 0o644)
	if res, err = CommitEntries(ctx, path, nil, msg("latest: pushed"), true); err != nil || !res.Pushed {
		t.Fatal(res, err)
	}
	if got := gitT(t, remote, nil, "rev-parse", "main"); got != res.Hash {
		t.Errorf("remote main at %s, want %s", got, res.Hash)
	}

	// Not in a repository.
	outside := filepath.Join(t.TempDir(), "latest.json")
	os.WriteFile(outside, r.m1.Encode(), 0o644)
	if _, err := CommitEntries(ctx, outside, nil, msg("x"), false); err == nil || !strings.Contains(err.Error(), "not in a git work tree") {
		t.Errorf("Commit outside a repository = %v", err)
	}
}
