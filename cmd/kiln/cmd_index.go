package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/distribute"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

type indexOptions struct {
	channels []string
	apply    bool
}

func newIndexCommand(g *globalOptions) *cobra.Command {
	var o indexOptions
	cmd := &cobra.Command{
		Use:   "index [--channel C]... [--apply]",
		Short: "Publish the downloads of the channels' releases and their signed index",
		Long: `index makes the releases the channel manifests point at downloadable: it places
each release's exported files in the distribution tree (distribution.dir, or the
bucket on aws) under images/<use case>/<arch>/<version>/ with a SHA256SUMS,
reads each back, and then writes the signed simplestreams index
(streams/v1/index.json and one products file per channel). Versions beyond the
retention (distribution.keep, older_than, git_refs) leave the index; their
files go one publication later. publish and release do this for what they
publish; index is for releases made before, and after promote or rollback.

Without --apply it prints what it would do and changes nothing.
Exit 0 on success (and for a plan), 2 on error.`,
		Example: `  kiln index                      # what would be placed and indexed
  kiln index --apply
  kiln index --channel stable --apply -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runIndex(ctx, g, p, o) })
		},
	}
	cmd.Flags().StringSliceVar(&o.channels, "channel", nil, "index only these channels (default: all)")
	cmd.Flags().BoolVar(&o.apply, "apply", false, "write the tree (without it, only print the plan)")
	return cmd
}

func runIndex(ctx context.Context, g *globalOptions, p *project, o indexOptions) error {
	if p.downloads == nil {
		return usageError(fmt.Errorf("%s has no distribution section: nothing is published for download (see `kiln init`'s kiln.yaml)", p.cfg.Path))
	}
	channels := o.channels
	if len(channels) == 0 {
		channels = p.cfg.ChannelNames()
	}
	var rels []distribute.Release
	for _, ch := range channels {
		if !slices.Contains(p.cfg.ChannelNames(), ch) {
			return usageError(fmt.Errorf("--channel %q: not a channel of %s; known: %v", ch, p.cfg.Path, p.cfg.ChannelNames()))
		}
		m, err := channel.Load(p.cfg, ch)
		if err != nil {
			return err
		}
		r, err := distribute.FromManifest(ctx, p.backend, p.cfg, ch, m)
		if err != nil {
			return err
		}
		rels = append(rels, r...)
	}
	pub, err := p.downloads.publisher(ctx)
	if err != nil {
		return err
	}
	rep, err := pub.Publish(ctx, rels, o.apply)
	if err != nil {
		return err
	}
	if g.json() {
		if err := g.write(report.Index{Schema: report.SchemaIndex, Report: rep}); err != nil {
			return err
		}
	} else {
		printIndex(g, rep)
	}
	if !o.apply {
		g.note("nothing was changed; rerun with --apply")
	}
	return nil
}

func printIndex(g *globalOptions, rep *distribute.Report) {
	t := output.NewTable(g.streams.out, "CHANNEL", "PRODUCT", "SERIAL", "VERSION", "RUN", "ACTION")
	rows := func(refs []distribute.VersionRef, action string) {
		for _, r := range refs {
			a := action
			if r.Reason != "" {
				a += " (" + r.Reason + ")"
			}
			t.Row(r.Channel, r.Product, r.Serial, r.Version, r.AssetID, a)
		}
	}
	rows(rep.Added, "add")
	rows(rep.Kept, "keep")
	rows(rep.Retired, "retire")
	t.Flush()
	state := "unchanged"
	if rep.Changed {
		state = "changed"
	}
	verb := "would place"
	if rep.Applied {
		verb = "placed"
	}
	fmt.Fprintf(g.streams.out, "\n%s: index %s; %s %d files; %d files no index names any more\n", rep.Tree, state, verb, len(rep.Files), len(rep.Removed))
}
