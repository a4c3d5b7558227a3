package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
)

type releaseOptions struct {
	arch    string
	version string
	channel string
	resume  string
	commitOptions
}

func newReleaseCommand(g *globalOptions) *cobra.Command {
	var o releaseOptions
	cmd := &cobra.Command{
		Use:   "release USE_CASE | --resume ID",
		Short: "Run every phase: build, test, replicate, publish",
		Long: `release runs all phases of a new run of USE_CASE: build the candidate, boot-test
it, copy it to every target region, publish it and write the channel manifest.
With --resume ID it continues an interrupted run from wherever it stopped
(found from the cloud's tags), making nothing twice.
Exit 0 when published, 1 when the tests failed, 2 on error.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			useCase := ""
			if len(args) == 1 {
				useCase = args[0]
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runRelease(ctx, g, p, useCase, o) })
		},
	}
	cmd.Flags().StringVar(&o.arch, "arch", "", "architecture (default: the use case's only one)")
	cmd.Flags().StringVar(&o.version, "version", "", "version for {version} in names")
	cmd.Flags().StringVar(&o.channel, "channel", "latest", "channel to publish to")
	cmd.Flags().StringVar(&o.resume, "resume", "", "continue the run with this asset id")
	o.addFlags(cmd)
	g.addVarFlags(cmd)
	return cmd
}

type releaseReport struct {
	Schema string `json:"schema"`
	pipeline.ReleaseReport
	Commit string `json:"commit,omitempty"` // with --commit: the manifest's commit
}

func runRelease(ctx context.Context, g *globalOptions, p *project, useCase string, o releaseOptions) error {
	if (useCase == "") == (o.resume == "") {
		return usageError(errors.New("give either USE_CASE or --resume ID"))
	}
	path, err := p.cfg.ManifestPath(o.channel)
	if err != nil {
		return usageError(fmt.Errorf("--channel: %w", err))
	}
	if err := o.check(ctx, path); err != nil {
		return err
	}
	var (
		r      pipeline.Run
		unlock = func() {}
	)
	if o.resume != "" {
		r, unlock, err = p.findRun(ctx, o.resume)
	} else if r, err = p.pl.NewRun(ctx, useCase, o.arch, o.version); err != nil {
		err = usageError(err)
	} else {
		unlock, err = p.pl.LockRun(r.ID)
	}
	if err != nil {
		return err
	}
	defer unlock()
	fmt.Fprintf(g.streams.err, "run %s: releasing %s %s version %s to channel %s\n", r.ID, r.UseCase, r.Arch, r.Version, o.channel)
	rep, err := p.pl.Release(ctx, r, o.channel)
	p.progress.Close()
	var failed *pipeline.TestFailedError
	if err != nil && !errors.As(err, &failed) {
		if rep.Replicate != nil && rep.Replicate.Regions != nil && g.format != output.JSON {
			printRegions(g, rep.Replicate.Regions)
		}
		return fmt.Errorf("%w\nresume with: kiln release --resume %s", err, r.ID)
	}
	var commit string
	if rep.Publish != nil {
		if commit, err = o.record(ctx, g, rep.Publish.Manifest, rep.Publish.Changes, publishSubject(r, o.channel)); err != nil {
			return err
		}
	}
	if g.format == output.JSON {
		if err := output.WriteJSON(g.streams.out, releaseReport{Schema: "kiln.release/v1", ReleaseReport: rep, Commit: commit}); err != nil {
			return err
		}
	} else {
		if rep.Test != nil {
			printTest(g, *rep.Test)
		}
		if rep.Publish != nil {
			fmt.Fprintln(g.streams.out)
			printPublish(g, *rep.Publish)
		}
	}
	if failed != nil {
		return findings("%v", failed)
	}
	fmt.Fprintf(g.streams.err, "run %s released\n", r.ID)
	return nil
}
