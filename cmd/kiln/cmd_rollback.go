package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/report"
)

type rollbackOptions struct {
	channel string
	ref     string
	apply   bool
	commitOptions
}

func newRollbackCommand(g *globalOptions) *cobra.Command {
	var o rollbackOptions
	cmd := &cobra.Command{
		Use:   "rollback --channel C --ref REF [--apply]",
		Short: "Restore a channel's manifest from a git ref and reconcile the cloud to it",
		Long: `rollback reads the channel's manifest at git ref REF (a tag or commit), checks
that every image it names still exists and is available, and shows the diff.
With --apply it sets each image's launch permissions and deprecation time to
match, then writes the manifest. It refuses, naming them, when images are gone.
Exit 0 when restored, or for a plan (without --apply); 2 on error or refusal.`,
		Example: `  kiln rollback --channel stable --ref v1.2.0            # the plan: diff and checks
  kiln rollback --channel stable --ref v1.2.0 --apply --commit`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("to") {
				if cmd.Flags().Changed("ref") {
					return argError(cmd, "--to is the old name of --ref; give only --ref")
				}
				g.note("kiln rollback: --to is deprecated and will be removed; use --ref %s", o.ref)
			}
			if err := required(cmd, "channel"); err != nil {
				return err
			}
			if o.ref == "" {
				return argError(cmd, "missing --ref: the git tag or commit whose manifest to restore")
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runRollback(ctx, g, p, o) })
		},
	}
	cmd.Flags().StringVar(&o.channel, "channel", "", "channel to roll back (required)")
	cmd.Flags().StringVar(&o.ref, "ref", "", "git ref (tag or commit) holding the manifest to restore (required)")
	cmd.Flags().StringVar(&o.ref, "to", "", "deprecated: the old name of --ref")
	cmd.Flags().MarkHidden("to")
	cmd.Flags().BoolVar(&o.apply, "apply", false, "restore (without it, only check and show the diff)")
	o.addFlags(cmd)
	completeChannels(g, cmd)
	cmd.RegisterFlagCompletionFunc("ref", completeTags(g))
	return cmd
}

func runRollback(ctx context.Context, g *globalOptions, p *project, o rollbackOptions) error {
	path, err := p.cfg.ManifestPath(o.channel)
	if err != nil {
		return usageError(fmt.Errorf("--channel: %w", err))
	}
	subject := fmt.Sprintf("%s: roll back to %s", o.channel, o.ref)
	if err := o.check(ctx, g, p.cfg, o.channel, nil, subject); err != nil {
		return err
	}
	rel, err := filepath.Rel(p.cfg.Dir, path)
	if err != nil {
		return err
	}
	src := manifest.Source{Ref: o.ref, Path: "./" + filepath.ToSlash(rel)}
	data, err := manifest.Read(ctx, p.cfg.Dir, src)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--ref %s: channel %s's manifest %s did not exist at %s; nothing to restore", o.ref, o.channel, rel, o.ref)
	}
	if err != nil {
		return explainGit(err, p.cfg.Dir, "--ref "+o.ref)
	}
	// The file at the ref may be in any format the channel reads.
	ls, err := channel.Layouts(p.cfg, o.channel)
	if err != nil {
		return err
	}
	target, tl, err := manifest.DecodeAny(o.ref+":"+rel, data, ls...)
	if err != nil {
		return err
	}
	rep, err := p.pl.Rollback(ctx, o.channel, o.ref, target, tl, o.apply)
	if err != nil {
		return err
	}
	var commit string
	if rep.Applied {
		if commit, err = o.record(ctx, g, p.cfg, o.channel, nil, subject); err != nil {
			return err
		}
	}
	if g.json() {
		if err := g.write(report.Rollback{Schema: report.SchemaRollback, RollbackReport: rep, Commit: commit}); err != nil {
			return err
		}
		if !rep.Applied && len(rep.Changes) > 0 {
			g.planOnly("restore it")
		}
		return nil
	}
	if len(rep.Changes) == 0 {
		fmt.Fprintf(g.streams.out, "channel %s already matches %s\n", o.channel, o.ref)
	} else {
		manifest.FormatDiff(g.streams.out, rep.Changes)
	}
	if rep.Applied {
		fmt.Fprintf(g.streams.out, "\nrestored %s from %s; %d images reconciled\n", path, o.ref, rep.Reconciled)
	} else if len(rep.Changes) > 0 {
		g.planOnly("restore it")
	}
	return nil
}
