package main

import (
	"context"

	"github.com/spf13/cobra"
)

func newApproveCommand(g *globalOptions) *cobra.Command {
	var release, comment string
	var o recordOptions
	cmd := &cobra.Command{
		Use:   "approve DEPLOYMENT [--release ID] [--comment TEXT]",
		Short: "Record your approval of a release for a deployment (its approval gate)",
		Long: `approve records in the deployment's record that you (git's user.email, or
$KILN_USER) approve a release for it, with the time and a comment. A
deployment whose promote.approval is true takes a promotion only of an
approved release. The release defaults to the one the deployment would be
promoted from now (what its promote.from deployment runs).
Exit 0, 2 on error.`,
		Example: `  kiln approve prod --comment "change 4711"    # approves staging's verified release for prod
  kiln approve prod --release 20261203-101500-ab12`,
		Args: exactArgs("DEPLOYMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error {
				if err := o.check(ctx, p.cfg); err != nil {
					return err
				}
				c, err := p.deployer(g).Approve(ctx, args[0], release, comment)
				if err != nil {
					return err
				}
				return finishChange(ctx, g, p, c, o)
			})
		},
	}
	cmd.Flags().StringVar(&release, "release", "", "the release id to approve (default: what promote.from runs)")
	cmd.Flags().StringVar(&comment, "comment", "", "a note kept with the approval")
	o.addFlags(cmd, false)
	return cmd
}
