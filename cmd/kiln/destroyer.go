package main

import (
	"context"

	"github.com/kiln-images/kiln/internal/cloud/aws"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/deploy/localunit"
	"github.com/kiln-images/kiln/internal/teardown"
	"github.com/kiln-images/kiln/internal/teardown/awsres"
)

// destroyer returns the project's teardown engine: the deployment core,
// the backend's unit kinds and inventory, and what finds the rest (aws:
// buckets, repositories, log groups, user pools, roles and the tag
// index; local: the parts earlier teardowns kept).
func (p *project) destroyer(ctx context.Context, g *globalOptions) (*teardown.Destroyer, error) {
	d := &teardown.Destroyer{
		Config:      p.cfg,
		Deployments: p.deployer(g),
		Kinds:       unitKinds(p, g),
		Assets:      p.backend,
		Journal:     p.journal,
		Who:         who(p.cfg.Dir),
		Hook:        p.pl.Hook,
		Progress:    p.pl.Progress,
		Log:         g.logger(),
		Concurrency: teardown.DefaultConcurrency,
	}
	switch b := p.backend.(type) {
	case *local.Backend:
		d.Leftovers = localunit.Retained{StateDir: p.cfg.StateDir()}
	case *aws.Backend:
		acct := awsres.New(b.SDKConfig(), g.logger())
		d.Leftovers, d.Index = acct, acct
	}
	return d, nil
}
