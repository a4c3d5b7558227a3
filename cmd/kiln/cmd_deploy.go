package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

type deployOptions struct {
	apply     bool
	newName   string
	from      string
	noVerify  bool
	recordOpt recordOptions
}

func newDeployCommand(g *globalOptions) *cobra.Command {
	var o deployOptions
	cmd := &cobra.Command{
		Use:   "deploy DEPLOYMENT [--apply] | deploy --new NAME --from TEMPLATE [--apply]",
		Short: "Run a released image as a deployment: plan, then apply, hooks and verification",
		Long: `deploy resolves the deployment's release (its channel's manifest entry, or the
pinned image), its inputs (secrets are read now and never stored) and plans
each unit: create, update, replace, start or nothing. With --apply it applies
the units in order (journaled and tagged; a rerun after a crash converges and
never starts a second VM or process), records the deployment in
deployments/NAME.json, runs the post-deploy hooks and verifies it.

--new NAME --from TEMPLATE makes a personal deployment from a template
deployment, expiring after the template's expire_after.

Exit 0 deployed and verified (or a plan), 1 refused (locked, disabled,
expired) or a hook or the verification failed, 2 error.`,
		Example: `  kiln deploy dev                          # the plan: each unit's action; nothing changes
  kiln deploy dev --apply --commit --tag   # apply, verify, commit the record, tag deploy/dev/TIME
  kiln deploy --new alice --from sandbox --apply  # a personal deployment from a template`,
		Args: maxArgs("DEPLOYMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.newName != "" && len(args) > 0:
				return usageError(errors.New("give a deployment, or --new NAME --from TEMPLATE, not both"))
			case o.newName == "" && len(args) == 0:
				return usageError(errors.New("name the deployment to deploy (kiln deployments lists them)"))
			case (o.newName == "") != (o.from == ""):
				return usageError(errors.New("--new and --from go together"))
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error {
				name := o.newName
				if len(args) > 0 {
					name = args[0]
				}
				return runDeploy(ctx, g, p, name, o)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.apply, "apply", false, "deploy (without it, only plan)")
	f.StringVar(&o.newName, "new", "", "make a personal deployment of this name")
	f.StringVar(&o.from, "from", "", "with --new: the template deployment to make it from")
	f.BoolVar(&o.noVerify, "no-verify", false, "do not run the checks at the end")
	o.recordOpt.addFlags(cmd, true)
	return cmd
}

func runDeploy(ctx context.Context, g *globalOptions, p *project, name string, o deployOptions) error {
	if err := o.recordOpt.check(ctx, p.cfg); err != nil {
		return err
	}
	d := p.deployer(g)
	plan, err := d.Plan(ctx, name, deploy.PlanOptions{New: o.newName, From: o.from})
	if err != nil {
		return err
	}
	rep := &deploy.Report{Plan: plan, Outputs: map[string]string{}, Hooks: []deploy.HookResult{}}
	var applyErr error
	if o.apply && len(plan.Refused) == 0 {
		rep, applyErr = d.Apply(ctx, plan, deploy.ApplyOptions{NoVerify: o.noVerify})
	}
	var commit string
	if rep.Applied {
		subject := fmt.Sprintf("%s: deploy %s", name, plan.Release.ID)
		if rep.Failed != "" {
			subject += " (failed: " + rep.Failed + ")"
		}
		var cerr error
		if commit, cerr = o.recordOpt.record(ctx, g, p.cfg, name, subject, applyErr == nil); cerr != nil && applyErr == nil {
			applyErr = cerr
		}
	}
	if g.json() {
		if err := g.write(report.Deploy{Schema: report.SchemaDeploy, Report: rep, Commit: commit}); err != nil {
			return err
		}
	} else {
		printDeploy(g.streams.out, rep)
	}
	switch {
	case len(plan.Refused) > 0:
		return findings("deployment %s refuses a deploy: %s; nothing was changed", name, strings.Join(plan.Refused, "; "))
	case !o.apply:
		fmt.Fprintln(g.streams.err, "nothing was changed; rerun with --apply")
		return nil
	}
	return deployError(applyErr)
}

// printDeploy prints a deploy's plan and, when applied, its outcome.
func printDeploy(w io.Writer, rep *deploy.Report) {
	p := rep.Plan
	rel := p.Release
	from := "pinned"
	if rel.Channel != "" {
		from = "channel " + rel.Channel
	}
	if rel.PromotedFrom != "" {
		from = "promoted from " + rel.PromotedFrom
	}
	fmt.Fprintf(w, "deployment %s: release %s (%s %s %s, %s)\n", p.Deployment, rel.ID, rel.UseCase, rel.Arch, rel.Version, from)
	if p.Current == nil {
		fmt.Fprintln(w, "now running: nothing")
	} else if p.Current.ID != rel.ID {
		fmt.Fprintf(w, "now running: %s\n", p.Current.ID)
	}
	for _, r := range p.Refused {
		fmt.Fprintf(w, "REFUSED: %s\n", r)
	}
	fmt.Fprintln(w)
	t := output.NewTable(w, "UNIT", "KIND", "ACTION", "CHANGES")
	for _, u := range p.Units {
		t.Row(u.Name, u.Kind, string(u.Action), strings.Join(u.Changes, "; "))
	}
	t.Flush()
	if !rep.Applied {
		if len(p.Hooks) > 0 || len(p.Checks) > 0 {
			fmt.Fprintf(w, "\nthen: post-deploy hooks [%s], checks [%s]\n", strings.Join(p.Hooks, ", "), strings.Join(p.Checks, ", "))
		}
		return
	}
	fmt.Fprintln(w)
	for _, u := range sortedOutputs(rep.Outputs) {
		fmt.Fprintf(w, "output %s = %s\n", u, rep.Outputs[u])
	}
	for _, h := range rep.Hooks {
		switch {
		case h.Skipped:
			fmt.Fprintf(w, "hook %s: not run (done before, or nothing changed)\n", h.Name)
		case h.Error != "":
			fmt.Fprintf(w, "hook %s: FAILED: %s\n", h.Name, h.Error)
		default:
			fmt.Fprintf(w, "hook %s: ok (%s)\n", h.Name, h.Duration)
		}
	}
	if rep.Verification != nil {
		fmt.Fprintln(w)
		printVerification(w, *rep.Verification)
	}
	fmt.Fprintf(w, "\ndeployment %s is %s (run %s)\n", p.Deployment, rep.State, rep.Run)
	if rep.Failed != "" {
		fmt.Fprintf(w, "failed: %s\n", rep.Failed)
	}
}

func printVerification(w io.Writer, v record.Verification) {
	t := output.NewTable(w, "CHECK", "RESULT", "MEASUREMENTS", "FAILURES", "ERRORS", "DETAIL")
	for _, c := range v.Checks {
		res := "pass"
		if !c.Passed {
			res = "FAIL"
		}
		t.Row(c.Name, res, fmt.Sprint(c.Measurements), fmt.Sprint(c.Failures), fmt.Sprint(c.Errors), c.Detail)
	}
	t.Flush()
}

func sortedOutputs(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
