package main

import (
	"context"

	"github.com/spf13/cobra"
)

func newDisableCommand(g *globalOptions) *cobra.Command {
	var o recordOptions
	cmd := &cobra.Command{
		Use:   "disable DEPLOYMENT",
		Short: "Stop a deployment's compute without deleting anything (kill switch)",
		Long: `disable stops every unit of the deployment, last applied first: VMs shut down
cleanly (ACPI over QMP), processes end, instances stop. Nothing is deleted;
kiln enable starts them again. Deploys and promotions into a disabled
deployment are refused. Exit 0, 2 on error.`,
		Example: `  kiln disable dev                         # stop its units cleanly; the record says disabled`,
		Args:    exactArgs("DEPLOYMENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error {
				if err := o.check(ctx, p.cfg); err != nil {
					return err
				}
				c, err := p.deployer(g).SetEnabled(ctx, args[0], false)
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
