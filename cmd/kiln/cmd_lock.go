package main

import (
	"context"

	"github.com/spf13/cobra"
)

func newLockCommand(g *globalOptions) *cobra.Command {
	var reason string
	var o recordOptions
	cmd := &cobra.Command{
		Use:   "lock DEPLOYMENT --reason TEXT",
		Short: "Lock a deployment: deploys, promotions and rollbacks into it are refused",
		Long: `lock records who locked the deployment, when and why in its record (a shared
sandbox in use, a freeze). Deploys, promotions and rollbacks into it are
refused until kiln unlock. Exit 0 (also when it was locked already), 2 on error.`,
		Example: `  kiln lock prod --reason "customer demo at 3pm"`,
		Args:    exactArgs("DEPLOYMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error {
				if err := o.check(ctx, p.cfg); err != nil {
					return err
				}
				c, err := p.deployer(g).Lock(ctx, args[0], reason)
				if err != nil {
					return err
				}
				return finishChange(ctx, g, p, c, o)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why it is locked (required)")
	o.addFlags(cmd, false)
	return cmd
}
