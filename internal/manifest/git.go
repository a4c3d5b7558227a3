package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Errors of git that callers explain in their own words. A *GitError
// matches the one that fits (errors.Is).
var (
	ErrGitMissing      = errors.New("git is not installed")
	ErrNotRepository   = errors.New("not in a git repository")
	ErrUnknownRevision = errors.New("no such tag, branch or commit")
)

// GitError is a git command that failed: what ran, and git's own message.
type GitError struct {
	Args   []string
	Stderr string // git's message, trimmed
	Err    error  // how the process failed
}

func (e *GitError) Error() string {
	what := "git " + strings.Join(e.Args, " ")
	if e.Stderr != "" {
		return what + ": " + e.Stderr
	}
	return what + ": " + e.Err.Error()
}

func (e *GitError) Unwrap() error { return e.Err }

// Is classifies the failure by git's message, which runGit keeps in
// English (LC_ALL=C).
func (e *GitError) Is(target error) bool {
	msg := strings.ToLower(e.Stderr)
	switch target {
	case ErrGitMissing:
		return errors.Is(e.Err, exec.ErrNotFound)
	case ErrNotRepository:
		return strings.Contains(msg, "not a git repository")
	case ErrUnknownRevision:
		for _, s := range []string{"not a valid object name", "unknown revision", "bad revision", "not a tree object", "invalid object name"} {
			if strings.Contains(msg, s) {
				return true
			}
		}
	}
	return false
}

// runGit runs git in repoDir and returns its standard output. A failure
// is a *GitError with the command and git's own message.
func runGit(ctx context.Context, repoDir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", repoDir}, args...)...)
	// C locale: messages stay English in logs. Literal pathspecs: a path
	// with '*' or '?' names one file. No prompts: kiln may run in CI.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "GIT_LITERAL_PATHSPECS=1", "GIT_TERMINAL_PROMPT=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("git %s: %w", strings.Join(args, " "), ctxErr)
		}
		return nil, &GitError{Args: args, Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}

// Tags returns the tags in repoDir matching the glob pattern ("" for all),
// oldest version first: v1.9.0 before v1.10.0, and a pre-release such as
// v2.0.0-rc1 before v2.0.0.
//
// A pattern starting with '-' is refused (git would take it for an
// option, such as --contains=HEAD or -d), and the pattern is passed after
// "--" all the same.
func Tags(ctx context.Context, repoDir, pattern string) ([]string, error) {
	if strings.HasPrefix(pattern, "-") {
		return nil, fmt.Errorf("tag pattern %q: must not start with '-' (git would read it as an option); give a glob such as 'v*'", pattern)
	}
	args := []string{"-c", "versionsort.suffix=-", "tag", "--list", "--sort=version:refname"}
	if pattern != "" {
		args = append(args, "--", pattern)
	}
	out, err := runGit(ctx, repoDir, args...)
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	var tags []string
	for line := range strings.Lines(string(out)) {
		if t := strings.TrimSpace(line); t != "" {
			tags = append(tags, t)
		}
	}
	return tags, nil
}

// AtRefs decodes the manifest at path as it was at each ref, in whichever
// of layouts fits it (none given: kiln's own format). A ref where the file
// did not exist yet is left out of the result; a ref that does not exist,
// or a manifest there that does not decode, is an error.
func AtRefs(ctx context.Context, repoDir, path string, refs []string, layouts ...*Layout) (map[string]Manifest, error) {
	out := make(map[string]Manifest, len(refs))
	for _, ref := range refs {
		s := Source{Ref: ref, Path: path}
		data, err := Read(ctx, repoDir, s)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		m, _, err := DecodeAny(s.String(), data, layouts...)
		if err != nil {
			return nil, err
		}
		out[ref] = m
	}
	return out, nil
}

// Revision is one commit that changed a manifest.
type Revision struct {
	Commit  string    // full hash
	Date    time.Time // committer date: when the change landed
	Subject string    // first line of the message
}

// History returns the commits that changed the file at path (relative to
// repoDir), newest first, at most limit of them (limit <= 0: all). A file
// never committed has no history and no error.
func History(ctx context.Context, repoDir, path string, limit int) ([]Revision, error) {
	gp, err := gitPath(repoDir, path)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", path, err)
	}
	// Fields separated by US, records by NUL: subjects cannot hold either.
	args := []string{"-c", "log.showSignature=false", "log", "-z", "--format=%H%x1f%cI%x1f%s"}
	if limit > 0 {
		args = append(args, "-n", strconv.Itoa(limit))
	}
	args = append(args, "--", gp)
	out, err := runGit(ctx, repoDir, args...)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", path, err)
	}
	var revs []Revision
	for rec := range strings.SplitSeq(string(out), "\x00") {
		rec = strings.TrimPrefix(rec, "\n")
		if rec == "" {
			continue
		}
		parts := strings.SplitN(rec, "\x1f", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("history of %s: unexpected git log record %q", path, rec)
		}
		date, err := time.Parse(time.RFC3339, parts[1])
		if err != nil {
			return nil, fmt.Errorf("history of %s: commit %s: %w", path, parts[0], err)
		}
		revs = append(revs, Revision{Commit: parts[0], Date: date, Subject: parts[2]})
	}
	return revs, nil
}

// Uncommitted reports whether the file at path (relative to repoDir) differs
// in the work tree or the index from HEAD.
func Uncommitted(ctx context.Context, repoDir, path string) (bool, error) {
	gp, err := gitPath(repoDir, path)
	if err != nil {
		return false, err
	}
	out, err := runGit(ctx, repoDir, "status", "--porcelain", "--", gp)
	if err != nil {
		return false, err
	}
	return len(bytes.TrimSpace(out)) > 0, nil
}

// CheckWorkTree returns an error unless dir is in a git work tree.
func CheckWorkTree(ctx context.Context, dir string) error {
	_, err := runGit(ctx, dir, "rev-parse", "--show-toplevel")
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrGitMissing):
		return fmt.Errorf("git is not installed; install it (e.g. apt-get install git): %w", ErrGitMissing)
	case errors.Is(err, ErrNotRepository):
		return fmt.Errorf("%s is not in a git work tree (start one with git init): %w", dir, ErrNotRepository)
	}
	return fmt.Errorf("%s is not in a git work tree: %w", dir, err)
}
