package main

import (
	"context"

	"github.com/spf13/cobra"
)

func newEnableCommand(g *globalOptions) *cobra.Command {
	var o recordOptions
	cmd := &cobra.Command{
		Use:   "enable DEPLOYMENT",
		Short: "Start a disabled deployment's compute again",
		Long: `enable starts the units of a disabled deployment as they were deployed. A unit
kiln.yaml changed since is refused: deploy to apply changes. Exit 0, 2 on error.`,
		Example: `  kiln enable dev`,
		Args:    exactArgs("DEPLOYMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error {
				if err := o.check(ctx, p.cfg); err != nil {
					return err
				}
				c, err := p.deployer(g).SetEnabled(ctx, args[0], true)
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
