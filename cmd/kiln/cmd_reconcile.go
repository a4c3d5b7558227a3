package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/output"
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
Exit 0 when nothing is left to fix, 1 when drift remains (including a plan not
yet applied), 2 on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runReconcile(ctx, g, p, o) })
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&o.apply, "apply", false, "make the fixes (without it, only print the plan)")
	return cmd
}

type reconcileReport struct {
	Schema    string          `json:"schema"`
	Applied   bool            `json:"applied"`
	Fixes     []drift.Fix     `json:"fixes"`
	Unfixable []drift.Finding `json:"unfixable"`
	Failed    int             `json:"failed"`
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
	out := reconcileReport{Schema: "kiln.reconcile/v1", Fixes: fixes, Unfixable: unfixable}
	if o.apply && len(fixes) > 0 {
		out.Failed = drift.Apply(ctx, p.backend, fixes, len(p.cfg.Locations()))
		out.Applied = true
	}
	if out.Fixes == nil {
		out.Fixes = []drift.Fix{}
	}
	if out.Unfixable == nil {
		out.Unfixable = []drift.Finding{}
	}
	if g.format == output.JSON {
		if err := output.WriteJSON(g.streams.out, out); err != nil {
			return err
		}
	} else {
		printReconcile(g, out)
	}
	switch {
	case out.Failed > 0:
		return fmt.Errorf("%d fix(es) failed", out.Failed)
	case len(unfixable) > 0:
		return findings("%d finding(s) need a new release or kiln rollback", len(unfixable))
	case len(fixes) > 0 && !o.apply:
		return findings("plan only: rerun with --apply to make %d fix(es)", len(fixes))
	}
	return nil
}

func printReconcile(g *globalOptions, r reconcileReport) {
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
