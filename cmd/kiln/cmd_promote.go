package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/gates"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

type promoteOptions struct {
	from, to string
	apply    bool
	commitOptions
	gateOptions
}

func newPromoteCommand(g *globalOptions) *cobra.Command {
	o := promoteOptions{from: "latest", to: "stable"}
	cmd := &cobra.Command{
		Use:   "promote USE_CASE --from latest --to stable [--apply]",
		Short: "Copy a use case's entries from one channel to another, behind gates",
		Long: `promote checks gates on the use case's entries in the --from channel, each
reported by name: complete (every target region has an entry), available,
tested (the run passed kiln test), published (public or shared per policy),
not-deprecated, and interval (the --to channel's min_interval since its last
change, from git history or else the file's time). With every gate passed and
--apply it writes the --to manifest (and, with SSM parameters configured, flips
them all or none) and shows the diff. --override-gate NAME --reason TEXT lets
a failed gate pass (not tested or available), recorded in the journal and the
commit message. A promotion the --to channel has already (a rerun) passes the
interval gate and exits 0.
Exit 0 when promoted, or for a plan (without --apply) whose gates pass; 1 when
a gate failed (with or without --apply); 2 on error.`,
		Example: `  kiln promote debian-sandbox                      # latest -> stable: gates and diff
  kiln promote debian-sandbox --from latest --to stable --apply --commit
  kiln promote debian-sandbox --apply --override-gate interval --reason "CVE fix"`,
		Args:              exactArgs("USE_CASE"),
		ValidArgsFunction: completeUseCases(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runPromote(ctx, g, p, args[0], o) })
		},
	}
	cmd.Flags().StringVar(&o.from, "from", o.from, "channel to promote from")
	cmd.Flags().StringVar(&o.to, "to", o.to, "channel to promote to")
	cmd.Flags().BoolVar(&o.apply, "apply", false, "write the target manifest (without it, only check and show the diff)")
	o.commitOptions.addFlags(cmd)
	o.gateOptions.addFlags(cmd)
	completeChannels(g, cmd)
	return cmd
}

func runPromote(ctx context.Context, g *globalOptions, p *project, useCase string, o promoteOptions) error {
	for _, ch := range []string{o.from, o.to} {
		if _, err := p.cfg.ManifestPath(ch); err != nil {
			return usageError(fmt.Errorf("--from/--to: %w", err))
		}
	}
	ov, err := o.parse()
	if err != nil {
		return err
	}
	u, err := p.cfg.UseCase(useCase)
	if err != nil {
		return usageError(err)
	}
	var keys []string
	for _, arch := range u.Architectures {
		keys = append(keys, u.ManifestKey(arch))
	}
	subject := fmt.Sprintf("%s: promote %s from %s", o.to, useCase, o.from)
	if err := o.check(ctx, g, p.cfg, o.to, keys, subject); err != nil {
		return err
	}
	last, err := channel.LastChange(ctx, p.cfg, o.to)
	if err != nil {
		return err
	}
	rep, err := p.pl.Promote(ctx, useCase, o.from, o.to, last, o.apply, ov)
	if err != nil {
		return err
	}
	var commit string
	if rep.Applied {
		var used []gates.Gate
		for _, gt := range rep.Gates {
			if gt.Overridden != "" {
				used = append(used, gt)
			}
		}
		if err := recordOverrides(ctx, g, p, used, o.to, "promote of "+useCase+" from "+o.from); err != nil {
			return err
		}
		if commit, err = o.record(ctx, g, p.cfg, o.to, keys, subject, gates.Trailers(rep.Gates)...); err != nil {
			return err
		}
	}
	if g.json() {
		if err := g.write(report.Promote{Schema: report.SchemaPromote, PromoteReport: rep, Commit: commit}); err != nil {
			return err
		}
	} else {
		t := output.NewTable(g.streams.out, "GATE", "RESULT", "DETAIL")
		for _, gt := range rep.Gates {
			res := "pass"
			switch {
			case !gt.Passed:
				res = "FAIL"
			case gt.Overridden != "":
				res = "overridden: " + gt.Overridden
			}
			if len(gt.Detail) == 0 {
				t.Row(gt.Name, res, "")
			}
			for _, d := range gt.Detail {
				t.Row(gt.Name, res, d)
			}
		}
		t.Flush()
		fmt.Fprintln(g.streams.out)
		if len(rep.Changes) == 0 {
			fmt.Fprintf(g.streams.out, "channel %s already has these entries\n", o.to)
		} else {
			manifest.FormatDiff(g.streams.out, rep.Changes)
		}
	}
	switch {
	case !rep.Passed():
		return findings("promotion of %s from %s to %s refused: a gate failed; nothing was changed", useCase, o.from, o.to)
	case !o.apply && len(rep.Changes) > 0:
		g.planOnly("write channel " + o.to + " (every gate passes)")
	}
	return nil
}
