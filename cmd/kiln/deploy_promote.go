package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

// The deployment side of kiln promote and kiln rollback: when --from or
// --to name deployments, promote moves a deployment's verified release
// to another; rollback DEPLOYMENT --ref REF redeploys the release a git
// ref recorded. cmd_promote.go and cmd_rollback.go dispatch here.

// deploymentPromoteOptions are promote's flags that only deployments use.
type deploymentPromoteOptions struct {
	liftHold, noVerify bool
}

func (o *deploymentPromoteOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.liftHold, "lift-hold", false, "deployments: promote past the target's hold (left by a manual rollback) and remove it")
	cmd.Flags().BoolVar(&o.noVerify, "no-verify", false, "deployments: do not verify the target afterwards")
}

// promoteDeployments runs promote when --from or --to names a deployment;
// handled is false when they name channels.
func promoteDeployments(cmd *cobra.Command, g *globalOptions, args []string, o promoteOptions) (handled bool, err error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return true, err
	}
	if !deploymentExists(cfg, o.from) && !deploymentExists(cfg, o.to) {
		if len(args) == 0 {
			return true, usageError(errors.New("name the use case to promote between channels, or give deployments as --from and --to"))
		}
		return false, nil
	}
	if len(args) > 0 {
		return true, usageError(fmt.Errorf("promotion between deployments (--from %s --to %s) takes no use case; the release is what %s runs", o.from, o.to, o.from))
	}
	if o.mergeRequest || o.pushTo != "" {
		return true, usageError(errors.New("--merge-request and --push-to record a channel's manifest; a promotion between deployments records with --commit [--push]"))
	}
	return true, g.withProject(cmd, func(ctx context.Context, p *project) error { return runDeploymentPromote(ctx, g, p, o) })
}

func runDeploymentPromote(ctx context.Context, g *globalOptions, p *project, o promoteOptions) error {
	rec := recordOptions{commit: o.commit, push: o.push}
	if err := rec.check(ctx, p.cfg); err != nil {
		return err
	}
	rep, err := p.deployer(g).Promote(ctx, o.from, o.to, deploy.PromoteOptions{Apply: o.apply, LiftHold: o.dep.liftHold, NoVerify: o.dep.noVerify})
	if rep == nil {
		return err
	}
	var commit string
	if rep.Deploy != nil && rep.Deploy.Applied {
		var cerr error
		commit, cerr = rec.record(ctx, g, p.cfg, o.to, fmt.Sprintf("%s: promote %s from %s", o.to, rep.Release.ID, o.from), err == nil)
		if err == nil {
			err = cerr
		}
	}
	if g.json() {
		if werr := g.write(report.PromoteDeployment{Schema: report.SchemaPromoteDeployment, PromoteReport: rep, Passed: rep.Passed(), Commit: commit}); werr != nil {
			return werr
		}
	} else {
		fmt.Fprintf(g.streams.out, "promote release %s from %s to %s\n\n", rep.Release.ID, o.from, o.to)
		t := output.NewTable(g.streams.out, "GATE", "RESULT", "DETAIL")
		for _, gt := range rep.Gates {
			t.Row(gt.Name, map[bool]string{true: "pass", false: "FAIL"}[gt.Passed], gt.Detail)
		}
		t.Flush()
		if rep.Deploy != nil {
			fmt.Fprintln(g.streams.out)
			printDeploy(g.streams.out, rep.Deploy)
		}
	}
	if err == nil && !o.apply {
		fmt.Fprintln(g.streams.err, "all gates pass; nothing was changed; rerun with --apply")
	}
	return deployError(err)
}

// addDeploymentRollbackFlags adds rollback's flags for deployments: --ref
// (unless the command has it already) and --no-verify.
func addDeploymentRollbackFlags(cmd *cobra.Command) {
	if cmd.Flags().Lookup("ref") == nil {
		cmd.Flags().String("ref", "", "git ref (tag or commit) holding the record or manifest to restore")
	}
	cmd.Flags().Bool("no-verify", false, "deployments: do not verify after the rollback")
}

// runDeploymentRollback is kiln rollback DEPLOYMENT --ref REF.
func runDeploymentRollback(ctx context.Context, g *globalOptions, p *project, cmd *cobra.Command, name string, apply bool, co commitOptions) error {
	ref, _ := cmd.Flags().GetString("ref")
	noVerify, _ := cmd.Flags().GetBool("no-verify")
	if ref == "" {
		return usageError(errors.New("rollback of a deployment takes --ref REF: the git ref whose record names the release to go back to"))
	}
	if ch, _ := cmd.Flags().GetString("channel"); ch != "" {
		return usageError(errors.New("give a deployment or --channel, not both"))
	}
	if mr, _ := cmd.Flags().GetBool("merge-request"); mr || cmd.Flags().Changed("push-to") {
		return usageError(errors.New("--merge-request and --push-to record a channel's manifest; a rollback of a deployment records with --commit [--push]"))
	}
	rec := recordOptions{commit: co.commit, push: co.push}
	if err := rec.check(ctx, p.cfg); err != nil {
		return err
	}
	rep, err := p.deployer(g).Rollback(ctx, name, ref, apply, noVerify)
	if rep == nil {
		return err
	}
	var commit string
	if rep.Applied {
		var cerr error
		commit, cerr = rec.record(ctx, g, p.cfg, name, fmt.Sprintf("%s: roll back to %s (release %s)", name, ref, rep.Release.ID), err == nil)
		if err == nil {
			err = cerr
		}
	}
	if g.json() {
		if werr := g.write(report.RollbackDeployment{Schema: report.SchemaRollbackDeployment, Report: rep, Commit: commit}); werr != nil {
			return werr
		}
	} else {
		printDeploy(g.streams.out, rep)
		if rep.Applied {
			fmt.Fprintf(g.streams.out, "%s is held: promotions into it wait for one with --lift-hold\n", name)
		}
	}
	if err == nil && !apply {
		fmt.Fprintln(g.streams.err, "nothing was changed; rerun with --apply")
	}
	return deployError(err)
}
