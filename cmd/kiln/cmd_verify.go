package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/output"
)

type verifyOptions struct {
	recordOpt recordOptions
}

func newVerifyCommand(g *globalOptions) *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify DEPLOYMENT",
		Short: "Run a deployment's checks and record the outcome",
		Long: `verify runs the deployment's checks (HTTP: status, a JSON field equal to the
deployed version or image id, a body pattern; commands) against what its
record says runs there, each measured count times, interval apart, and
judged with its failure limit and consecutive error limit as Argo Rollouts
judges an analysis. The outcome goes into the record's history, which
promotion gates read.
Exit 0 when every check passed, 1 when one failed, 2 on error.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError(errors.New("name the deployment to verify (kiln deployments lists them)"))
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runVerify(ctx, g, p, args[0], o) })
		},
	}
	o.recordOpt.addFlags(cmd, false)
	return cmd
}

type verifyReport struct {
	Schema string `json:"schema"`
	*deploy.VerifyReport
	Commit string `json:"commit,omitempty"`
}

func runVerify(ctx context.Context, g *globalOptions, p *project, name string, o verifyOptions) error {
	if err := o.recordOpt.check(ctx, p.cfg); err != nil {
		return err
	}
	rep, err := p.deployer(g).Verify(ctx, name)
	if err != nil {
		return err
	}
	outcome := map[bool]string{true: "passed", false: "failed"}[rep.Verification.Passed]
	commit, err := o.recordOpt.record(ctx, g, p.cfg, name, fmt.Sprintf("%s: verification of %s %s", name, rep.Release, outcome), true)
	if err != nil {
		return err
	}
	if g.format == output.JSON {
		if err := output.WriteJSON(g.streams.out, verifyReport{Schema: "kiln.verify/v1", VerifyReport: rep, Commit: commit}); err != nil {
			return err
		}
	} else {
		printVerification(g.streams.out, rep.Verification)
		fmt.Fprintf(g.streams.out, "\ndeployment %s, release %s: verification %s\n", name, rep.Release, outcome)
	}
	if !rep.Verification.Passed {
		return findings("")
	}
	return nil
}
