package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/spf13/cobra"
)

type verifyOptions struct {
	recordOpt recordOptions
}

func newVerifyCommand(g *globalOptions) *cobra.Command {
	var o verifyOptions
	var img verifyImageOptions
	cmd := &cobra.Command{
		Use:   "verify DEPLOYMENT | verify --image FILE [--index URL|DIR] [--public-key KEY|FILE]",
		Short: "Run a deployment's checks, or check a downloaded image against the signed index",
		Long: `verify DEPLOYMENT runs the deployment's checks (HTTP: status, a JSON field
equal to the deployed version or image id, a body pattern; commands) against
what its record says runs there, each measured count times, interval apart,
and judged with its failure limit and consecutive error limit as Argo
Rollouts judges an analysis. The outcome goes into the record's history,
which promotion gates read.

verify --image FILE checks a downloaded file: it fetches the index
(streams/v1/index.json under URL or DIR; default the project's distribution
tree), verifies its minisign signature with the project's public key
(distribution.public_key, or --public-key: the RW... line or a minisign.pub
file), checks every products file against the index and its own signature,
and looks the file's sha256 up among the indexed files — a decompressed .gz
matches its uncompressed sha256. Without a kiln.yaml, give --index and
--public-key.

Exit 0 when every check passed (the file is verified), 1 when one failed
(corrupt, incomplete, not in the index, or a signature that does not
verify), 2 on error.`,
		Example: `  kiln verify dev                                       # dev's checks, recorded
  kiln verify staging --commit
  kiln verify --image debian-sandbox-x86_64-1.0.qcow2
  kiln verify --image disk.raw.gz --index https://images.example.org/ --public-key minisign.pub`,
		Args: maxArgs("DEPLOYMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("image") || cmd.Flags().Changed("index") || cmd.Flags().Changed("public-key") {
				if len(args) > 0 {
					return argError(cmd, "give a deployment or --image FILE, not both")
				}
				return runVerifyImage(cmd.Context(), g, img)
			}
			if len(args) == 0 {
				return usageError(errors.New("name the deployment to verify (kiln deployments lists them), or give --image FILE"))
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runVerify(ctx, g, p, args[0], o) })
		},
	}
	img.addFlags(cmd)
	o.recordOpt.addFlags(cmd, false)
	return cmd
}

func runVerify(ctx context.Context, g *globalOptions, p *project, name string, o verifyOptions) error {
	if err := o.recordOpt.check(ctx, p.cfg); err != nil {
		return err
	}
	rep, err := p.deployer(g).Verify(ctx, name)
	if err != nil {
		return err
	}
	commit, err := o.recordOpt.record(ctx, g, p.cfg, name, verifySubject(rep), true)
	if err != nil {
		return err
	}
	if g.json() {
		if err := g.write(report.Verify{Schema: report.SchemaVerify, VerifyReport: rep, Commit: commit}); err != nil {
			return err
		}
	} else {
		printVerification(g.streams.out, rep.Verification)
		fmt.Fprintf(g.streams.out, "\ndeployment %s, release %s: verification %s\n", name, rep.Release, verifyOutcome(rep))
	}
	if !rep.Verification.Passed {
		return findings("")
	}
	return nil
}

func verifyOutcome(rep *deploy.VerifyReport) string {
	if rep.Verification.Passed {
		return "passed"
	}
	return "failed"
}

// verifySubject is the commit subject of a verification's record.
func verifySubject(rep *deploy.VerifyReport) string {
	return fmt.Sprintf("%s: verification of %s %s", rep.Deployment, rep.Release, verifyOutcome(rep))
}
