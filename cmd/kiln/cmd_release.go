package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/claim"
	"github.com/kiln-images/kiln/internal/gates"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/report"
)

type releaseOptions struct {
	arch    string
	version string
	channel string
	resume  string
	commitOptions
	documentOptions
	gateOptions
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

Before it makes anything, release checks what would stop the run half-way:
the channel's manifest reads, the backend can build and boot-test the
recipe (architecture, user data size, recipe files inside the project),
--commit can succeed (see publish), the release checklist of the downloads
passes (when the project distributes them), and the channel's gates pass
(interval, newer; --override-gate NAME --reason TEXT lets one pass, on the
record). A refused release has made nothing.
Exit 0 when published, 1 when the tests failed or a gate refused it, 2 on error.`,
		Example: `  kiln release debian-sandbox
  kiln release debian-sandbox --channel latest --commit --push
  kiln release debian-sandbox --override-gate newer --reason "rebuild of 1.4 for a CVE"
  kiln release --resume kiln-20261121T093012Z-7f3a9c`,
		Args:              maxArgs("USE_CASE"),
		ValidArgsFunction: completeUseCases(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			useCase := ""
			if len(args) == 1 {
				useCase = args[0]
			}
			if o.resume != "" {
				if _, err := journal.ParseAssetID(o.resume); err != nil {
					return usageError(fmt.Errorf("--resume: %w", err))
				}
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runRelease(ctx, g, p, useCase, o) })
		},
	}
	cmd.Flags().StringVar(&o.arch, "arch", "", "architecture (default: the use case's only one)")
	cmd.Flags().StringVar(&o.version, "version", "", "version for {version} in names")
	cmd.Flags().StringVar(&o.channel, "channel", "latest", "channel to publish to")
	cmd.Flags().StringVar(&o.resume, "resume", "", "continue the run with this asset id")
	o.commitOptions.addFlags(cmd)
	o.gateOptions.addFlags(cmd)
	o.addDocumentFlags(cmd)
	completeRuns(g, cmd, "resume")
	completeArch(g, cmd)
	completeChannels(g, cmd)
	g.addVarFlags(cmd)
	return cmd
}

func runRelease(ctx context.Context, g *globalOptions, p *project, useCase string, o releaseOptions) error {
	if (useCase == "") == (o.resume == "") {
		return usageError(errors.New("give either USE_CASE or --resume ID"))
	}
	if _, err := p.cfg.ManifestPath(o.channel); err != nil {
		return usageError(fmt.Errorf("--channel: %w", err))
	}
	ov, err := o.parse()
	if err != nil {
		return err
	}
	doc, err := o.documenter(ctx, g, p.cfg, o.commit)
	if err != nil {
		return err
	}
	// Everything that can be checked before a run exists is checked now:
	// a refusal leaves nothing behind, not even a run in the journal.
	var (
		r      pipeline.Run
		unlock = func() {}
	)
	if o.resume != "" {
		if r, unlock, err = p.findRunFlag(ctx, "--resume", o.resume); err != nil {
			return err
		}
		defer unlock()
	} else if err := p.checkRelease(ctx, useCase, o.version); err != nil {
		return err // the release checklist: nothing is built
	} else {
		u, arch, err := p.pl.ResolveArch(useCase, o.arch)
		if err != nil {
			return usageError(err)
		}
		r = pipeline.Run{UseCase: u.Name, Arch: arch, Version: o.version}
	}
	if err := p.pl.CheckRelease(ctx, r.UseCase, r.Arch, o.channel); err != nil {
		return usageError(err)
	}
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
	what := "release of " + r.UseCase + " " + r.Arch
	if r.ID != "" {
		what = "release of run " + r.ID
	}
	if err := enforce(ctx, g, p, ov, gs, o.channel, what); err != nil {
		return err
	}
	if o.resume == "" {
		if r, err = p.pl.NewRun(ctx, useCase, o.arch, o.version); err != nil {
			return usageError(err)
		}
		if unlock, err = p.pl.LockRun(r.ID); err != nil {
			return err
		}
		defer unlock()
	}
	ctx, release, err := holdChannel(ctx, g, p, r, o.channel)
	if err != nil {
		if o.resume == "" {
			abandonRun(ctx, p, r.ID)
		}
		return fmt.Errorf("run %s: %w; nothing was made", r.ID, err)
	}
	defer release()
	fmt.Fprintf(g.streams.err, "run %s: releasing %s %s version %s to channel %s\n", r.ID, r.UseCase, r.Arch, r.Version, o.channel)
	rep, err := p.pl.Release(ctx, r, o.channel)
	p.progress.Close()
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, claim.ErrLost) {
		err = fmt.Errorf("%w: stopped; %v", cause, err)
	}
	var failed *pipeline.TestFailedError
	if err != nil && !errors.As(err, &failed) {
		if rep.Replicate != nil && rep.Replicate.Regions != nil && !g.json() {
			printRegions(g, rep.Replicate.Regions)
		}
		return fmt.Errorf("%w\nresume with: kiln release --resume %s", err, r.ID)
	}
	var commit string
	var dr report.Document
	if rep.Publish != nil {
		if commit, err = o.record(ctx, g, p.cfg, o.channel, keys, publishSubject(r, o.channel), gates.Trailers(gs)...); err != nil {
			return err
		}
		if doc != nil {
			if dr, err = doc.recordRun(ctx, g, p, r, o.channel, regionsOf(rep.Publish.Regions)); err != nil {
				return fmt.Errorf("%w\nresume with: kiln release --resume %s", err, r.ID)
			}
		}
	}
	if g.json() {
		if err := g.write(report.Release{Schema: report.SchemaRelease, ReleaseReport: rep, Commit: commit, Document: dr}); err != nil {
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
	g.note("run %s released", r.ID)
	return nil
}
