package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/report"
)

type testOptions struct {
	run  string
	boot bool
}

// The file is not named cmd_test.go: that would be a Go test file.
func newTestCommand(g *globalOptions) *cobra.Command {
	var o testOptions
	cmd := &cobra.Command{
		Use:   "test --run ID",
		Short: "Boot the run's candidate and run the recipe's tests in it",
		Long: `test boots the candidate of run ID without modifying it, runs the recipe's
tests inside the guest and records the result on the candidate. Exit 0 when the
tests pass, 1 when they fail, 2 when they could not run. A candidate that
already passed is not booted again unless --force-boot is given.`,
		Example: `  kiln test --run kiln-20261121T093012Z-7f3a9c
  kiln test --run "$(cat run-id)" --force-boot`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("force") {
				return argError(cmd, "--force is now --force-boot (boot the candidate again although it passed)")
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runTest(ctx, g, p, o) })
		},
	}
	cmd.Flags().StringVar(&o.run, "run", "", "asset id of the run (required)")
	cmd.Flags().BoolVar(&o.boot, "force-boot", false, "boot and test the candidate again although it already passed")
	cmd.Flags().Bool("force", false, "renamed --force-boot")
	cmd.Flags().MarkHidden("force")
	completeRuns(g, cmd)
	return cmd
}

func runTest(ctx context.Context, g *globalOptions, p *project, o testOptions) error {
	r, unlock, err := p.findRun(ctx, o.run)
	if err != nil {
		return err
	}
	defer unlock()
	rep, err := p.pl.Test(ctx, r, o.boot)
	p.progress.Close()
	if errors.Is(err, cloud.ErrNotFound) {
		// A rerun after publish: the candidate went, its copies passed.
		if done, perr := p.pl.Published(ctx, r); perr == nil && done {
			fmt.Fprintf(g.streams.err, "run %s is published already: its candidate was tested, copied and removed; nothing to do\n", r.ID)
			rep = pipeline.TestReport{Run: r, Passed: true, Earlier: true}
			err = nil
		}
	}
	var failed *pipeline.TestFailedError
	if err != nil && !errors.As(err, &failed) {
		return err
	}
	if g.json() {
		if err := g.write(report.Test{Schema: report.SchemaTest, TestReport: rep}); err != nil {
			return err
		}
	} else {
		printTest(g, rep)
	}
	if failed != nil {
		return findings("%v", failed)
	}
	return nil
}

func printTest(g *globalOptions, rep pipeline.TestReport) {
	switch {
	case rep.Earlier && rep.ImageID == "":
		fmt.Fprintf(g.streams.out, "PASS  run %s (published already)\n", rep.Run.ID)
	case rep.Earlier:
		fmt.Fprintf(g.streams.out, "PASS  %s in %s (passed earlier; --force-boot boots it again)\n", rep.ImageID, rep.Region)
	case rep.Passed:
		fmt.Fprintf(g.streams.out, "PASS  %s in %s (%s, console log %s)\n", rep.ImageID, rep.Region, rep.Duration.String(), rep.LogPath)
	default:
		fmt.Fprintf(g.streams.out, "FAIL  %s in %s: %s (console log %s)\n", rep.ImageID, rep.Region, rep.Reason, rep.LogPath)
	}
}
