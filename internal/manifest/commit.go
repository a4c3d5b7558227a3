package manifest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// repo is where a manifest lives in git: the work tree's top, the git
// directory and the manifest's path from the top, with slashes.
type repo struct {
	top, gitDir, rel string
}

// locate finds the repository of the manifest at path (which need not
// exist yet).
func locate(ctx context.Context, path string) (repo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return repo{}, err
	}
	dir := filepath.Dir(abs)
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	if err := CheckWorkTree(ctx, dir); err != nil {
		return repo{}, err
	}
	out, err := runGit(ctx, dir, "rev-parse", "--show-toplevel", "--absolute-git-dir")
	if err != nil {
		return repo{}, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		return repo{}, fmt.Errorf("git rev-parse: unexpected answer %q", out)
	}
	r := repo{top: lines[0], gitDir: lines[1]}
	// The top is a real path; so must the manifest's be to compare them.
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return repo{}, err
	}
	rest, _ := filepath.Rel(dir, abs)
	rel, err := filepath.Rel(r.top, filepath.Join(realDir, rest))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return repo{}, fmt.Errorf("%s is not inside the work tree %s", path, r.top)
	}
	r.rel = filepath.ToSlash(rel)
	return r, nil
}

// gitRun runs git in the repository's top with extra environment and
// standard input, and returns its output and exit status (-1 when git
// could not run). A non-zero status is not an error here: the caller
// decides what it means.
func (r repo) git(ctx context.Context, env []string, stdin []byte, args ...string) (stdout, stderr []byte, status int, err error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", r.top}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "GIT_LITERAL_PATHSPECS=1", "GIT_TERMINAL_PROMPT=0")
	cmd.Env = append(cmd.Env, env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return o.Bytes(), e.Bytes(), 0, nil
	case ctx.Err() != nil:
		return nil, nil, -1, fmt.Errorf("git %s: %w", args[0], ctx.Err())
	case errors.As(err, &ee):
		return o.Bytes(), e.Bytes(), ee.ExitCode(), nil
	}
	return nil, nil, -1, fmt.Errorf("git %s: %w", args[0], err)
}

// must runs git and turns a non-zero status into an error with git's own
// message, naming the command but not its arguments or input (a commit
// message, with its diff, would bury the cause).
func (r repo) must(ctx context.Context, env []string, stdin []byte, args ...string) ([]byte, error) {
	out, errOut, status, err := r.git(ctx, env, stdin, args...)
	if err != nil {
		return nil, err
	}
	if status != 0 {
		msg := strings.TrimSpace(string(errOut))
		if msg == "" {
			msg = strings.TrimSpace(string(out))
		}
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", status)
		}
		return nil, fmt.Errorf("git %s: %s", args[0], msg)
	}
	return out, nil
}

// version is the manifest as one side of a commit has it (HEAD, or the
// work tree), with the layout it is in.
type version struct {
	m Manifest
	l *Layout
}

// writeLayout is the layout kiln writes the manifest in: the first of
// layouts, or kiln's own format.
func writeLayout(layouts []*Layout) *Layout {
	if len(layouts) == 0 {
		return DefaultLayout
	}
	return layouts[0]
}

// head reads the manifest as HEAD has it, in whichever of layouts it is
// (an empty one is in the layout kiln writes): its content, blob and mode,
// and whether HEAD exists at all (not on a new branch) and holds the file.
func (r repo) head(ctx context.Context, layouts []*Layout) (v version, blob, mode string, born, tracked bool, err error) {
	empty := version{Manifest{}, writeLayout(layouts)}
	if _, _, status, err := r.git(ctx, nil, nil, "rev-parse", "-q", "--verify", "HEAD^{commit}"); err != nil {
		return version{}, "", "", false, false, err
	} else if status != 0 {
		return empty, "", "100644", false, false, nil
	}
	out, err := r.must(ctx, nil, nil, "ls-tree", "-z", "HEAD", "--", r.rel)
	if err != nil {
		return version{}, "", "", true, false, err
	}
	rec, _, _ := bytes.Cut(out, []byte{0})
	meta, _, _ := bytes.Cut(rec, []byte{'\t'})
	fields := strings.Fields(string(meta))
	if len(fields) != 3 || fields[1] != "blob" {
		return empty, "", "100644", true, false, nil
	}
	data, err := r.must(ctx, nil, nil, "cat-file", "blob", fields[2])
	if err != nil {
		return version{}, "", "", true, true, err
	}
	m, l, err := DecodeAny("HEAD:"+r.rel, data, layouts...)
	if err != nil {
		return version{}, "", "", true, true, err
	}
	return version{m, l}, fields[2], fields[0], true, true, nil
}

// work reads the manifest in the work tree, in whichever of layouts it is;
// a missing file is an empty manifest in the layout kiln writes.
func work(path string, layouts []*Layout) (version, error) {
	data, err := readLimited(path)
	if errors.Is(err, fs.ErrNotExist) {
		return version{Manifest{}, writeLayout(layouts)}, nil
	} else if err != nil {
		return version{}, err
	}
	m, l, err := DecodeAny(path, data, layouts...)
	if err != nil {
		return version{}, err
	}
	return version{m, l}, nil
}

// Pick returns the entries of m under keys (nil: all of m), as a new
// manifest.
func Pick(m Manifest, keys []string) Manifest {
	out := Manifest{}
	for _, e := range m.Entries() {
		if keys == nil || contains(keys, e.UseCase) {
			out.Set(e.UseCase, e.Region, e.Entry)
		}
	}
	return out
}

func contains(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// with returns base with the entries under keys replaced by those of
// from (nil keys: from entirely).
func with(base, from Manifest, keys []string) Manifest {
	if keys == nil {
		return Pick(from, nil)
	}
	out := Manifest{}
	for _, e := range base.Entries() {
		if !contains(keys, e.UseCase) {
			out.Set(e.UseCase, e.Region, e.Entry)
		}
	}
	for _, e := range Pick(from, keys).Entries() {
		out.Set(e.UseCase, e.Region, e.Entry)
	}
	return out
}

// GitState is what a commit of a manifest would start from.
type GitState struct {
	Head       Manifest // the manifest at HEAD (empty when HEAD lacks it)
	HeadLayout *Layout  // the format HEAD's version is in
	Work       Manifest // the manifest in the work tree (empty when absent)
	WorkLayout *Layout  // the format the work tree's version is in
	Detached   bool     // HEAD is on no branch
}

// CheckCommit refuses, before kiln changes anything, a commit of the
// manifest at path that cannot succeed: not in a git work tree; a merge,
// rebase, cherry-pick or revert in progress, or unmerged paths; the path
// ignored by git; changes to it already staged; a manifest in the work
// tree that does not decode (a merge conflict's markers); a pre-commit or
// commit-msg hook that rejects a commit (run with message as the message);
// commit signing that fails; and with push, a detached HEAD or a branch
// with no upstream. It returns what HEAD and the work tree hold. layouts
// are the formats the manifest may be in, the one kiln writes first (none:
// kiln's own format).
func CheckCommit(ctx context.Context, path, message string, push bool, layouts ...*Layout) (GitState, error) {
	r, err := locate(ctx, path)
	if err != nil {
		return GitState{}, err
	}
	for name, what := range map[string]string{
		"MERGE_HEAD": "a merge", "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert",
		"rebase-merge": "a rebase", "rebase-apply": "a rebase or git am",
	} {
		if _, err := os.Stat(filepath.Join(r.gitDir, name)); err == nil {
			return GitState{}, fmt.Errorf("%s is in progress in %s: finish or abort it first", what, r.top)
		}
	}
	if out, err := r.must(ctx, nil, nil, "ls-files", "--unmerged"); err != nil {
		return GitState{}, err
	} else if len(bytes.TrimSpace(out)) > 0 {
		return GitState{}, fmt.Errorf("%s has unmerged paths: resolve the conflicts first", r.top)
	}
	// check-ignore takes paths, and refuses the literal pathspec magic.
	_, errOut, status, err := r.git(ctx, []string{"GIT_LITERAL_PATHSPECS=0"}, nil, "check-ignore", "-q", "--", r.rel)
	switch {
	case err != nil:
		return GitState{}, err
	case status == 0:
		return GitState{}, fmt.Errorf("%s is ignored by git (.gitignore or info/exclude): a commit could not record it", r.rel)
	case status != 1:
		return GitState{}, fmt.Errorf("git check-ignore: %s", strings.TrimSpace(string(errOut)))
	}
	st := GitState{}
	head, _, _, born, _, err := r.head(ctx, layouts)
	if err != nil {
		return GitState{}, fmt.Errorf("read %s at HEAD: %w", r.rel, err)
	}
	st.Head, st.HeadLayout = head.m, head.l
	if born {
		_, _, status, err = r.git(ctx, nil, nil, "diff", "--cached", "--quiet", "--", r.rel)
		if err != nil {
			return GitState{}, err
		}
		if status != 0 {
			return GitState{}, fmt.Errorf("%s has staged changes: commit or unstage them first (git restore --staged %s)", r.rel, r.rel)
		}
	}
	w, err := work(path, layouts)
	if err != nil {
		return GitState{}, err
	}
	st.Work, st.WorkLayout = w.m, w.l
	_, _, status, err = r.git(ctx, nil, nil, "symbolic-ref", "-q", "HEAD")
	if err != nil {
		return GitState{}, err
	}
	st.Detached = status != 0
	if push {
		if st.Detached {
			return GitState{}, fmt.Errorf("HEAD is detached in %s: there is no branch to push", r.top)
		}
		if _, err := r.must(ctx, nil, nil, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"); err != nil {
			return GitState{}, fmt.Errorf("--push: the branch has no upstream to push to (git push -u REMOTE BRANCH once): %w", err)
		}
	}
	if err := r.checkHooks(ctx, message); err != nil {
		return GitState{}, err
	}
	if err := r.checkSigning(ctx); err != nil {
		return GitState{}, err
	}
	return st, nil
}

// checkHooks runs the pre-commit and commit-msg hooks as a commit would,
// against an index equal to HEAD (nothing staged), with message.
func (r repo) checkHooks(ctx context.Context, message string) error {
	idx, done, err := r.tempIndex(ctx)
	if err != nil {
		return err
	}
	defer done()
	env := []string{"GIT_INDEX_FILE=" + idx}
	if _, err := r.must(ctx, env, nil, "hook", "run", "--ignore-missing", "pre-commit"); err != nil {
		return fmt.Errorf("the pre-commit hook rejects a commit: %w", err)
	}
	msg, err := os.CreateTemp(r.gitDir, "kiln-msg-")
	if err != nil {
		return err
	}
	defer os.Remove(msg.Name())
	msg.WriteString(message + "\n")
	msg.Close()
	if _, err := r.must(ctx, env, nil, "hook", "run", "--ignore-missing", "commit-msg", "--", msg.Name()); err != nil {
		return fmt.Errorf("the commit-msg hook rejects kiln's message: %w", err)
	}
	return nil
}

// checkSigning signs a throwaway commit object when commits are to be
// signed (commit.gpgSign), so that a missing key or agent is found now.
func (r repo) checkSigning(ctx context.Context) error {
	out, _, status, err := r.git(ctx, nil, nil, "config", "--type=bool", "commit.gpgSign")
	if err != nil || status != 0 || strings.TrimSpace(string(out)) != "true" {
		return err
	}
	tree, err := r.must(ctx, nil, nil, "hash-object", "-t", "tree", "/dev/null")
	if err != nil {
		return err
	}
	// The object is unreachable and goes with the next gc.
	if _, err := r.must(ctx, r.identity(ctx), nil, "commit-tree", "-S", strings.TrimSpace(string(tree)), "-m", "kiln: signing check"); err != nil {
		return fmt.Errorf("commit.gpgSign is set but signing fails: %w", err)
	}
	return nil
}

// identity is the environment that gives git an identity where it knows
// none (a bare CI runner): commits are then made as kiln.
func (r repo) identity(ctx context.Context) []string {
	for _, v := range []string{"GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"} {
		if _, _, status, err := r.git(ctx, nil, nil, "var", v); err != nil || status != 0 {
			return []string{"GIT_AUTHOR_NAME=kiln", "GIT_AUTHOR_EMAIL=kiln@localhost",
				"GIT_COMMITTER_NAME=kiln", "GIT_COMMITTER_EMAIL=kiln@localhost"}
		}
	}
	return nil
}

// tempIndex makes an index file holding HEAD's tree (empty on a new
// branch) and returns its path and a function that removes it.
func (r repo) tempIndex(ctx context.Context) (string, func(), error) {
	var b [8]byte
	rand.Read(b[:])
	idx := filepath.Join(r.gitDir, "kiln-index-"+hex.EncodeToString(b[:]))
	done := func() { os.Remove(idx); os.Remove(idx + ".lock") }
	env := []string{"GIT_INDEX_FILE=" + idx}
	args := []string{"read-tree", "HEAD"}
	if _, _, status, err := r.git(ctx, nil, nil, "rev-parse", "-q", "--verify", "HEAD^{commit}"); err != nil {
		return "", done, err
	} else if status != 0 {
		args = []string{"read-tree", "--empty"}
	}
	if _, err := r.must(ctx, env, nil, args...); err != nil {
		done()
		return "", done, err
	}
	return idx, done, nil
}

// CommitResult is what CommitEntries did.
type CommitResult struct {
	Hash    string   // the new commit; "" when HEAD had the entries already
	Changes []Change // what the commit changed in the manifest
	Pushed  bool
	// Detached is set when the commit was made on a detached HEAD (on no
	// branch).
	Detached bool
}

// Message is a commit message: the subject line, and trailers after the
// diff (such as the record of an overridden gate).
type Message struct {
	Subject  string
	Trailers []string
}

// CommitEntries commits, of the manifest at path, the entries under keys
// (nil: the whole file) as the work tree has them, on top of HEAD's
// version of the file: other changes in the work tree — to other files or
// to other entries of this one — stay uncommitted where they are, and so
// does everything staged. The commit runs the repository's hooks and signs
// as configured; its message is the subject, a blank line, the diff and
// the trailers. With push the branch is then pushed to its upstream, also
// when there was nothing to commit but the branch is ahead of it (a retry
// after a failed push).
//
// layouts are the formats the manifest may be in, the one kiln writes
// first (none: kiln's own format). HEAD's and the work tree's versions are
// read in whichever fits; the commit holds the file in the first, and the
// changes are named as that format names them. A change of format alone
// is no change.
func CommitEntries(ctx context.Context, path string, keys []string, msg Message, push bool, layouts ...*Layout) (CommitResult, error) {
	var res CommitResult
	r, err := locate(ctx, path)
	if err != nil {
		return res, fmt.Errorf("commit %s: %w", path, err)
	}
	head, headBlob, mode, _, tracked, err := r.head(ctx, layouts)
	if err != nil {
		return res, fmt.Errorf("commit %s: read HEAD's version: %w", r.rel, err)
	}
	w, err := work(path, layouts)
	if err != nil {
		return res, fmt.Errorf("commit %s: %w", r.rel, err)
	}
	write := writeLayout(layouts)
	next := with(head.m, w.m, keys)
	res.Changes = DiffLayouts(head.m, head.l, next, write)
	if _, _, status, err := r.git(ctx, nil, nil, "symbolic-ref", "-q", "HEAD"); err != nil {
		return res, err
	} else {
		res.Detached = status != 0
	}
	if len(res.Changes) > 0 {
		data, err := write.Encode(next)
		if err != nil {
			return res, fmt.Errorf("commit %s: %w", r.rel, err)
		}
		if err := r.commit(ctx, data, headBlob, mode, tracked, msg, res.Changes); err != nil {
			return res, fmt.Errorf("commit %s: %w", r.rel, err)
		}
		out, err := r.must(ctx, nil, nil, "rev-parse", "HEAD")
		if err != nil {
			return res, err
		}
		res.Hash = strings.TrimSpace(string(out))
	}
	if !push {
		return res, nil
	}
	notPushed := func(err error) error {
		if res.Hash != "" {
			return fmt.Errorf("%s committed as %s, but not pushed (rerun the command to push): %w", r.rel, res.Hash, err)
		}
		return fmt.Errorf("push %s: %w", r.rel, err)
	}
	ahead, err := r.must(ctx, nil, nil, "rev-list", "--count", "@{upstream}..HEAD")
	if err != nil {
		return res, notPushed(err)
	}
	if strings.TrimSpace(string(ahead)) == "0" {
		return res, nil
	}
	if _, err := r.must(ctx, nil, nil, "push", "--quiet"); err != nil {
		return res, notPushed(err)
	}
	res.Pushed = true
	return res, nil
}

// commit makes the commit of the manifest's next content through a
// temporary index (HEAD's tree with the manifest's new blob), so that
// nothing else of the work tree or the real index goes in; then it brings
// the real index's entry of the manifest up to the new HEAD if it held
// HEAD's old version.
func (r repo) commit(ctx context.Context, next []byte, headBlob, mode string, tracked bool, m Message, changes []Change) error {
	blobOut, err := r.must(ctx, nil, next, "hash-object", "-w", "--stdin")
	if err != nil {
		return err
	}
	blob := strings.TrimSpace(string(blobOut))
	idx, done, err := r.tempIndex(ctx)
	if err != nil {
		return err
	}
	defer done()
	env := []string{"GIT_INDEX_FILE=" + idx}
	info := mode + "," + blob + "," + r.rel
	if _, err := r.must(ctx, env, nil, "update-index", "--add", "--cacheinfo", info); err != nil {
		return err
	}
	var body bytes.Buffer
	body.WriteString(m.Subject + "\n\n")
	FormatDiff(&body, changes)
	if len(m.Trailers) > 0 {
		body.WriteString("\n" + strings.Join(m.Trailers, "\n") + "\n")
	}
	if _, err := r.must(ctx, append(env, r.identity(ctx)...), body.Bytes(), "commit", "--quiet", "--cleanup=verbatim", "-F", "-"); err != nil {
		return err
	}
	// The real index: its entry of the manifest still holds HEAD's old
	// version, which status would show as a staged revert of kiln's
	// change. Move it along unless someone staged something else.
	out, err := r.must(ctx, nil, nil, "ls-files", "--stage", "-z", "--", r.rel)
	if err != nil {
		return err
	}
	fields := strings.Fields(string(bytes.TrimRight(out, "\x00")))
	switch {
	case !tracked && len(fields) == 0, tracked && len(fields) >= 2 && fields[1] == headBlob:
		if _, err := r.must(ctx, nil, nil, "update-index", "--add", "--cacheinfo", info); err != nil {
			return fmt.Errorf("committed, but the index could not follow: %w", err)
		}
	}
	return nil
}
