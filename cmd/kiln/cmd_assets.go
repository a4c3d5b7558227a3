package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

type assetsOptions struct {
	run     string
	all     bool
	regions []string
}

func newAssetsCommand(g *globalOptions) *cobra.Command {
	var o assetsOptions
	cmd := &cobra.Command{
		Use:   "assets [--run ID | --all] [--region R]...",
		Short: "List every resource kiln manages, found by its tags",
		Long: `assets lists the resources tagged kiln:managed=true in every configured region
(or those given), with the untagged children the cloud made for them
(snapshots behind images, resources of stacks), each confirmed to exist. It
needs no local state. With --run it lists that run's resources; otherwise it
groups them by run with a count per kind.`,
		Example: `  kiln assets
  kiln assets --run kiln-20261121T093012Z-7f3a9c
  kiln assets --region local-b -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := atMostOne(cmd, "run", "all"); err != nil {
				return err
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runAssets(ctx, g, p, o) })
		},
	}
	cmd.Flags().StringVar(&o.run, "run", "", "only this run's resources")
	cmd.Flags().BoolVar(&o.all, "all", false, "every run's resources (the default)")
	cmd.Flags().StringArrayVar(&o.regions, "region", nil, "only this region (repeatable)")
	completeRuns(g, cmd)
	completeRegions(g, cmd)
	return cmd
}

func runAssets(ctx context.Context, g *globalOptions, p *project, o assetsOptions) error {
	regions, err := pickRegions(p.cfg.Locations(), o.regions)
	if err != nil {
		return err
	}
	var f cloud.Filter
	if o.run != "" {
		if _, err := journal.ParseAssetID(o.run); err != nil {
			return usageError(fmt.Errorf("--run: %w", err))
		}
		f.Tags = map[string]string{cloud.TagAssetID: o.run}
	}
	inv := assets.Scan(ctx, p.backend, regions, f, len(regions))
	if err := inv.Err(); err != nil {
		return err
	}
	rep := report.Assets{Schema: report.SchemaAssets, Runs: assets.ByRun(inv.Assets), Assets: inv.Assets}
	if g.json() {
		return g.write(rep)
	}
	if len(inv.Assets) == 0 {
		fmt.Fprintf(g.streams.out, "no kiln-managed resources in %s\n", strings.Join(regions, ", "))
		return nil
	}
	if o.run != "" {
		printAssets(g, p.cfg.CostTag.Key, inv.Assets)
		return printExports(g, inv.Assets)
	}
	t := output.NewTable(g.streams.out, "RUN", "USE CASE", "REGIONS", "TOTAL", "KINDS")
	for _, r := range rep.Runs {
		kinds := make([]string, 0, len(r.Kinds))
		for k, n := range r.Kinds {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		}
		sort.Strings(kinds)
		t.Row(r.RunID, r.UseCase, strings.Join(r.Regions, ","), fmt.Sprint(r.Total), strings.Join(kinds, " "))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	return printExports(g, inv.Assets)
}

// printExports lists the exports of the assets, when they have any: each
// file's location, size and sha256.
func printExports(g *globalOptions, as []cloud.Asset) error {
	var t *output.TableWriter
	for _, a := range as {
		for _, e := range a.Exports {
			if t == nil {
				fmt.Fprintln(g.streams.out)
				t = output.NewTable(g.streams.out, "EXPORT", "OF", "REGION", "LOCATION", "SIZE", "SHA256")
			}
			size := ""
			if e.Size > 0 {
				size = output.Bytes(e.Size)
			}
			t.Row(e.Format, a.ID, a.Region, e.Location, size, e.SHA256)
		}
	}
	if t == nil {
		return nil
	}
	return t.Flush()
}

func printAssets(g *globalOptions, costKey string, as []cloud.Asset) {
	cost := "COST TAG"
	if costKey != "" {
		cost = strings.ToUpper(costKey)
	}
	t := output.NewTable(g.streams.out, "KIND", "ID", "REGION", "STATE", "AGE", "RUN", "USE CASE", "PHASE", cost, "PARENT")
	now := time.Now()
	for _, a := range as {
		age := ""
		if !a.Created.IsZero() {
			age = output.Age(now.Sub(a.Created))
		}
		t.Row(string(a.Kind), a.ID, a.Region, a.State, age, a.Tags[cloud.TagAssetID], a.Tags[cloud.TagUseCase],
			a.Tags[cloud.TagPhase], a.Tags[costKey], a.Parent)
	}
	t.Flush()
}

// pickRegions checks --region values against the configured regions.
func pickRegions(all, picked []string) ([]string, error) {
	if len(picked) == 0 {
		return all, nil
	}
	var out []string
	for _, r := range picked {
		// A region names itself in every account kiln publishes into; a
		// location (ACCOUNT/REGION) names one of them.
		n := len(out)
		for _, loc := range all {
			if loc == r || config.RegionOf(loc) == r {
				out = append(out, loc)
			}
		}
		if len(out) == n {
			return nil, usageError(fmt.Errorf("--region %s: not a configured region (%s)", r, strings.Join(all, ", ")))
		}
	}
	return slices.Compact(out), nil
}
