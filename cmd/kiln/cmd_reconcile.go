package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

type reconcileOptions struct {
	driftOptions
	apply bool
}

func newReconcileCommand(g *globalOptions) *cobra.Command {
	var o reconcileOptions
	cmd := &cobra.Command{
		Use:   "reconcile [--channel C] [--apply]",
		Short: "Make the cloud match the channel manifests where possible",
		Long: `reconcile runs the drift check and plans the fixes it can make: re-grant launch
permissions, restore deprecation times. It says what it cannot fix (a missing
or unavailable image, a wrong name or architecture need a new release or kiln
rollback). Only with --apply it makes the fixes.
Exit 0 for a plan and when nothing is left to fix after --apply; 1 when drift
that reconcile cannot fix remains (with or without --apply); 2 on error.`,
		Example: `  kiln reconcile                     # the plan
  kiln reconcile --channel stable --apply`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := atMostOne(cmd, "channel", "all-channels"); err != nil {
				return err
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runReconcile(ctx, g, p, o) })
		},
	}
	o.addFlags(g, cmd)
	cmd.Flags().BoolVar(&o.apply, "apply", false, "make the fixes (without it, only print the plan)")
	return cmd
}

func runReconcile(ctx context.Context, g *globalOptions, p *project, o reconcileOptions) error {
	in, _, err := driftInput(ctx, p, p.pl, o.driftOptions)
	if err != nil {
		return err
	}
	rep, err := drift.Check(ctx, p.backend, in)
	if err != nil {
		return err
	}
	fixes, unfixable := drift.Plan(rep, in)
	out := report.Reconcile{Schema: report.SchemaReconcile, Fixes: fixes, Unfixable: unfixable}
	if o.apply && len(fixes) > 0 {
		out.Failed = drift.Apply(ctx, p.backend, fixes, len(p.cfg.Locations()))
		out.Applied = true
	}
	if g.json() {
		if err := g.write(out); err != nil {
			return err
		}
	} else {
		printReconcile(g, out)
	}
	if len(fixes) > 0 && !o.apply {
		g.planOnly(fmt.Sprintf("make the %d fix(es)", len(fixes)))
	}
	switch {
	case out.Failed > 0:
		return fmt.Errorf("%d fix(es) failed", out.Failed)
	case len(unfixable) > 0:
		return findings("%d finding(s) need a new release or kiln rollback", len(unfixable))
	}
	return nil
}

func printReconcile(g *globalOptions, r report.Reconcile) {
	if len(r.Fixes) == 0 && len(r.Unfixable) == 0 {
		fmt.Fprintln(g.streams.out, "in sync: nothing to reconcile")
		return
	}
	verb := "would fix"
	if r.Applied {
		verb = "fixed"
	}
	t := output.NewTable(g.streams.out, "ACTION", "REGION", "IMAGE", "CHANGE", "ERROR")
	for _, fx := range r.Fixes {
		action := verb
		if fx.Error != "" {
			action = "failed"
		}
		for _, f := range fx.Findings {
			t.Row(action, fx.Region, fx.ImageID, fmt.Sprintf("%s: %s -> %s", f.Kind, f.Actual, f.Expected), fx.Error)
		}
	}
	for _, f := range r.Unfixable {
		t.Row("cannot fix", f.Region, f.ImageID, fmt.Sprintf("%s: %s", f.Kind, f.Message), "")
	}
	t.Flush()
}
