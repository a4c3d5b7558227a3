package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

func newStatusCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status [DEPLOYMENT]",
		Short: "Compare deployments' records with what runs; outputs and last verification",
		Long: `status reads each unit of the deployment (all deployments with a record when
none is named) as it is — VMs and processes locally, stacks and instances on
aws — and compares it with the record: a unit that is missing, stopped or
failed (a VM or process that died is reported with its exit and restarts),
or at another token than recorded, is drift. It shows the outputs, URLs,
lock, hold and the last verification.
Exit 0 in sync, 1 drift, 2 error.`,
		Example: `  kiln status                              # every deployment: record vs what runs
  kiln status prod -o json`,
		Args: maxArgs("DEPLOYMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runStatus(ctx, g, p, args) })
		},
	}
}

func runStatus(ctx context.Context, g *globalOptions, p *project, args []string) error {
	d := p.deployer(g)
	names := args
	if len(names) == 0 {
		list, err := d.List()
		if err != nil {
			return err
		}
		for _, e := range list {
			if e.Kind != "template" && e.State != "new" {
				names = append(names, e.Name)
			}
		}
	}
	rep := report.Status{Schema: report.SchemaStatus, Deployments: []*deploy.StatusReport{}}
	drifted := 0
	for _, n := range names {
		st, err := d.Status(ctx, n)
		if err != nil {
			return err
		}
		if len(st.Drift) > 0 {
			drifted++
		}
		rep.Deployments = append(rep.Deployments, st)
	}
	if g.json() {
		if err := g.write(rep); err != nil {
			return err
		}
	} else {
		for i, st := range rep.Deployments {
			if i > 0 {
				fmt.Fprintln(g.streams.out)
			}
			printStatus(g.streams.out, st)
		}
		if len(names) == 0 {
			fmt.Fprintln(g.streams.out, "no deployments deployed yet")
		}
	}
	if drifted > 0 {
		return findings("%d of %d deployments differ from their records", drifted, len(names))
	}
	return nil
}

func printStatus(w io.Writer, st *deploy.StatusReport) {
	rel := "none"
	if st.Release != nil {
		rel = st.Release.ID
	}
	fmt.Fprintf(w, "deployment %s: %s, release %s", st.Deployment, st.State, rel)
	if !st.DeployedAt.IsZero() {
		fmt.Fprintf(w, ", deployed %s by %s", st.DeployedAt.Format("2006-01-02T15:04:05Z"), st.DeployedBy)
	}
	fmt.Fprintln(w)
	if st.Lock != nil {
		fmt.Fprintf(w, "locked by %s: %s\n", st.Lock.By, st.Lock.Reason)
	}
	if st.Hold != nil {
		fmt.Fprintf(w, "held by %s: %s\n", st.Hold.By, st.Hold.Reason)
	}
	if len(st.Units) > 0 {
		t := output.NewTable(w, "UNIT", "KIND", "STATE", "WANT", "RESTARTS", "PROBLEM")
		for _, u := range st.Units {
			t.Row(u.Name, u.Kind, string(u.State), string(u.Want), fmt.Sprint(u.Restarts), u.Problem)
		}
		t.Flush()
	}
	for _, k := range sortedOutputs(st.Outputs) {
		fmt.Fprintf(w, "output %s = %s\n", k, st.Outputs[k])
	}
	if v := st.LastVerification; v != nil {
		outcome := map[bool]string{true: "passed", false: "FAILED"}[v.Passed]
		fmt.Fprintf(w, "last verification: %s at %s (release %s)\n", outcome, v.At.Format("2006-01-02T15:04:05Z"), v.Release)
	} else {
		fmt.Fprintln(w, "last verification: never")
	}
	if len(st.Drift) == 0 {
		fmt.Fprintln(w, "in sync with its record")
		return
	}
	fmt.Fprintf(w, "DRIFT:\n  %s\n", strings.Join(st.Drift, "\n  "))
}
