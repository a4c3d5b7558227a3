package main

import (
	"context"

	"github.com/spf13/cobra"
)

func newUnlockCommand(g *globalOptions) *cobra.Command {
	var o recordOptions
	cmd := &cobra.Command{
		Use:     "unlock DEPLOYMENT",
		Short:   "Remove a deployment's lock",
		Example: `  kiln unlock prod`,
		Args:    exactArgs("DEPLOYMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error {
				if err := o.check(ctx, p.cfg); err != nil {
					return err
				}
				c, err := p.deployer(g).Unlock(ctx, args[0])
				if err != nil {
					return err
				}
				return finishChange(ctx, g, p, c, o)
			})
		},
	}
	o.addFlags(cmd, false)
	return cmd
}
