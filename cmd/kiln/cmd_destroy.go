package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/teardown"
)

type destroyOptions struct {
	apply          bool
	yes            bool
	forceProtected bool
	purgeRetained  bool
	recordOpt      recordOptions
}

func newDestroyCommand(g *globalOptions) *cobra.Command {
	var o destroyOptions
	cmd := &cobra.Command{
		Use:   "destroy DEPLOYMENT [--apply] [--yes] [--force-protected] [--purge-retained]",
		Short: "Tear a deployment down in order, keep what must be kept, and prove nothing else is left",
		Long: `destroy finds everything the deployment made, by its tags (kiln:project and
kiln:deployment) as well as its record, and plans: the pre-destroy hooks; stop
every unit; empty the buckets (every version and delete marker) and
repositories that go; keep what the project keeps; destroy the units, last
deployed first; then delete whatever is still tagged for it (snapshots,
volumes, log groups...), in dependency order. What is kept is listed apart:
resources with a Retain deletion policy, tagged kiln:retain=true, or of a type
destroy.retain names; the record (deployments/NAME.json) says where each is.

With --apply it acts, then lists again by kiln:deployment and the cost tag,
through every lister and the tag index (each entry confirmed by its service),
until nothing but the kept resources is left or destroy.verify_timeout
passes, and marks the record destroyed. Killed at any point, running it again
finishes the job.

Above destroy.confirm_above resources, and always for a protected deployment
(protect: true, which also needs --force-protected), it asks for the
deployment's name to be typed; --yes answers instead. --purge-retained
deletes the kept resources too, and asks for that separately.

Exit 0 destroyed (or a plan), 1 refused or resources left after --apply, 2
error.`,
		Example: `  kiln destroy alice                                 # the plan: what goes, in order, what is kept
  kiln destroy alice --apply                         # asks for the name before deleting
  kiln destroy prod --apply --force-protected --yes --commit`,
		Args: exactArgs("DEPLOYMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runDestroy(ctx, g, p, args[0], o) })
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.apply, "apply", false, "destroy (without it, only plan)")
	f.BoolVar(&o.yes, "yes", false, "confirm without typing the deployment's name (and purge)")
	f.BoolVar(&o.forceProtected, "force-protected", false, "destroy a deployment with protect: true")
	f.BoolVar(&o.purgeRetained, "purge-retained", false, "delete the retained resources too")
	o.recordOpt.addFlags(cmd, false)
	return cmd
}

func runDestroy(ctx context.Context, g *globalOptions, p *project, name string, o destroyOptions) error {
	if err := o.recordOpt.check(ctx, p.cfg); err != nil {
		return err
	}
	d, err := p.destroyer(ctx, g)
	if err != nil {
		return err
	}
	plan, err := d.Plan(ctx, name, teardown.Options{PurgeRetained: o.purgeRetained, ForceProtected: o.forceProtected})
	if err != nil {
		return err
	}
	rep := teardown.NewReport(plan)
	var applyErr error
	if o.apply && len(plan.Refused) == 0 {
		if err := confirmDestroy(g, p, plan, o.yes); err != nil {
			return err
		}
		rep, applyErr = d.Apply(ctx, plan)
		p.progress.Close()
	}
	var commit string
	if rep.Applied {
		subject := fmt.Sprintf("%s: destroy (%d resources, %d kept)", name, plan.Deletes, len(plan.Retained))
		if rep.Failed != "" {
			subject = fmt.Sprintf("%s: destroy unfinished (%s)", name, rep.Failed)
		}
		var cerr error
		if commit, cerr = o.recordOpt.record(ctx, g, p.cfg, name, subject, applyErr == nil); cerr != nil && applyErr == nil {
			applyErr = cerr
		}
	}
	if g.json() {
		if err := g.write(report.Destroy{Schema: report.SchemaDestroy, Report: rep, Commit: commit}); err != nil {
			return err
		}
	} else {
		printDestroy(g.streams.out, p, rep)
	}
	switch {
	case len(plan.Refused) > 0:
		return findings("deployment %s refuses a destroy: %s; nothing was changed", name, strings.Join(plan.Refused, "; "))
	case !o.apply:
		fmt.Fprintln(g.streams.err, "nothing was changed; rerun with --apply")
		return nil
	}
	if errors.Is(applyErr, teardown.ErrRefused) || errors.Is(applyErr, teardown.ErrLeft) {
		return findings("%s", applyErr.Error())
	}
	return applyErr
}

// confirmDestroy asks before a big or protected teardown with something
// to do for the deployment's name, and before a purge of what is kept for
// "purge"; on a terminal it prompts, elsewhere it needs --yes.
func confirmDestroy(g *globalOptions, p *project, plan *teardown.Plan, yes bool) error {
	purged := 0
	for _, it := range plan.Items {
		if strings.HasPrefix(it.Note, "purge:") {
			purged++
		}
	}
	big := plan.Deletes > p.cfg.Destroy.ConfirmAbove
	if yes || len(plan.Items) == 0 || (!big && !plan.Protected && purged == 0) {
		return nil
	}
	in, ok := g.streams.in.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		why := fmt.Sprintf("%d resources (more than destroy.confirm_above = %d)", plan.Deletes, p.cfg.Destroy.ConfirmAbove)
		switch {
		case plan.Protected:
			why = "a protected deployment"
		case !big:
			why = fmt.Sprintf("%d retained resources (--purge-retained)", purged)
		}
		return fmt.Errorf("refusing to destroy %s without confirmation: rerun with --yes", why)
	}
	r := bufio.NewReader(in)
	if big || plan.Protected {
		fmt.Fprintf(g.streams.err, "destroy %s: %d resources go. Type the deployment's name to continue: ", plan.Deployment, plan.Deletes)
		if line, _ := r.ReadString('\n'); strings.TrimSpace(line) != plan.Deployment {
			return errors.New("destroy cancelled: nothing was changed")
		}
	}
	if purged > 0 {
		fmt.Fprintf(g.streams.err, "--purge-retained: %d kept resources go too. Type purge to continue: ", purged)
		if line, _ := r.ReadString('\n'); strings.TrimSpace(line) != "purge" {
			return errors.New("destroy cancelled: nothing was changed")
		}
	}
	return nil
}

// printDestroy prints a teardown's plan and, when applied, its outcome.
func printDestroy(w io.Writer, p *project, rep *teardown.Report) {
	pl := rep.Plan
	kind := "deployment"
	if pl.Template != "" {
		kind = "personal deployment (from " + pl.Template + ")"
	}
	fmt.Fprintf(w, "%s %s in %s (account %s), %s", kind, pl.Deployment, pl.Region, pl.Account, pl.State)
	if pl.Protected {
		fmt.Fprint(w, ", protected")
	}
	if !pl.Expires.IsZero() {
		fmt.Fprintf(w, ", expires %s", pl.Expires.Format("2006-01-02T15:04:05Z"))
	}
	fmt.Fprintln(w)
	for _, r := range pl.Refused {
		fmt.Fprintf(w, "REFUSED: %s\n", r)
	}
	if len(pl.Hooks) > 0 {
		fmt.Fprintf(w, "first: pre-destroy hooks [%s]\n", strings.Join(pl.Hooks, ", "))
	}
	fmt.Fprintln(w)
	if len(rep.Items) == 0 {
		fmt.Fprintln(w, "nothing to destroy")
	} else {
		head := []string{"#", "ACTION", "TYPE", "ID", "UNIT", "NOTE"}
		if rep.Applied {
			head = append(head, "OUTCOME")
		}
		t := output.NewTable(w, head...)
		for i, it := range rep.Items {
			note := it.Note
			if it.Error != "" {
				note = it.Error
			}
			row := []string{fmt.Sprint(i + 1), string(it.Action), it.Type, shortPath(p, it.ID), it.Unit, note}
			if rep.Applied {
				row = append(row, it.Outcome)
			}
			t.Row(row...)
		}
		t.Flush()
	}
	fmt.Fprintf(w, "\n%d resources go; %d kept", pl.Deletes, len(pl.Retained))
	if len(pl.Retained) == 0 {
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, " (listed in %s):\n", recordPath(p, pl.Deployment))
		t := output.NewTable(w, "KEPT", "ID", "REASON")
		for _, r := range pl.Retained {
			t.Row(r.Type, shortPath(p, r.ID), r.Reason)
		}
		t.Flush()
	}
	for _, h := range rep.HookResults {
		switch {
		case h.Skipped:
			fmt.Fprintf(w, "hook %s: not run (done before in this teardown)\n", h.Name)
		case h.Error != "":
			fmt.Fprintf(w, "hook %s: FAILED: %s\n", h.Name, h.Error)
		default:
			fmt.Fprintf(w, "hook %s: ok (%s)\n", h.Name, h.Duration)
		}
	}
	if v := rep.Verification; v != nil {
		fmt.Fprintln(w)
		if v.Passed {
			fmt.Fprintf(w, "verified: nothing left but what is kept (%d found; %d rounds, %s", v.Kept, v.Rounds, v.Took)
		} else {
			fmt.Fprintf(w, "LEFT after %d rounds (%s", v.Rounds, v.Took)
		}
		if len(v.Stale) > 0 {
			fmt.Fprintf(w, "; %d tag-index entries confirmed gone", len(v.Stale))
		}
		fmt.Fprintln(w, ")")
		if len(v.Left) > 0 {
			t := output.NewTable(w, "LEFT", "ID", "FOUND BY", "NOTE")
			for _, l := range v.Left {
				t.Row(l.Type, l.ID, l.FoundBy, l.Note)
			}
			t.Flush()
		}
	}
	if rep.Applied {
		fmt.Fprintf(w, "\ndeployment %s is %s (run %s)\n", pl.Deployment, rep.After, rep.Run)
		if rep.Failed != "" {
			fmt.Fprintf(w, "failed: %s; run kiln destroy %s --apply again to finish\n", rep.Failed, pl.Deployment)
		}
	}
}

// shortPath shows a path in the project (a local unit's files) relative
// to it.
func shortPath(p *project, id string) string {
	if rel, ok := strings.CutPrefix(id, p.cfg.Dir+string(os.PathSeparator)); ok {
		return rel
	}
	return id
}

func recordPath(p *project, name string) string {
	return record.Dir + "/" + name + ".json"
}
