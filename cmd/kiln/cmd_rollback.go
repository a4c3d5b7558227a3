package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
)

type rollbackOptions struct {
	channel string
	to      string
	apply   bool
	commitOptions
	documentOptions
}

func newRollbackCommand(g *globalOptions) *cobra.Command {
	var o rollbackOptions
	cmd := &cobra.Command{
		Use:   "rollback --channel C --to REF [--apply]",
		Short: "Restore a channel's manifest from a git ref and reconcile the cloud to it",
		Long: `rollback reads the channel's manifest at git ref REF (a tag or commit), checks
that every image it names still exists and is available, and shows the diff.
With --apply it sets each image's launch permissions and deprecation time to
match, then writes the manifest. It refuses, naming them, when images are gone.
Exit 0 on success, 2 on error or refusal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runRollback(ctx, g, p, o) })
		},
	}
	cmd.Flags().StringVar(&o.channel, "channel", "", "channel to roll back (required)")
	cmd.Flags().StringVar(&o.to, "to", "", "git ref (tag or commit) holding the manifest to restore (required)")
	cmd.Flags().BoolVar(&o.apply, "apply", false, "restore (without it, only check and show the diff)")
	o.addFlags(cmd)
	o.addDocumentFlags(cmd)
	cmd.MarkFlagRequired("channel")
	cmd.MarkFlagRequired("to")
	return cmd
}

type rollbackReport struct {
	Schema string `json:"schema"`
	pipeline.RollbackReport
	Commit string `json:"commit,omitempty"` // with --commit: the manifest's commit
	documentReport
}

func runRollback(ctx context.Context, g *globalOptions, p *project, o rollbackOptions) error {
	path, err := p.cfg.ManifestPath(o.channel)
	if err != nil {
		return usageError(fmt.Errorf("--channel: %w", err))
	}
	if err := o.check(ctx, path); err != nil {
		return err
	}
	doc, err := o.documenter(ctx, g, p.cfg, o.commit)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(p.cfg.Dir, path)
	if err != nil {
		return err
	}
	src := manifest.Source{Ref: o.to, Path: "./" + filepath.ToSlash(rel)}
	data, err := manifest.Read(ctx, p.cfg.Dir, src)
	if err != nil {
		return err
	}
	// The file at the ref may be in any format the channel reads.
	ls, err := channel.Layouts(p.cfg, o.channel)
	if err != nil {
		return err
	}
	target, tl, err := manifest.DecodeAny(o.to+":"+rel, data, ls...)
	if err != nil {
		return err
	}
	rep, err := p.pl.Rollback(ctx, o.channel, o.to, target, tl, o.apply)
	if err != nil {
		return err
	}
	var commit string
	var dr documentReport
	if rep.Applied {
		subject := fmt.Sprintf("%s: roll back to %s", o.channel, o.to)
		if commit, err = o.record(ctx, g, path, rep.Changes, subject); err != nil {
			return err
		}
		if doc != nil {
			about := fmt.Sprintf("kiln rolled channel **%s** back to its manifest at `%s`; %d images reconciled.", o.channel, o.to, rep.Reconciled)
			c, err := doc.change(o.channel, nil, subject, about)
			if err != nil {
				return err
			}
			if dr, err = doc.record(ctx, g, c, "kiln/"+o.channel+"/rollback-"+branchSafe(o.to)); err != nil {
				return err
			}
		}
	}
	if g.format == output.JSON {
		return output.WriteJSON(g.streams.out, rollbackReport{Schema: "kiln.rollback/v1", RollbackReport: rep, Commit: commit, documentReport: dr})
	}
	if len(rep.Changes) == 0 {
		fmt.Fprintf(g.streams.out, "channel %s already matches %s\n", o.channel, o.to)
	} else {
		manifest.FormatDiff(g.streams.out, rep.Changes)
	}
	if rep.Applied {
		fmt.Fprintf(g.streams.out, "\nrestored %s from %s; %d images reconciled\n", path, o.to, rep.Reconciled)
	} else if len(rep.Changes) > 0 {
		fmt.Fprintln(g.streams.err, "rerun with --apply to restore it")
	}
	return nil
}
