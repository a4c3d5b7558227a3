package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/manifest"
)

// commitOptions are the flags of the commands that write a channel
// manifest: keep the manifest's history in git as part of the command,
// instead of a separate CI step.
type commitOptions struct {
	commit, push bool
}

func (o *commitOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.commit, "commit", false, "commit the channel manifest to git when it changed (only that file)")
	cmd.Flags().BoolVar(&o.push, "push", false, "with --commit: push the commit to the branch's upstream")
}

// check refuses the flags before anything is done when they cannot work:
// --push without --commit, or a manifest outside a git work tree.
func (o commitOptions) check(ctx context.Context, manifestPath string) error {
	if o.push && !o.commit {
		return usageError(errors.New("--push goes with --commit"))
	}
	if !o.commit {
		return nil
	}
	// The manifest's directory may not exist before the first publish.
	dir := filepath.Dir(manifestPath)
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	if err := manifest.CheckWorkTree(ctx, dir); err != nil {
		return usageError(fmt.Errorf("--commit: the manifest %s: %w", manifestPath, err))
	}
	return nil
}

// record commits the manifest at path when asked and changes is not empty,
// with subject and the diff as message, and returns the commit's hash.
func (o commitOptions) record(ctx context.Context, g *globalOptions, path string, changes []manifest.Change, subject string) (string, error) {
	if !o.commit || len(changes) == 0 {
		return "", nil
	}
	var body bytes.Buffer
	manifest.FormatDiff(&body, changes)
	hash, err := manifest.Commit(ctx, path, subject+"\n\n"+body.String(), o.push)
	if hash != "" {
		fmt.Fprintf(g.streams.err, "committed %s as %s\n", path, hash)
	}
	return hash, err
}
