package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
)

// references loads the manifests whose images are protected: every
// channel's, in the working tree and at each git tag matching pattern.
// With no pattern and allTags set, every tag of the project's repository
// protects its manifests (none when the project is not in git).
func references(ctx context.Context, cfg *config.Config, pattern string, allTags bool) (*channel.Refs, error) {
	if pattern == "" && allTags && manifest.CheckWorkTree(ctx, cfg.Dir) == nil {
		pattern = "*"
	}
	refs, err := channel.References(ctx, cfg, pattern)
	if err != nil {
		return nil, explainGit(err, cfg.Dir, "--git-refs "+pattern)
	}
	return refs, nil
}

// explainGit says in kiln's words what a failed git command means for
// what the person asked (what: the flag or argument that needed git) and
// what to do. Other errors are returned as they are.
func explainGit(err error, dir, what string) error {
	var ge *manifest.GitError
	if !errors.As(err, &ge) {
		return err
	}
	switch {
	case errors.Is(err, manifest.ErrGitMissing):
		return fmt.Errorf("%s: git is not installed, and kiln reads manifest history with it: install git (e.g. apt-get install git)", what)
	case errors.Is(err, manifest.ErrNotRepository):
		return fmt.Errorf("%s: the project directory %s is not in a git repository; kiln keeps the manifests' history in git (rollback, --git-refs, --commit): start one with git init, commit the manifests, and tag releases", what, dir)
	case errors.Is(err, manifest.ErrUnknownRevision):
		return fmt.Errorf("%s: the git repository at %s has no tag, branch or commit of that name (git tag --list shows the tags)", what, dir)
	}
	return fmt.Errorf("%s: git failed in %s: %s", what, dir, ge.Stderr)
}
