package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

func newDeploymentsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "deployments",
		Short: "List the project's deployments, templates and personal deployments",
		Long: `deployments lists kiln.yaml's deployments and templates and the personal
deployments their records hold: region, state, release, last verification,
lock, hold and expiry. It reads the records only, not the cloud (kiln status
does). Exit 0, or 2 on error.`,
		Example: `  kiln deployments
  kiln deployments -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runDeployments(ctx, g, p) })
		},
	}
}

func runDeployments(ctx context.Context, g *globalOptions, p *project) error {
	list, err := p.deployer(g).List()
	if err != nil {
		return err
	}
	if g.json() {
		return g.write(report.Deployments{Schema: report.SchemaDeployments, Deployments: list})
	}
	t := output.NewTable(g.streams.out, "NAME", "KIND", "REGION", "STATE", "RELEASE", "VERIFIED", "FLAGS")
	for _, e := range list {
		flags := ""
		for _, f := range []struct {
			on   bool
			name string
		}{{e.Locked, "locked"}, {e.Held, "held"}, {e.Expired, "expired"}} {
			if f.on {
				flags += f.name + " "
			}
		}
		if !e.Expires.IsZero() && !e.Expired {
			flags += "expires " + e.Expires.Format("2006-01-02")
		}
		verified := e.Verified
		if verified != "" {
			verified += " " + e.VerifiedAt.Format("2006-01-02T15:04Z")
		}
		t.Row(e.Name, e.Kind, e.Region, string(e.State), e.Release, verified, flags)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(g.streams.out, "no deployments in kiln.yaml")
	}
	return nil
}
