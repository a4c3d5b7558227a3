package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/output"
)

func newDeploymentsCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "deployments",
		Short: "List the project's deployments, templates and personal deployments",
		Long: `deployments lists kiln.yaml's deployments and templates and the personal
deployments their records hold: region, state, release, last verification,
lock, hold and expiry. It reads the records only, not the cloud (kiln status
does). Exit 0, or 2 on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runDeployments(ctx, g, p) })
		},
	}
}

type deploymentsReport struct {
	Schema      string             `json:"schema"`
	Deployments []deploy.ListEntry `json:"deployments"`
}

func runDeployments(ctx context.Context, g *globalOptions, p *project) error {
	list, err := p.deployer(g).List()
	if err != nil {
		return err
	}
	if g.format == output.JSON {
		return output.WriteJSON(g.streams.out, deploymentsReport{Schema: "kiln.deployments/v1", Deployments: list})
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
