package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

type runsOptions struct{ run string }

func newRunsCommand(g *globalOptions) *cobra.Command {
	var o runsOptions
	cmd := &cobra.Command{
		Use:   "runs [--run ID]",
		Short: "List runs and their steps from the local journal",
		Long: `runs lists the runs recorded in this machine's journal (newest first) with their
use case, phase and state; with --run it lists that run's steps, each with its
region, state, the resource it made and any error. The journal is local: on a
fresh machine use "kiln assets" to find a run's resources by their tags.`,
		Example: `  kiln runs
  kiln runs --run kiln-20261121T093012Z-7f3a9c
  kiln runs -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRuns(cmd, g, o)
		},
	}
	cmd.Flags().StringVar(&o.run, "run", "", "show the steps of this run")
	completeRuns(g, cmd)
	return cmd
}

// journalPath is where a project's journal lives.
func journalPath(cfg *config.Config) string {
	return filepath.Join(cfg.StateDir(), "journal.db")
}

func runRuns(cmd *cobra.Command, g *globalOptions, o runsOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	j, err := journal.Open(journalPath(cfg))
	if err != nil {
		return err
	}
	defer j.Close()
	ctx := cmd.Context()

	if o.run != "" {
		if _, err := journal.ParseAssetID(o.run); err != nil {
			return usageError(fmt.Errorf("--run: %w", err))
		}
		run, steps, err := j.Run(ctx, o.run)
		if err != nil {
			return err
		}
		if g.json() {
			return g.write(report.Runs{Schema: report.SchemaRuns, Runs: []journal.Run{run}, Steps: steps})
		}
		fmt.Fprintf(g.streams.out, "run %s: %s %s, version %s, %s (phase %s), started %s on %s\n\n",
			run.ID, run.UseCase, run.Arch, run.Version, run.State, run.Phase, run.Created.Format(time.RFC3339), run.Host)
		t := output.NewTable(g.streams.out, "PHASE", "STEP", "REGION", "STATE", "TOOK", "RESOURCE", "ERROR")
		for _, s := range steps {
			took := ""
			if !s.Ended.IsZero() {
				took = config.Duration(s.Ended.Sub(s.Started).Round(time.Millisecond)).String()
			}
			t.Row(s.Phase, s.Name, s.Region, string(s.State), took, s.Resource, s.Error)
		}
		return t.Flush()
	}

	runs, err := j.Runs(ctx)
	if err != nil {
		return err
	}
	if g.json() {
		return g.write(report.Runs{Schema: report.SchemaRuns, Runs: runs})
	}
	if len(runs) == 0 {
		fmt.Fprintf(g.streams.out, "no runs in this machine's journal (%s); kiln assets finds runs made elsewhere by their tags\n", journalPath(cfg))
		return nil
	}
	t := output.NewTable(g.streams.out, "RUN", "USE CASE", "ARCH", "VERSION", "PHASE", "STATE", "STARTED", "UPDATED")
	for _, r := range runs {
		t.Row(r.ID, r.UseCase, r.Arch, r.Version, r.Phase, string(r.State), r.Created.Format(time.RFC3339), r.Updated.Format(time.RFC3339))
	}
	return t.Flush()
}
