package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/report"
)

type pruneOptions struct {
	keep      int
	olderThan config.Duration
	gitRefs   string
	apply     bool
	yes       bool
}

func newPruneCommand(g *globalOptions) *cobra.Command {
	o := pruneOptions{keep: 3}
	cmd := &cobra.Command{
		Use:   "prune [--keep N] [--older-than D] [--apply]",
		Short: "Delete old released images beyond the retention",
		Long: `prune considers only this project's released images (kiln:project and one
of the use cases kiln.yaml names; others are listed as foreign and kept). It
keeps, per use case, architecture and region, the newest N released
images, every image a channel manifest references (the working tree, and with
--git-refs the manifests at matching git tags) and every image in use, and
plans to delete the rest with their snapshots. Only with --apply it deletes
them, through the same machinery and safety rules as kiln cleanup, and
verifies. Exit 0 for a plan and when nothing beyond the retention remains
after --apply, 1 when something that should be gone remains, 2 on error.`,
		Example: `  kiln prune                        # the plan: what --keep 3 would delete
  kiln prune --keep 5 --older-than 30d --git-refs 'v*' --apply`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runPrune(ctx, g, p, o) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.keep, "keep", o.keep, "newest images to keep per use case, architecture and region")
	f.Var(durationFlag{&o.olderThan}, "older-than", "only delete images older than this (e.g. 30d)")
	f.StringVar(&o.gitRefs, "git-refs", "", "also keep images referenced by manifests at git tags matching this pattern")
	f.BoolVar(&o.apply, "apply", false, "delete (without it, only print the plan)")
	f.BoolVar(&o.yes, "yes", false, "confirm a plan bigger than cleanup.confirm_above without asking")
	return cmd
}

func runPrune(ctx context.Context, g *globalOptions, p *project, o pruneOptions) error {
	if o.keep < 1 {
		return usageError(fmt.Errorf("--keep %d: must be at least 1", o.keep))
	}
	refs, err := channel.References(ctx, p.cfg, o.gitRefs)
	if err != nil {
		return err
	}
	inv := assets.Scan(ctx, p.backend, p.cfg.Locations(), cloud.Filter{}, len(p.cfg.Locations()))
	if err := inv.Err(); err != nil {
		return err
	}
	inUse, err := imagesInUse(ctx, p)
	if err != nil {
		return err
	}
	plan := assets.PrunePlan(inv.Assets, assets.Retention{
		Keep:       o.keep,
		OlderThan:  o.olderThan.Std(),
		Referenced: refs.Where,
		InUse:      func(region, id string) string { return inUse[region+"/"+id] },
		Now:        time.Now(),
		Project:    p.owner(),
	})
	return carryOut(ctx, g, p, report.SchemaPrune, plan, cloud.Filter{}, o.apply, o.yes, false)
}

// imagesInUse asks the backend, where it can tell, which images something
// uses (aws: running instances, launch templates): region/id -> user.
func imagesInUse(ctx context.Context, p *project) (map[string]string, error) {
	inUse := map[string]string{}
	c, ok := p.backend.(cloud.UsageChecker)
	if !ok {
		return inUse, nil
	}
	for _, region := range p.cfg.Locations() {
		m, err := c.ImagesInUse(ctx, region)
		if err != nil {
			return nil, fmt.Errorf("images in use in %s: %w", region, err)
		}
		for id, by := range m {
			inUse[region+"/"+id] = by
		}
	}
	return inUse, nil
}
