package distribute

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/config"
)

// ChecklistError is a release checklist item that does not hold. It is
// bad input: the release is refused before anything is built.
type ChecklistError struct {
	File string // the file at fault, when there is one
	Msg  string
}

func (e *ChecklistError) Error() string {
	if e.File != "" {
		return "release checklist: " + e.File + ": " + e.Msg
	}
	return "release checklist: " + e.Msg
}

// DefaultVersion is the version of a run that started at t and was given
// none (see pipeline.NewRun).
func DefaultVersion(t time.Time) string { return t.UTC().Format("20060102.150405") }

// CheckRelease checks the release checklist of a release of useCase with
// version (given with --version, else the use case's, else ""), when the
// project keeps one (distribution.changelog or release_tag) and the
// release has a version of its own — daily builds, versioned by their
// start time, have none to check:
//
//   - the version given and the use case's version in kiln.yaml agree;
//   - the changelog file of the version exists and names the version, a
//     date (YYYY-MM-DD) and a code name;
//   - the release tag of the version points at HEAD.
func CheckRelease(ctx context.Context, cfg *config.Config, useCase, version string) error {
	ds := cfg.Distribution
	if ds == nil || (ds.Changelog == "" && ds.ReleaseTag == "") {
		return nil
	}
	u, err := cfg.UseCase(useCase)
	if err != nil {
		return err
	}
	switch {
	case version == "" && u.Version == "":
		return nil
	case version == "":
		version = u.Version
	case u.Version != "" && version != u.Version:
		return &ChecklistError{File: cfg.Path, Msg: fmt.Sprintf("use_cases.%s.version is %q, the release's version is %q: they must agree (change kiln.yaml or --version)", useCase, u.Version, version)}
	}
	if ds.Changelog != "" {
		if err := checkChangelog(cfg.Resolve(strings.ReplaceAll(ds.Changelog, "{version}", version)), version); err != nil {
			return err
		}
	}
	if ds.ReleaseTag != "" {
		if err := checkTag(ctx, cfg.Dir, strings.ReplaceAll(ds.ReleaseTag, "{version}", version)); err != nil {
			return err
		}
	}
	return nil
}

// ChangelogFields are the lines a changelog must have, e.g.
//
//	Version: 1.4.0
//	Date: 2026-11-21
//	Code name: Bluebird
type ChangelogFields struct {
	Version, Date, CodeName string
}

// ParseChangelog reads the Version, Date and Code name lines of a
// changelog (anywhere in it, each once; markdown emphasis and list marks
// around them are allowed).
func ParseChangelog(data []byte) (ChangelogFields, error) {
	var f ChangelogFields
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.Trim(sc.Text(), " \t-*_>#")
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.Trim(key, " *_"))
		value = strings.Trim(value, " *_`")
		var dst *string
		switch key {
		case "version":
			dst = &f.Version
		case "date":
			dst = &f.Date
		case "code name", "codename":
			key, dst = "code name", &f.CodeName
		default:
			continue
		}
		if seen[key] {
			return f, fmt.Errorf("%q appears twice", key)
		}
		seen[key] = true
		*dst = value
	}
	return f, sc.Err()
}

func checkChangelog(path, version string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &ChecklistError{File: path, Msg: fmt.Sprintf("missing: the changelog of version %s must exist before it is released, with lines \"Version: %s\", \"Date: YYYY-MM-DD\" and \"Code name: NAME\"", version, version)}
	}
	if err != nil {
		return &ChecklistError{File: path, Msg: err.Error()}
	}
	f, err := ParseChangelog(data)
	if err != nil {
		return &ChecklistError{File: path, Msg: err.Error()}
	}
	var problems []string
	switch f.Version {
	case version:
	case "":
		problems = append(problems, fmt.Sprintf("no \"Version: %s\" line", version))
	default:
		problems = append(problems, fmt.Sprintf("Version is %q, the release's version is %q", f.Version, version))
	}
	if f.Date == "" {
		problems = append(problems, "no \"Date: YYYY-MM-DD\" line")
	} else if _, err := time.Parse(time.DateOnly, f.Date); err != nil {
		problems = append(problems, fmt.Sprintf("Date %q is not a date in the form YYYY-MM-DD", f.Date))
	}
	if f.CodeName == "" {
		problems = append(problems, "no \"Code name: NAME\" line")
	}
	if len(problems) > 0 {
		return &ChecklistError{File: path, Msg: strings.Join(problems, "; ")}
	}
	return nil
}

// checkTag checks that tag exists in the git work tree at dir and points
// at HEAD.
func checkTag(ctx context.Context, dir, tag string) error {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
		}
		return strings.TrimSpace(out.String()), nil
	}
	head, err := git("rev-parse", "--verify", "HEAD^{commit}")
	if err != nil {
		return &ChecklistError{File: dir, Msg: fmt.Sprintf("release_tag %s: the project is not a git work tree with a commit: %v", tag, err)}
	}
	at, err := git("rev-parse", "--verify", "-q", "refs/tags/"+tag+"^{commit}")
	if err != nil || at == "" {
		return &ChecklistError{File: filepath.Join(dir, ".git"), Msg: fmt.Sprintf("tag %s does not exist: tag the commit you release (git tag -a %s)", tag, tag)}
	}
	if at != head {
		return &ChecklistError{File: filepath.Join(dir, ".git"), Msg: fmt.Sprintf("tag %s points at %.12s, HEAD is %.12s: release from the tagged commit", tag, at, head)}
	}
	return nil
}
