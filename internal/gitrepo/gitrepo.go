// Package gitrepo commits one file onto a branch of a git remote without
// touching the work tree, the index or the checked-out branch: it fetches
// the branch, writes the commit with git's plumbing through a temporary
// index, and pushes it, telling a branch that moved meanwhile (worth
// another try on its new tip) from other refusals.
//
// Everything runs the git binary, so the repository's own configuration
// applies: credentials, signing, hooks on the remote.
package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Repo is a git work tree.
type Repo struct {
	top string   // the top of the work tree: git runs there
	env []string // added to every git command's environment
}

// Open returns the work tree dir is in. env is added to the environment of
// every git command, e.g. GIT_CONFIG_* entries that authenticate a push.
func Open(ctx context.Context, dir string, env ...string) (*Repo, error) {
	r := &Repo{top: dir, env: env}
	top, err := r.output(ctx, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("%s is not in a git work tree: %w", dir, err)
	}
	r.top = top
	return r, nil
}

// Top is the top directory of the work tree.
func (r *Repo) Top() string { return r.top }

// run runs git in the repository with stdin (may be nil) and extra
// environment, and returns its standard output and error output. A
// failure reports the command and git's own message.
func (r *Repo) run(ctx context.Context, stdin []byte, env []string, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", r.top}, args...)...)
	// C locale: git's messages are parsed and logged in English. No
	// prompts: kiln runs in CI. Literal pathspecs: a path names one file.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "GIT_TERMINAL_PROMPT=0", "GIT_LITERAL_PATHSPECS=1")
	cmd.Env = append(cmd.Env, r.env...)
	cmd.Env = append(cmd.Env, env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		what := "git " + args[0]
		if ctxErr := ctx.Err(); ctxErr != nil {
			return out.Bytes(), errb.Bytes(), fmt.Errorf("%s: %w", what, ctxErr)
		}
		if msg := strings.TrimSpace(errb.String()); msg != "" {
			return out.Bytes(), errb.Bytes(), fmt.Errorf("%s: %s", what, redactURLs(lastLines(msg, 5)))
		}
		return out.Bytes(), errb.Bytes(), fmt.Errorf("%s: %w", what, err)
	}
	return out.Bytes(), errb.Bytes(), nil
}

func (r *Repo) output(ctx context.Context, args ...string) (string, error) {
	out, _, err := r.run(ctx, nil, nil, args...)
	return strings.TrimSpace(string(out)), err
}

// userinfo matches the credentials of a URL: a CI job's remote is
// https://gitlab-ci-token:TOKEN@host/..., and git names it in its errors.
var userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@'"]+@`)

// redactURLs hides the credentials of URLs in git's messages.
func redactURLs(s string) string { return userinfo.ReplaceAllString(s, "${1}REDACTED@") }

// lastLines keeps the end of a long message, where git says what failed.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Path returns where file (a path in the work tree, which need not exist
// yet) is in the repository's tree: relative to the top of the work tree,
// with slashes. A file of another work tree is an error.
func (r *Repo) Path(ctx context.Context, file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	// The nearest directory that exists asks git for its place.
	dir, rest := filepath.Dir(abs), []string{filepath.Base(abs)}
	for {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			break
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("%s: no directory of it exists", file)
		}
		rest = append([]string{filepath.Base(dir)}, rest...)
		dir = filepath.Dir(dir)
	}
	sub := &Repo{top: dir, env: r.env}
	prefix, err := sub.output(ctx, "rev-parse", "--show-prefix")
	if err != nil {
		return "", fmt.Errorf("%s is not in a git work tree: %w", file, err)
	}
	subTop, err := sub.output(ctx, "rev-parse", "--show-toplevel")
	if err != nil || subTop != r.top {
		return "", fmt.Errorf("%s is not in the work tree %s", file, r.top)
	}
	return prefix + strings.Join(rest, "/"), nil
}

// RemoteURL returns the URL of a named remote, as configured (it may hold
// credentials: show it only through forge.RedactURL).
func (r *Repo) RemoteURL(ctx context.Context, remote string) (string, error) {
	u, err := r.output(ctx, "remote", "get-url", "--", remote)
	if err != nil {
		return "", fmt.Errorf("remote %q: %w", remote, err)
	}
	return u, nil
}

// DefaultBranch asks the remote which branch its HEAD names.
func (r *Repo) DefaultBranch(ctx context.Context, remote string) (string, error) {
	out, err := r.output(ctx, "ls-remote", "--symref", "--", remote, "HEAD")
	if err != nil {
		return "", fmt.Errorf("the default branch of %s: %w", remote, err)
	}
	for line := range strings.Lines(out) {
		if ref, ok := strings.CutPrefix(line, "ref: refs/heads/"); ok {
			if b, _, ok := strings.Cut(ref, "\t"); ok {
				return b, nil
			}
		}
	}
	return "", fmt.Errorf("the default branch of %s: its HEAD names no branch", remote)
}

// Fetch fetches branch from remote into the remote-tracking ref and returns
// its commit; "" when the remote has no such branch.
func (r *Repo) Fetch(ctx context.Context, remote, branch string) (string, error) {
	tracking := "refs/remotes/" + remote + "/" + branch
	_, stderr, err := r.run(ctx, nil, nil, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", remote, "+refs/heads/"+branch+":"+tracking)
	if err != nil {
		if bytes.Contains(stderr, []byte("couldn't find remote ref")) {
			return "", nil
		}
		return "", fmt.Errorf("fetch %s from %s: %w", branch, remote, err)
	}
	sha, err := r.output(ctx, "rev-parse", "--verify", "--quiet", tracking+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("fetch %s from %s: %w", branch, remote, err)
	}
	return sha, nil
}

// ReadFile returns the file at path in commit's tree; ok is false when the
// tree has no such file.
func (r *Repo) ReadFile(ctx context.Context, commit, path string) (data []byte, ok bool, err error) {
	kind, err := r.output(ctx, "cat-file", "-t", commit+":"+path)
	if err != nil {
		// Tell a missing file from a missing commit.
		if _, cerr := r.output(ctx, "cat-file", "-e", commit+"^{commit}"); cerr != nil {
			return nil, false, fmt.Errorf("read %s at %s: %w", path, commit, err)
		}
		return nil, false, nil
	}
	if kind != "blob" {
		return nil, false, fmt.Errorf("read %s at %s: it is a %s, not a file", path, commit, kind)
	}
	out, _, err := r.run(ctx, nil, nil, "cat-file", "blob", commit+":"+path)
	if err != nil {
		return nil, false, fmt.Errorf("read %s at %s: %w", path, commit, err)
	}
	return out, true, nil
}

// Commit is a commit as Inspect reads it.
type Commit struct {
	Tree    string
	Parents []string
}

// Inspect returns a commit's tree and parents.
func (r *Repo) Inspect(ctx context.Context, commit string) (Commit, error) {
	out, err := r.output(ctx, "show", "-s", "--format=%T %P", commit+"^{commit}")
	if err != nil {
		return Commit{}, fmt.Errorf("inspect %s: %w", commit, err)
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return Commit{}, fmt.Errorf("inspect %s: no tree", commit)
	}
	return Commit{Tree: f[0], Parents: f[1:]}, nil
}

// CommitFile makes a commit whose tree is parent's with the file at path
// (relative to the top, slash-separated) holding data, and returns it. A
// parent of "" makes a root commit holding only the file. The work tree,
// the index and every branch stay as they are. Where git knows no identity
// to commit as, the commit is made as "kiln <kiln@localhost>".
func (r *Repo) CommitFile(ctx context.Context, parent, path string, data []byte, message string) (string, error) {
	fail := func(err error) (string, error) { return "", fmt.Errorf("commit %s: %w", path, err) }
	mode := "100644"
	if parent != "" {
		out, err := r.output(ctx, "ls-tree", "--full-tree", parent, "--", path)
		if err != nil {
			return fail(err)
		}
		if f := strings.Fields(out); len(f) >= 2 {
			switch f[0] {
			case "100644", "100755":
				mode = f[0]
			default:
				return fail(fmt.Errorf("it is a %s (mode %s) in %s, not a regular file", f[1], f[0], parent))
			}
		}
	}
	blob, _, err := r.run(ctx, data, nil, "hash-object", "-w", "--no-filters", "--stdin")
	if err != nil {
		return fail(err)
	}
	// A temporary index, so the user's index is never read or written.
	dir, err := os.MkdirTemp("", "kiln-index-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	index := []string{"GIT_INDEX_FILE=" + filepath.Join(dir, "index")}
	readTree := []string{"read-tree", "--empty"}
	if parent != "" {
		readTree = []string{"read-tree", parent}
	}
	if _, _, err := r.run(ctx, nil, index, readTree...); err != nil {
		return fail(err)
	}
	if _, _, err := r.run(ctx, nil, index, "update-index", "--add", "--cacheinfo", mode+","+strings.TrimSpace(string(blob))+","+path); err != nil {
		return fail(err)
	}
	tree, _, err := r.run(ctx, nil, index, "write-tree")
	if err != nil {
		return fail(err)
	}
	args := r.identity(ctx)
	args = append(args, "commit-tree", strings.TrimSpace(string(tree)))
	if parent != "" {
		args = append(args, "-p", parent)
	}
	args = append(args, "-F", "-")
	out, _, err := r.run(ctx, []byte(message), nil, args...)
	if err != nil {
		return fail(err)
	}
	return strings.TrimSpace(string(out)), nil
}

// identity returns the options that give git an identity when it has none.
func (r *Repo) identity(ctx context.Context) []string {
	for _, v := range []string{"GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"} {
		if _, err := r.output(ctx, "var", v); err != nil {
			return []string{"-c", "user.name=kiln", "-c", "user.email=kiln@localhost"}
		}
	}
	return nil
}

// PushOptions say how a push may change the remote branch.
type PushOptions struct {
	// Lease, when set, is what the remote branch must be for the push to
	// go through, which may then replace it with any commit: a commit, or
	// "" for "the branch must not exist". Without a lease the push must be
	// a fast-forward.
	Lease *string
}

// RejectedError is a push the remote refused.
type RejectedError struct {
	Branch string
	Reason string // git's, e.g. "fetch first", "stale info", "pre-receive hook declined"
	// Moved is true when the branch changed since it was fetched: another
	// try on its new tip may succeed.
	Moved bool
}

func (e *RejectedError) Error() string {
	if e.Moved {
		return fmt.Sprintf("push to %s refused: the branch moved (%s)", e.Branch, e.Reason)
	}
	return fmt.Sprintf("push to %s refused: %s", e.Branch, e.Reason)
}

// movedReasons are git's reasons for refusing a push that mean the branch
// is no longer what the pusher saw; the last two come from the remote when
// two pushes race for one branch.
var movedReasons = []string{"fetch first", "non-fast-forward", "stale info", "failed to update ref", "cannot lock ref", "incorrect old value"}

// Push makes branch on remote point at commit. It returns what the remote
// said on the way ("remote: ..." lines), and a *RejectedError when the
// remote refused.
func (r *Repo) Push(ctx context.Context, remote, commit, branch string, o PushOptions) ([]string, error) {
	dst := "refs/heads/" + branch
	args := []string{"push", "--porcelain"}
	if o.Lease != nil {
		args = append(args, "--force-with-lease="+dst+":"+*o.Lease)
	}
	args = append(args, "--", remote, commit+":"+dst)
	stdout, stderr, err := r.run(ctx, nil, nil, args...)
	var said []string
	for line := range strings.Lines(string(stderr)) {
		if m, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "remote: "); ok {
			said = append(said, strings.TrimSpace(m))
		}
	}
	// --porcelain: "<flag>\t<from>:<to>\t<summary> (<reason>)" per ref.
	for line := range strings.Lines(string(stdout)) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) < 3 || !strings.HasSuffix(f[1], ":"+dst) {
			continue
		}
		if f[0] != "!" {
			return said, nil // pushed, or already there ("=")
		}
		reason := f[2]
		if i := strings.Index(reason, "("); i >= 0 {
			reason = strings.TrimSuffix(reason[i+1:], ")")
		}
		e := &RejectedError{Branch: branch, Reason: reason}
		for _, m := range movedReasons {
			if strings.Contains(reason, m) {
				e.Moved = true
			}
		}
		return said, e
	}
	if err != nil {
		return said, fmt.Errorf("push to %s on %s: %w", branch, remote, err)
	}
	return said, errors.New("push to " + branch + ": git reported nothing about the branch")
}
