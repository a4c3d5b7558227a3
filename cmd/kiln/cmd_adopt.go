package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/ownership"
	"github.com/kiln-images/kiln/internal/report"
)

type adoptOptions struct {
	run   string
	apply bool
}

func newAdoptCommand(g *globalOptions) *cobra.Command {
	var o adoptOptions
	cmd := &cobra.Command{
		Use:   "adopt [--run ID] [--apply]",
		Short: "Make resources an older kiln made (no kiln:project tag) this project's",
		Long: `cleanup, prune and drift act only on resources tagged with this project
(kiln:project, put on at creation) and one of the use cases kiln.yaml names.
Resources made by a kiln that did not tag projects yet carry no kiln:project
tag: they are listed as foreign and never deleted.

adopt plans to tag them with this project: every kiln-managed resource
without a kiln:project tag whose use case kiln.yaml names and that carries
the project's cost tag (with --run, only that run's). Only with --apply it
tags them, and records the adoption in the journal. Review the plan first:
in an account several projects share, a use case name alone does not say
whose a resource is.

Exit 0 for a plan (nothing is changed without --apply) and when every
resource planned was tagged, 1 when one could not be, 2 on error.`,
		Example: `  kiln adopt                                           # the plan
  kiln adopt --run kiln-20261121T093012Z-7f3a9c --apply
  kiln adopt --apply -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runAdopt(ctx, g, p, o) })
		},
	}
	cmd.Flags().StringVar(&o.run, "run", "", "adopt only this run's resources")
	cmd.Flags().BoolVar(&o.apply, "apply", false, "tag them (without it, only print the plan)")
	completeRuns(g, cmd)
	return cmd
}

func runAdopt(ctx context.Context, g *globalOptions, p *project, o adoptOptions) error {
	f := cloud.Filter{}
	if o.run != "" {
		if _, err := journal.ParseAssetID(o.run); err != nil {
			return usageError(fmt.Errorf("--run: %w", err))
		}
		f.Tags = map[string]string{cloud.TagAssetID: o.run}
	}
	inv := assets.Scan(ctx, p.backend, p.cfg.Locations(), f, len(p.cfg.Locations()))
	if err := inv.Err(); err != nil {
		return err
	}
	owner := p.owner()
	rep := report.Adopt{Schema: report.SchemaAdopt, Project: owner.Name, Items: ownership.PlanAdoption(inv.Assets, owner), Summary: map[string]int{}}
	var adopt []string
	for _, it := range rep.Items {
		rep.Summary[it.Action]++
		if it.Action == ownership.Adopt {
			adopt = append(adopt, fmt.Sprintf("%s %s [%s]", it.Asset.Kind, it.Asset.ID, it.Asset.Region))
		}
	}
	failed := 0
	if o.apply && len(adopt) > 0 {
		tagger, ok := p.backend.(cloud.AssetTagger)
		if !ok {
			return fmt.Errorf("the %s backend cannot tag existing resources", p.backend.Name())
		}
		// Recorded before the tags change: the journal is the audit log of
		// what was taken over, and why it is now deletable.
		if err := p.journal.Record(ctx, journal.Event{Kind: "adopt", Subject: "project " + owner.Name,
			Detail: fmt.Sprintf("%d resource(s): %s", len(adopt), strings.Join(adopt, ", "))}); err != nil {
			return err
		}
		failed = ownership.ApplyAdoption(ctx, tagger, rep.Items, owner)
		rep.Applied = true
	}
	if g.json() {
		if err := g.write(rep); err != nil {
			return err
		}
	} else if len(rep.Items) == 0 {
		fmt.Fprintln(g.streams.out, "nothing to adopt: every kiln resource found carries a kiln:project tag")
	} else {
		t := output.NewTable(g.streams.out, "ACTION", "KIND", "ID", "REGION", "RUN", "REASON / OUTCOME")
		for _, it := range rep.Items {
			why := it.Reason
			if it.Outcome != "" {
				why = it.Outcome
				if it.Error != "" {
					why += ": " + it.Error
				}
			}
			t.Row(it.Action, string(it.Asset.Kind), it.Asset.ID, it.Asset.Region, it.RunID, why)
		}
		t.Flush()
	}
	switch {
	case failed > 0:
		return findings("%d resource(s) could not be tagged", failed)
	case !o.apply && len(adopt) > 0:
		g.planOnly(fmt.Sprintf("tag %d resource(s) with %s=%s", len(adopt), cloud.TagProject, owner.Name))
	}
	return nil
}
