package main

import (
	"context"
	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
)

type replicateOptions struct {
	run     string
	regions []string
}

func newReplicateCommand(g *globalOptions) *cobra.Command {
	var o replicateOptions
	cmd := &cobra.Command{
		Use:   "replicate --run ID [--region R]...",
		Short: "Copy the tested candidate to every target region",
		Long: `replicate copies the run's tested candidate to each target region of its use
case (or only the regions given), in parallel. Regions that already hold the
copy are left alone, so rerunning after a failure retries only what failed.
Exit 0 when every region has its copy, 2 when some failed (each is reported).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runReplicate(ctx, g, p, o) })
		},
	}
	cmd.Flags().StringVar(&o.run, "run", "", "asset id of the run (required)")
	cmd.Flags().StringArrayVar(&o.regions, "region", nil, "only this target region (repeatable)")
	g.addVarFlags(cmd)
	return cmd
}

type replicateReport struct {
	Schema string `json:"schema"`
	pipeline.ReplicateReport
}

func runReplicate(ctx context.Context, g *globalOptions, p *project, o replicateOptions) error {
	r, unlock, err := p.findRun(ctx, o.run)
	if err != nil {
		return err
	}
	defer unlock()
	rep, err := p.pl.Replicate(ctx, r, o.regions)
	p.progress.Close()
	if rep.Regions != nil {
		if g.format == output.JSON {
			if werr := output.WriteJSON(g.streams.out, replicateReport{Schema: "kiln.replicate/v1", ReplicateReport: rep}); werr != nil {
				return werr
			}
		} else {
			printRegions(g, rep.Regions)
		}
	}
	return err
}

func printRegions(g *globalOptions, regions []pipeline.RegionResult) {
	t := output.NewTable(g.streams.out, "REGION", "IMAGE", "NAME", "STATE", "TOOK", "ERROR")
	for _, r := range regions {
		t.Row(r.Region, r.ImageID, r.Name, r.State, output.Elapsed(r.Duration), r.Error)
	}
	t.Flush()
}
