package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/report"
)

type buildOptions struct {
	arch    string
	version string
}

func newBuildCommand(g *globalOptions) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build USE_CASE [--arch A]",
		Short: "Build a candidate image in the build region; prints the run's asset id",
		Long: `build starts a run of USE_CASE and makes its candidate image in the build
region from the recipe. It prints the run's asset id on stdout, for the next
phases: kiln test --run ID, kiln replicate --run ID, kiln publish --run ID.
To continue an interrupted build use kiln release --resume ID.`,
		Example: `  kiln build debian-sandbox
  RUN=$(kiln build debian-sandbox --version 1.4.0) && kiln test --run "$RUN"`,
		Args:              exactArgs("USE_CASE"),
		ValidArgsFunction: completeUseCases(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runBuild(ctx, g, p, args[0], o) })
		},
	}
	cmd.Flags().StringVar(&o.arch, "arch", "", "architecture to build (default: the use case's only one)")
	cmd.Flags().StringVar(&o.version, "version", "", "version for {version} in names (default: the use case's, else the run's start time)")
	g.addVarFlags(cmd)
	completeArch(g, cmd)
	return cmd
}

func runBuild(ctx context.Context, g *globalOptions, p *project, useCase string, o buildOptions) error {
	if err := p.checkRelease(ctx, useCase, o.version); err != nil {
		return err
	}
	r, err := p.pl.NewRun(ctx, useCase, o.arch, o.version)
	if err != nil {
		return usageError(err)
	}
	unlock, err := p.pl.LockRun(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	fmt.Fprintf(g.streams.err, "run %s: building %s %s\n", r.ID, r.UseCase, r.Arch)
	img, err := p.pl.Build(ctx, r)
	if err != nil {
		return err
	}
	p.progress.Close()
	if g.json() {
		return g.write(report.Build{Schema: report.SchemaBuild, Run: r, ImageID: img.ID, Region: img.Region, Name: img.Name})
	}
	fmt.Fprintf(g.streams.err, "candidate %s (%s) in %s\n", img.ID, img.Name, img.Region)
	fmt.Fprintln(g.streams.out, r.ID)
	return nil
}
