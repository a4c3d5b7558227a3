package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
)

type publishOptions struct {
	run     string
	channel string
	commitOptions
	documentOptions
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
removes the candidate. Images that have not passed their tests are refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runPublish(ctx, g, p, o) })
		},
	}
	cmd.Flags().StringVar(&o.run, "run", "", "asset id of the run (required)")
	cmd.Flags().StringVar(&o.channel, "channel", "latest", "channel whose manifest to write")
	o.addFlags(cmd)
	o.addDocumentFlags(cmd)
	return cmd
}

type publishReport struct {
	Schema string `json:"schema"`
	pipeline.PublishReport
	Commit string `json:"commit,omitempty"` // with --commit: the manifest's commit
	documentReport
}

func runPublish(ctx context.Context, g *globalOptions, p *project, o publishOptions) error {
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
	r, unlock, err := p.findRun(ctx, o.run)
	if err != nil {
		return err
	}
	defer unlock()
	rep, err := p.pl.Publish(ctx, r, o.channel)
	p.progress.Close()
	if err != nil {
		return err
	}
	commit, err := o.record(ctx, g, rep.Manifest, rep.Changes, publishSubject(r, o.channel))
	if err != nil {
		return err
	}
	var dr documentReport
	if doc != nil {
		if dr, err = doc.recordRun(ctx, g, p, r, o.channel, regionsOf(rep.Regions)); err != nil {
			return err
		}
	}
	if g.format == output.JSON {
		return output.WriteJSON(g.streams.out, publishReport{Schema: "kiln.publish/v1", PublishReport: rep, Commit: commit, documentReport: dr})
	}
	printPublish(g, rep)
	return nil
}

// publishSubject is the subject of the commit of a manifest that run r
// was published to.
func publishSubject(r pipeline.Run, channel string) string {
	return fmt.Sprintf("%s: %s %s %s (kiln run %s)", channel, r.UseCase, r.Arch, r.Version, r.ID)
}

func printPublish(g *globalOptions, rep pipeline.PublishReport) {
	printRegions(g, rep.Regions)
	fmt.Fprintf(g.streams.out, "\n%s (channel %s):\n", rep.Manifest, rep.Channel)
	if len(rep.Changes) == 0 {
		fmt.Fprintln(g.streams.out, "  no change")
		return
	}
	manifest.FormatDiff(g.streams.out, rep.Changes)
}
