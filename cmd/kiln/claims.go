package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kiln-images/kiln/internal/claim"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/pipeline"
)

// holdChannel claims the channel for run r's use case and architecture in
// the cloud, so that no other release or publish of them to the channel
// runs at the same time, on this machine or another; the run itself (a
// resume, here or elsewhere) holds it again. It returns the context the
// work runs in (cancelled if the claim is lost) and the function that gives
// the claim up.
func holdChannel(ctx context.Context, g *globalOptions, p *project, r pipeline.Run, ch string) (context.Context, func(), error) {
	c, ok := p.backend.(cloud.Claimer)
	if !ok {
		return ctx, func() {}, nil
	}
	name := fmt.Sprintf("%s.%s.%s.%s", p.cfg.Project, r.UseCase, r.Arch, ch)
	work, release, err := claim.Hold(ctx, c, cloud.Claim{
		Region: p.cfg.BuildRegion, Name: name, Holder: r.ID, Tags: p.pl.Tags(r, cloud.PhaseClaim),
	}, claimLease, g.logger())
	var ce *cloud.ClaimedError
	if errors.As(err, &ce) {
		return ctx, release, fmt.Errorf("channel %s of %s %s is being written by run %s (its claim is renewed while it runs, and lapses by %s if it stops): "+
			"wait for it, or finish it with kiln release --resume %s", ch, r.UseCase, r.Arch, ce.Holder, ce.Until.UTC().Format(time.RFC3339), ce.Holder)
	}
	return work, release, err
}

// claimLease is how long a claim lasts without renewal.
const claimLease = claim.DefaultLease

// abandonRun records in the journal that a run stopped before it made
// anything.
func abandonRun(ctx context.Context, p *project, id string) {
	p.journal.SetRun(context.WithoutCancel(ctx), id, "", journal.RunFailed)
}
