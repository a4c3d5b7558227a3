package main

import (
	"context"
	"fmt"

	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/report"
)

// changeReport is the report of lock, unlock, approve, disable and
// enable, each under its own schema.
// finishChange commits the record when asked and prints the change.
func finishChange(ctx context.Context, g *globalOptions, p *project, c *deploy.Change, o recordOptions) error {
	var commit string
	if c.Changed {
		var err error
		if commit, err = o.record(ctx, g, p.cfg, c.Deployment, fmt.Sprintf("%s: %s (%s)", c.Deployment, c.Action, c.Detail), true); err != nil {
			return err
		}
	}
	if g.json() {
		return g.write(report.DeploymentChange{Schema: "kiln." + c.Action + "/v1", Change: c, Commit: commit})
	}
	if c.Changed {
		fmt.Fprintf(g.streams.out, "%s %s: %s (state %s)\n", c.Action, c.Deployment, c.Detail, c.State)
	} else {
		fmt.Fprintf(g.streams.out, "%s %s: nothing to do: %s\n", c.Action, c.Deployment, c.Detail)
	}
	return nil
}
