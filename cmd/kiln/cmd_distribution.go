package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDistributionCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "distribution",
		Short: "The CDN and firewall stacks of the downloads (aws)",
		RunE:  func(cmd *cobra.Command, args []string) error { return errors.New("not built yet") },
	}
	return cmd
}
