package pipeline

import (
	"context"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Document runs fn, which records run r's manifest change outside the
// manifest file (a push, a merge request), as a journaled step of the
// publish phase named name: detail (where it goes) before, the resource
// fn returns (the request's URL, the commit) after. Its boundaries are
// step boundaries for the crash harness like any other.
func (p *Pipeline) Document(ctx context.Context, r Run, name, detail string, fn func(context.Context) (string, error)) error {
	return p.step(ctx, r, cloud.PhasePublish, name, "", detail, fn)
}
