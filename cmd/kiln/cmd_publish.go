package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/gates"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/report"
)

type publishOptions struct {
	run     string
	channel string
	commitOptions
	gateOptions
}

func newPublishCommand(g *globalOptions) *cobra.Command {
	var o publishOptions
	cmd := &cobra.Command{
		Use:   "publish --run ID [--channel latest]",
		Short: "Publish the run's copies and write the channel manifest",
		Long: `publish applies the use case's publish policy to the run's copy in every target
region (launch permissions: public, accounts, organizations; deprecation time),
reads them back, writes the channel's manifest with an entry per region (only
for images seen available) and prints the manifest diff it made. Then it
removes the candidate. Images that have not passed their tests are refused.
Exports (the use case's exports) are listed with their location, size and
sha256.

Before anything is changed the channel's gates are checked, as for every
writer of a channel: interval (the channel's min_interval since it last
changed) and newer (the run is not older than the run the channel holds for
the use case). A failed gate refuses the publish (exit 1) unless overridden
with --override-gate NAME --reason TEXT, which is recorded in the journal and
the commit message. Publishing a run the channel holds already changes
nothing and exits 0.`,
		Example: `  kiln publish --run kiln-20261121T093012Z-7f3a9c
  kiln publish --run "$(cat run-id)" --channel latest --commit --push
  kiln publish --run "$(cat run-id)" --override-gate interval --reason "security fix"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runPublish(ctx, g, p, o) })
		},
	}
	cmd.Flags().StringVar(&o.run, "run", "", "asset id of the run (required)")
	cmd.Flags().StringVar(&o.channel, "channel", "latest", "channel whose manifest to write")
	o.commitOptions.addFlags(cmd)
	o.gateOptions.addFlags(cmd)
	completeRuns(g, cmd)
	completeChannels(g, cmd)
	return cmd
}

func runPublish(ctx context.Context, g *globalOptions, p *project, o publishOptions) error {
	if _, err := p.cfg.ManifestPath(o.channel); err != nil {
		return usageError(fmt.Errorf("--channel: %w", err))
	}
	ov, err := o.parse()
	if err != nil {
		return err
	}
	r, unlock, err := p.findRun(ctx, o.run)
	if err != nil {
		return err
	}
	defer unlock()
	keys, err := runKeys(p, r)
	if err != nil {
		return err
	}
	if err := o.check(ctx, g, p.cfg, o.channel, keys, publishSubject(r, o.channel)); err != nil {
		return err
	}
	gs, _, err := p.pl.ChannelGates(ctx, r, o.channel)
	if err != nil {
		return err
	}
	if err := enforce(ctx, g, p, ov, gs, o.channel, "publish of run "+r.ID); err != nil {
		return err
	}
	ctx, release, err := holdChannel(ctx, g, p, r, o.channel)
	if err != nil {
		return fmt.Errorf("publish of run %s: %w; nothing was changed", r.ID, err)
	}
	defer release()
	rep, err := p.pl.Publish(ctx, r, o.channel)
	p.progress.Close()
	if err != nil {
		return err
	}
	commit, err := o.record(ctx, g, p.cfg, o.channel, keys, publishSubject(r, o.channel), gates.Trailers(gs)...)
	if err != nil {
		return err
	}
	if g.json() {
		return g.write(report.Publish{Schema: report.SchemaPublish, PublishReport: rep, Commit: commit})
	}
	printPublish(g, rep)
	return nil
}

// runKeys are the manifest keys a run writes: its use case's entry for its
// architecture.
func runKeys(p *project, r pipeline.Run) ([]string, error) {
	u, err := p.cfg.UseCase(r.UseCase)
	if err != nil {
		return nil, err
	}
	return []string{u.ManifestKey(r.Arch)}, nil
}

// publishSubject is the subject of the commit of a manifest that run r
// was published to.
func publishSubject(r pipeline.Run, channel string) string {
	return fmt.Sprintf("%s: %s %s %s (kiln run %s)", channel, r.UseCase, r.Arch, r.Version, r.ID)
}

func printPublish(g *globalOptions, rep pipeline.PublishReport) {
	printRegions(g, rep.Regions)
	if len(rep.Exports) > 0 {
		fmt.Fprintln(g.streams.out)
		t := output.NewTable(g.streams.out, "EXPORT", "LOCATION", "SIZE", "SHA256")
		for _, e := range rep.Exports {
			size := ""
			if e.Size > 0 {
				size = output.Bytes(e.Size)
			}
			t.Row(e.Format, e.Location, size, e.SHA256)
		}
		t.Flush()
	}
	fmt.Fprintf(g.streams.out, "\n%s (channel %s):\n", rep.Manifest, rep.Channel)
	if len(rep.Changes) == 0 {
		fmt.Fprintln(g.streams.out, "  no change")
		return
	}
	manifest.FormatDiff(g.streams.out, rep.Changes)
}
