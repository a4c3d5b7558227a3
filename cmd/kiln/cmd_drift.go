package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/report"
)

type driftOptions struct {
	channel    string
	all        bool
	gitRefs    string
	warnBefore config.Duration
}

func (o *driftOptions) addFlags(g *globalOptions, cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.channel, "channel", "", "check only this channel's manifest")
	f.BoolVar(&o.all, "all-channels", false, "check every channel's manifest (the default)")
	f.StringVar(&o.gitRefs, "git-refs", "", "images referenced by manifests at git tags matching this pattern (e.g. 'v*') are not orphans")
	completeChannels(g, cmd)
}

func newDriftCommand(g *globalOptions) *cobra.Command {
	o := driftOptions{warnBefore: config.Duration(14 * 24 * time.Hour)}
	cmd := &cobra.Command{
		Use:   "drift [--channel C | --all-channels] [--git-refs PATTERN] [--warn-before D]",
		Short: "Compare the channel manifests with the cloud",
		Long: `drift checks every manifest entry against the cloud: the image exists in its
region and is available, its name and architecture match, its public flag and
launch permissions match the entry and the publish policy, its deprecation time
matches; it warns when an image is deprecated or will be within --warn-before.
Then it reports this project's kiln-managed images (kiln:project and a use
case kiln.yaml names) that no manifest references (the working
tree, and with --git-refs the manifests at matching git tags) as orphans.

One image scan per region. Prints one line when all is well.
Exit 0 in sync (warnings and orphans do not fail), 1 drift found, 2 error.`,
		Example: `  kiln drift
  kiln drift --channel stable --warn-before 30d
  kiln drift --git-refs 'v*' -o json     # nightly, in CI`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := atMostOne(cmd, "channel", "all-channels"); err != nil {
				return err
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runDrift(ctx, g, p, o) })
		},
	}
	o.addFlags(g, cmd)
	cmd.Flags().Var(durationFlag{&o.warnBefore}, "warn-before", "warn about images deprecated within this window")
	return cmd
}

// driftInput loads what a drift check compares.
func driftInput(ctx context.Context, p *project, pl *pipeline.Pipeline, o driftOptions) (drift.Input, []string, error) {
	names := p.cfg.ChannelNames()
	if o.channel != "" {
		if _, err := p.cfg.ManifestPath(o.channel); err != nil {
			return drift.Input{}, nil, usageError(fmt.Errorf("--channel: %w", err))
		}
		names = []string{o.channel}
	}
	refs, err := channel.References(ctx, p.cfg, o.gitRefs)
	if err != nil {
		return drift.Input{}, nil, err
	}
	in := drift.Input{
		Referenced:  refs.All(),
		Regions:     p.cfg.Locations(),
		WarnBefore:  o.warnBefore.Std(),
		Now:         time.Now(),
		Concurrency: len(p.cfg.Locations()),
		Locate:      func(key, region string) string { return channel.Locate(p.cfg, key, region) },
		Policy: func(key string) (cloud.LaunchPermissions, bool) {
			u, _, ok := channel.UseCaseOf(p.cfg, key)
			if !ok {
				return cloud.LaunchPermissions{}, false
			}
			return pipeline.Permissions(u.Publish), true
		},
	}
	in.Owns = p.owner().Owns
	busy := inProgress(ctx, p, p.pl, false)
	in.Ignore = func(img cloud.Image) bool {
		b, _ := busy(img.Tags[cloud.TagAssetID], img.Created)
		return b
	}
	for _, n := range names {
		m, l, err := channel.Open(p.cfg, n)
		if err != nil {
			return drift.Input{}, nil, err
		}
		in.Channels = append(in.Channels, drift.Channel{Name: n, Manifest: m, Layout: l})
	}
	return in, names, nil
}

func runDrift(ctx context.Context, g *globalOptions, p *project, o driftOptions) error {
	in, names, err := driftInput(ctx, p, p.pl, o)
	if err != nil {
		return err
	}
	rep, err := drift.Check(ctx, p.backend, in)
	if err != nil {
		return err
	}
	if g.json() {
		if err := g.write(report.Drift{Schema: report.SchemaDrift, Channels: names, Report: rep}); err != nil {
			return err
		}
	} else {
		printDrift(g, rep)
	}
	if rep.Drifted() {
		return findings("")
	}
	return nil
}

func printDrift(g *globalOptions, rep drift.Report) {
	s := rep.Summary
	drifted := 0
	for _, n := range s.Drifted {
		drifted += n
	}
	fmt.Fprintf(g.streams.out, "%d entries checked in %d regions: %d in sync (coverage %.1f%%), %d drift findings, %d warnings, %d orphans\n",
		s.Checked, s.Regions, s.InSync, 100*s.Coverage, drifted, s.Warnings, s.Orphans)
	if len(rep.Findings) == 0 {
		return
	}
	fmt.Fprintln(g.streams.out)
	t := output.NewTable(g.streams.out, "SEVERITY", "KIND", "CHANNEL", "USE CASE", "REGION", "IMAGE", "EXPECTED", "ACTUAL", "MESSAGE")
	for _, f := range rep.Findings {
		key := f.UseCase
		if f.Key != "" {
			key = f.Key // as the manifest file has it
		}
		t.Row(string(f.Severity), string(f.Kind), f.Channel, key, f.Region, f.ImageID, f.Expected, f.Actual, f.Message)
	}
	t.Flush()
}
