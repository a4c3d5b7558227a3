package pipeline

import (
	"context"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Indexer makes releases downloadable (package distribute, wired by the
// commands): it refuses a run that may not be published, before anything
// is changed, and indexes a run's files once its manifest is written.
type Indexer interface {
	// CheckRelease fails when r may not be published: the release
	// checklist does not hold or the signing key cannot be read.
	CheckRelease(ctx context.Context, r Run) error
	// IndexRelease places r's files in the download tree and writes the
	// signed index of channel.
	IndexRelease(ctx context.Context, r Run, channel string) error
}

// checkRelease asks the indexer, when there is one, whether r may be
// published.
func (p *Pipeline) checkRelease(ctx context.Context, r Run) error {
	if p.Indexer == nil {
		return nil
	}
	return p.Indexer.CheckRelease(ctx, r)
}

// index is the last step of the document step: the downloads, after the
// manifest they follow.
func (p *Pipeline) index(ctx context.Context, r Run, channel string) error {
	if p.Indexer == nil {
		return nil
	}
	return p.step(ctx, r, cloud.PhasePublish, "index", "", channel, func(ctx context.Context) (string, error) {
		return channel, p.Indexer.IndexRelease(ctx, r, channel)
	})
}
