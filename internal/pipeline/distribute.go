package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/fanout"
	"github.com/kiln-images/kiln/internal/journal"
)

// errHeldBack is why nothing was made public when background work of the
// earlier phases failed; Release adds that failure after it.
var errHeldBack = errors.New("nothing was made public: removing the temporary resources of the build or test failed")

// distribute is replicate and publish of release in one fan-out: each
// region copies the tested candidate cand and, once its copy is available
// and the publish gate is open, gives it the launch permissions,
// deprecation and channel tag of the policy and reads it back. The gate
// opens when checked reports that image block public access is off in
// every target region and bg's work is done; if either fails, nothing is
// made public. Only the document step (exports, parameters, manifest)
// waits for every region, so the manifest still holds only images seen
// available and as published, and is written only when every region has
// one. The candidate is removed last, as publish does.
//
// known holds the run's copies per region as release found them before
// the build. The reports are those the single phases would give; the
// publish report lists the regions publishing was tried in.
func (p *Pipeline) distribute(ctx context.Context, r Run, channelName string, cand cloud.Image, known map[string][]cloud.Image, checked func() error, bg *background) (ReplicateReport, *PublishReport, error) {
	rrep := ReplicateReport{Run: r, Source: cand.ID}
	u, err := p.useCase(r)
	if err != nil {
		return rrep, nil, err
	}
	prep := &PublishReport{Run: r, Channel: channelName}
	if prep.Manifest, err = p.Config.ManifestPath(channelName); err != nil {
		return rrep, nil, err
	}
	if err := p.Journal.SetRun(ctx, r.ID, cloud.PhaseReplicate, journal.RunRunning); err != nil {
		return rrep, nil, fmt.Errorf("journal: %w", err)
	}
	regions := p.Config.TargetRegions(u)
	perms := Permissions(u.Publish)
	prep.Public, prep.Deprecation = perms.Public, Deprecation(r, u.Publish)

	var (
		gateOnce sync.Once
		gateErr  error
	)
	gate := func() error {
		gateOnce.Do(func() {
			if gateErr = checked(); gateErr != nil {
				return
			}
			if _, err := bg.Wait(); err != nil {
				gateErr = errHeldBack
				return
			}
			if err := p.Journal.SetRun(ctx, r.ID, cloud.PhasePublish, journal.RunRunning); err != nil {
				gateErr = fmt.Errorf("journal: %w", err)
			}
		})
		return gateErr
	}

	name, tags, err := p.copySpec(r, cand)
	if err != nil {
		return rrep, prep, err
	}
	n := len(regions)
	var (
		copies    = make([]cloud.Image, n)
		copyErrs  = make([]error, n)
		published = make([]*RegionResult, n)
		pubErrs   = make([]error, n)
		back      = make([]readBack, n)
	)
	rrep.Regions = make([]RegionResult, n)
	fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
		i := slices.Index(regions, region)
		copies[i], rrep.Regions[i], copyErrs[i] = p.replicateRegion(ctx, r, cand, region, name, tags, known)
		if copyErrs[i] != nil || gate() != nil {
			return nil
		}
		res, rb, err := p.publishRegion(ctx, r, channelName, region, copies[i], perms, prep.Deprecation)
		published[i], back[i], pubErrs[i] = &res, rb, err
		return nil
	})
	for _, res := range published {
		if res != nil {
			prep.Regions = append(prep.Regions, *res)
		}
	}
	// Regions not reached because ctx ended have no result at all.
	if err := ctx.Err(); err != nil {
		return rrep, prep, err
	}
	if err := regionsError(cloud.PhaseReplicate, r, regions, copyErrs); err != nil {
		p.failRun(ctx, r, cloud.PhaseReplicate)
		return rrep, prep, err
	}
	if err := gate(); err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rrep, prep, err
	}
	if err := regionsError(cloud.PhasePublish, r, regions, pubErrs); err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rrep, prep, err
	}

	// Document: only what is seen in the cloud goes into the manifest.
	byRegion := make(map[string]cloud.Image, n)
	for i, region := range regions {
		byRegion[region] = copies[i]
	}
	entries, err := manifestEntries(regions, byRegion, back, perms.Public)
	if err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rrep, prep, err
	}
	if err := p.document(ctx, r, u, channelName, byRegion, entries, prep); err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rrep, prep, err
	}
	// The candidate was only the source of the copies. It goes last, with
	// nothing else under way: a crash in the middle of removing it (on
	// moto, between deregistering it and deleting its snapshot) must not
	// leave a run whose resume takes the publish path with parts of it
	// behind.
	if err := p.removeCandidate(ctx, r, cand); err != nil {
		return rrep, prep, err
	}
	prep.CandidateGone = true
	if err := p.Journal.SetRun(ctx, r.ID, cloud.PhasePublish, journal.RunSucceeded); err != nil {
		return rrep, prep, fmt.Errorf("journal: %w", err)
	}
	return rrep, prep, nil
}

// regionsError is a *RegionsError for the regions whose entry in errs is
// set, or nil.
func regionsError(phase string, r Run, regions []string, errs []error) error {
	failed := map[string]error{}
	for i, err := range errs {
		if err != nil {
			failed[regions[i]] = err
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &RegionsError{Phase: phase, RunID: r.ID, Errors: failed}
}
