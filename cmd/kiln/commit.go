package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
)

// commitOptions are the flags of the commands that write a channel
// manifest: keep the manifest's history in git as part of the command,
// instead of a separate CI step.
type commitOptions struct {
	commit, push bool
}

func (o *commitOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.commit, "commit", false, "commit kiln's change of the channel manifest to git (only its entries)")
	cmd.Flags().BoolVar(&o.push, "push", false, "with --commit: push the commit to the branch's upstream")
}

// check refuses the flags before anything is done when they cannot work:
// --push without --commit, or a commit of the channel's manifest that
// cannot succeed (manifest.CheckCommit: no work tree, a merge in progress,
// an ignored path, staged changes, a rejecting hook, failing signing, no
// upstream to push to), or one that would record someone else's edit of
// the entries under keys (nil: the whole manifest). An edit kiln itself
// made (a change whose commit failed) is not someone else's. A detached
// HEAD is warned about.
func (o commitOptions) check(ctx context.Context, g *globalOptions, cfg *config.Config, ch string, keys []string, subject string) error {
	if o.push && !o.commit {
		return usageError(errors.New("--push goes with --commit"))
	}
	if !o.commit {
		return nil
	}
	path, err := cfg.ManifestPath(ch)
	if err != nil {
		return usageError(fmt.Errorf("--channel: %w", err))
	}
	ls, err := channel.Layouts(cfg, ch)
	if err != nil {
		return err
	}
	st, err := manifest.CheckCommit(ctx, path, subject, o.push, ls...)
	if err != nil {
		return usageError(fmt.Errorf("--commit: the manifest %s: %w; nothing was done", path, err))
	}
	// Compared as the files hold them: a format without a field (a name,
	// a deprecation time) cannot differ in it, and a change of format
	// alone is no edit.
	work := manifest.Pick(st.Work, keys)
	theirs := manifest.DiffLayouts(manifest.Pick(st.Head, keys), st.HeadLayout, work, st.WorkLayout)
	mine := manifest.DiffLayouts(manifest.Pick(channel.LastWritten(cfg, ch), keys), manifest.DefaultLayout, work, st.WorkLayout)
	if len(theirs) > 0 && len(mine) > 0 {
		var diff bytes.Buffer
		manifest.FormatDiff(&diff, theirs)
		return usageError(fmt.Errorf("--commit: %s has uncommitted edits to the entries kiln writes, not made by kiln; "+
			"commit or discard them first (kiln would overwrite them, or commit them as its own); nothing was done:\n%s", path, diff.String()))
	}
	if st.Detached {
		fmt.Fprintf(g.streams.err, "warning: HEAD is detached in the repository of %s: kiln's commit will be on no branch\n", path)
	}
	return nil
}

// record commits, when asked, kiln's entries under keys (nil: the whole
// manifest) of the channel's manifest as the work tree has them, on top of
// HEAD's version, with subject, the diff and trailers (overridden gates)
// as message, and pushes when asked. It also finishes the job of an earlier run whose commit or push
// failed. It returns the new commit's hash, "" when there was nothing to
// commit.
func (o commitOptions) record(ctx context.Context, g *globalOptions, cfg *config.Config, ch string, keys []string, subject string, trailers ...string) (string, error) {
	if !o.commit {
		return "", nil
	}
	path, err := cfg.ManifestPath(ch)
	if err != nil {
		return "", err
	}
	ls, err := channel.Layouts(cfg, ch)
	if err != nil {
		return "", err
	}
	res, err := manifest.CommitEntries(ctx, path, keys, manifest.Message{Subject: subject, Trailers: trailers}, o.push, ls...)
	if res.Hash != "" {
		fmt.Fprintf(g.streams.err, "committed %s as %s\n", path, res.Hash)
		if res.Detached {
			fmt.Fprintf(g.streams.err, "warning: HEAD is detached: commit %s is on no branch\n", res.Hash)
		}
	}
	if res.Pushed {
		fmt.Fprintf(g.streams.err, "pushed %s\n", path)
	}
	return res.Hash, err
}
