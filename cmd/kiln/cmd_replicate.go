package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/report"
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
		Example: `  kiln replicate --run kiln-20261121T093012Z-7f3a9c
  kiln replicate --run "$(cat run-id)" --region local-b --region local-c`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runReplicate(ctx, g, p, o) })
		},
	}
	cmd.Flags().StringVar(&o.run, "run", "", "asset id of the run (required)")
	cmd.Flags().StringArrayVar(&o.regions, "region", nil, "only this target region (repeatable)")
	g.addVarFlags(cmd)
	completeRuns(g, cmd)
	completeRegions(g, cmd)
	return cmd
}

func runReplicate(ctx context.Context, g *globalOptions, p *project, o replicateOptions) error {
	r, unlock, err := p.findRun(ctx, o.run)
	if err != nil {
		return err
	}
	defer unlock()
	rep, err := p.pl.Replicate(ctx, r, o.regions)
	p.progress.Close()
	if errors.Is(err, cloud.ErrNotFound) {
		// A rerun after publish (a CI job retried): nothing is left to do.
		if done, perr := p.pl.Published(ctx, r); perr == nil && done {
			rep, err = publishedCopies(ctx, p, r, o.regions)
			if err == nil {
				fmt.Fprintf(g.streams.err, "run %s is published already: every target region holds its copy; nothing to do\n", r.ID)
			}
		}
	}
	if rep.Regions != nil {
		if g.json() {
			if werr := g.write(report.Replicate{Schema: report.SchemaReplicate, ReplicateReport: rep}); werr != nil {
				return werr
			}
		} else {
			printRegions(g, rep.Regions)
		}
	}
	return err
}

// publishedCopies reports a published run's copies as a replication that
// found them all in place.
func publishedCopies(ctx context.Context, p *project, r pipeline.Run, only []string) (pipeline.ReplicateReport, error) {
	rep := pipeline.ReplicateReport{Run: r, Regions: []pipeline.RegionResult{}}
	u, err := p.cfg.UseCase(r.UseCase)
	if err != nil {
		return rep, err
	}
	for _, region := range p.cfg.TargetRegions(u) {
		// --region names a region; a target may be ACCOUNT/REGION.
		if len(only) > 0 && !slices.Contains(only, region) && !slices.Contains(only, config.RegionOf(region)) {
			continue
		}
		copies, err := p.pl.Copies(ctx, r, region)
		if err != nil {
			return rep, err
		}
		res := pipeline.RegionResult{Region: region, State: "existing"}
		if len(copies) > 0 {
			res.ImageID, res.Name = copies[0].ID, copies[0].Name
		}
		rep.Regions = append(rep.Regions, res)
	}
	return rep, nil
}

func printRegions(g *globalOptions, regions []pipeline.RegionResult) {
	t := output.NewTable(g.streams.out, "REGION", "IMAGE", "NAME", "STATE", "TOOK", "ERROR")
	for _, r := range regions {
		t.Row(r.Region, r.ImageID, r.Name, r.State, r.Duration.String(), r.Error)
	}
	t.Flush()
}
