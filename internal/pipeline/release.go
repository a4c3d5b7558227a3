package pipeline

import (
	"context"
	"errors"
	"slices"

	"github.com/kiln-images/kiln/internal/fanout"
)

// ReleaseReport is the outcome of every phase of a run.
type ReleaseReport struct {
	Run       Run              `json:"run"`
	Candidate string           `json:"candidate,omitempty"`
	Test      *TestReport      `json:"test,omitempty"`
	Replicate *ReplicateReport `json:"replicate,omitempty"`
	Publish   *PublishReport   `json:"publish,omitempty"`
}

// Release runs every phase of run r in order: build, test, replicate,
// publish to channel. Each phase picks up what an earlier attempt of the
// same run made, so Release also resumes an interrupted run.
func (p *Pipeline) Release(ctx context.Context, r Run, channel string) (ReleaseReport, error) {
	rep := ReleaseReport{Run: r}
	done, err := p.published(ctx, r)
	if err != nil {
		return rep, err
	}
	if !done {
		cand, err := p.Build(ctx, r)
		if err != nil {
			return rep, err
		}
		rep.Candidate = cand.ID
		t, err := p.Test(ctx, r, false)
		rep.Test = &t
		if err != nil {
			return rep, err
		}
		rr, err := p.Replicate(ctx, r, nil)
		rep.Replicate = &rr
		if err != nil {
			return rep, err
		}
	}
	pr, err := p.Publish(ctx, r, channel)
	rep.Publish = &pr
	return rep, err
}

// published reports whether the run's candidate is gone while copies of it
// exist: publish removes the candidate last, so only the (idempotent) publish
// phase is left to confirm. With neither candidate nor copies, the run starts
// at build.
func (p *Pipeline) published(ctx context.Context, r Run) (bool, error) {
	_, err := p.Candidate(ctx, r)
	if err == nil || !isNotFound(err) {
		return false, err
	}
	regions, err := p.targetRegions(r, nil)
	if err != nil {
		return false, err
	}
	// Every region is asked at once: one after another, a new run (which
	// has no copies anywhere) would wait a round trip per region before
	// its build starts.
	found := make([]bool, len(regions))
	errs := fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
		copies, err := p.Copies(ctx, r, region)
		found[slices.Index(regions, region)] = len(copies) > 0
		return err
	})
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	return slices.Contains(found, true), nil
}
