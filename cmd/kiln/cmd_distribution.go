package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/cdn"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

func newDistributionCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "distribution plan|deploy",
		Short: "Plan or deploy the bucket, CDN and firewall of the downloads (aws)",
		Long: `distribution manages the two CloudFormation stacks behind the downloads of an aws
project (distribution.aws), both tagged with the project, its cost tag and
kiln:retain=true:

  <project>-downloads-firewall (us-east-1)  AWS WAF web ACL: the allow-list,
      a rate-based rule (distribution.rate_limit, per address; 429), and a
      CAPTCHA or challenge outside the allow-list, never on the paths
      command-line clients download from (distribution.aws.cli_paths)
  <project>-downloads (distribution.aws.region)  a private bucket (owner
      enforced, public access blocked, encrypted, versioned, a lifecycle for
      retired files) read only by a CloudFront distribution through origin
      access control, guarded by the web ACL

plan makes a change set per stack and shows it; deploy executes them (the
firewall first) and reads the web ACL back.`,
		Example: `  kiln distribution plan
  kiln distribution deploy -o json`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "plan",
		Short:   "Make and show the change sets of the two stacks; deploy nothing",
		Long:    "Exit 0 (whether or not there are changes), 2 on error.",
		Example: "  kiln distribution plan",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runDistribution(ctx, g, p, false) })
		},
	}, &cobra.Command{
		Use:     "deploy",
		Short:   "Execute the change sets: the firewall, then the site",
		Long:    "Exit 0 when deployed as configured, 1 when the deployed web ACL differs from the configuration, 2 on error.",
		Example: "  kiln distribution deploy",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runDistribution(ctx, g, p, true) })
		},
	})
	return cmd
}

func runDistribution(ctx context.Context, g *globalOptions, p *project, deploy bool) error {
	if p.cfg.Backend.Type != "aws" || p.cfg.Distribution == nil {
		return usageError(fmt.Errorf("kiln distribution deploys the CDN of an aws project with a distribution section; %s has backend %s%s (with the local backend, kiln serve serves the downloads)",
			p.cfg.Path, p.cfg.Backend.Type, map[bool]string{true: " and no distribution section", false: ""}[p.cfg.Distribution == nil]))
	}
	spec, err := cdn.SpecOf(p.cfg)
	if err != nil {
		return usageError(err)
	}
	ab, ok := p.backend.(interface {
		SDKConfig() aws.Config
		CheckAccount(context.Context) error
	})
	if !ok {
		return fmt.Errorf("backend %s cannot deploy stacks", p.backend.Name())
	}
	if err := ab.CheckAccount(ctx); err != nil {
		return err
	}
	st := cdn.NewStacks(ab.SDKConfig(), spec, g.logger())
	st.Poll = p.cfg.Backend.AWS.PollInterval.Std()
	st.Hook = p.pl.Hook
	var rep *cdn.Report
	if deploy {
		rep, err = st.Deploy(ctx)
	} else {
		rep, err = st.Plan(ctx)
	}
	if rep != nil {
		if g.json() {
			if werr := g.write(report.Distribution{Schema: report.SchemaDistribution, Report: rep}); werr != nil && err == nil {
				err = werr
			}
		} else {
			printDistribution(g, rep)
		}
	}
	if err != nil {
		return err
	}
	if !deploy {
		fmt.Fprintln(g.streams.err, "nothing was deployed; run `kiln distribution deploy` to execute these change sets")
	}
	if len(rep.Problems) > 0 {
		return findings("the deployed web ACL differs from the configuration: %s", strings.Join(rep.Problems, "; "))
	}
	return nil
}

func printDistribution(g *globalOptions, rep *cdn.Report) {
	w := g.streams.out
	for _, s := range rep.Stacks {
		fmt.Fprintf(w, "stack %s (%s): %s, change set %s (%s)\n", s.Name, s.Region, s.Status, orDash(s.ChangeSet), s.Type)
		if s.Note != "" {
			fmt.Fprintf(w, "  %s\n", s.Note)
		}
		t := output.NewTable(w, "  ACTION", "RESOURCE", "TYPE", "REPLACEMENT")
		for _, c := range s.Changes {
			t.Row("  "+c.Action, c.LogicalID, c.Type, c.Replacement)
		}
		t.Flush()
		fmt.Fprintln(w)
	}
	if rep.URL != "" {
		fmt.Fprintf(w, "downloads: %s/streams/v1/index.json\n", rep.URL)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
