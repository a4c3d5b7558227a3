package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kiln-images/kiln/internal/cloud"
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

// Release runs every phase of run r: build, test, replicate, publish to
// channel. Each phase picks up what an earlier attempt of the same run
// made, so Release also resumes an interrupted run.
//
// In one process the phases need not wait for more than they depend on,
// and Release keeps only that on its way:
//
//   - what the run already has (its candidate, its copies in every
//     region) is looked up once, every region at once, and handed to the
//     phases instead of each asking again;
//   - with a backend that can (aws), removing the build's temporary
//     resources and waiting for the test instance to go run in the
//     background; they finish before anything is made public, and their
//     failure fails the release;
//   - a region is published as soon as its copy is available, once image
//     block public access has been checked in every region (asked during
//     the test); only the document step — exports, parameters, the
//     manifest — and then the removal of the candidate wait for every
//     region (see distribute).
//
// The single-phase commands keep their order and their barriers: a CI
// pipeline with a job per phase publishes nothing before `kiln publish`.
func (p *Pipeline) Release(ctx context.Context, r Run, channel string) (ReleaseReport, error) {
	if err := p.checkRelease(ctx, r); err != nil {
		return ReleaseReport{Run: r}, err
	}
	st, err := p.look(ctx, r)
	if err != nil {
		return ReleaseReport{Run: r}, err
	}
	if st.published() {
		pr, err := p.Publish(ctx, r, channel)
		return ReleaseReport{Run: r, Publish: &pr}, err
	}
	var bg background
	rep, err := p.release(ctx, r, channel, st, &bg)
	// Whatever happened, kiln does not leave before the background work
	// is done, and says if it failed.
	if phase, berr := bg.Wait(); berr != nil {
		p.failRun(ctx, r, phase)
		switch {
		case err == nil:
			err = berr
		case errors.As(err, new(*TestFailedError)):
			// Failed tests alone are a finding (exit 1); with resources
			// left behind this is an error.
			err = fmt.Errorf("%v\n%w", err, berr)
		default:
			err = errors.Join(err, berr)
		}
	}
	return rep, err
}

// release runs the phases of a run that is not published yet, with bg for
// the work that may overlap with later phases.
func (p *Pipeline) release(ctx context.Context, r Run, channel string, st runState, bg *background) (ReleaseReport, error) {
	rep := ReleaseReport{Run: r}
	cand, err := p.build(ctx, r, bg)
	if err != nil {
		return rep, err
	}
	rep.Candidate = cand.ID
	// Image block public access is read in every region while the test
	// runs: the answer is needed only before the first region is made
	// public, and asking costs nothing on the way there.
	checked, err := p.startPublicAccessCheck(ctx, r)
	if err != nil {
		return rep, err
	}
	defer checked()
	// A candidate made just now has no test result; one an earlier
	// attempt made may have, so it is read again.
	var known *cloud.Image
	if st.candidate == nil {
		known = &cand
	}
	t, err := p.test(ctx, r, known, false, bg)
	rep.Test = &t
	if err != nil {
		return rep, err
	}
	rr, pr, err := p.distribute(ctx, r, channel, cand, st.copies, checked, bg)
	rep.Replicate, rep.Publish = &rr, pr
	return rep, err
}

// startPublicAccessCheck starts checkPublicAccess for the run's target
// regions when its policy makes images public, and returns the wait for
// its answer.
func (p *Pipeline) startPublicAccessCheck(ctx context.Context, r Run) (func() error, error) {
	u, err := p.useCase(r)
	if err != nil {
		return nil, err
	}
	if !Permissions(u.Publish).Public {
		return func() error { return nil }, nil
	}
	regions := p.Config.TargetRegions(u)
	return async(func() error { return p.checkPublicAccess(ctx, regions) }), nil
}

// runState is what a run already has when release starts.
type runState struct {
	candidate *cloud.Image             // nil: none
	copies    map[string][]cloud.Image // target region -> the run's copies there
}

// published reports whether the run's candidate is gone while copies of it
// exist: publish removes the candidate last, so only the (idempotent)
// publish phase is left to confirm. With neither candidate nor copies, the
// run starts at build.
func (s runState) published() bool {
	if s.candidate != nil {
		return false
	}
	for _, c := range s.copies {
		if len(c) > 0 {
			return true
		}
	}
	return false
}

// look finds the run's candidate and its copies in every target region.
// Everything is asked at once: one question after another, a new run
// (which has nothing anywhere) would wait a round trip per region before
// its build starts. A run NewRun has just made, with nothing done for it
// since, is not asked about: its id is new, nothing can carry it yet (the
// backend's own look-ups by token still run).
func (p *Pipeline) look(ctx context.Context, r Run) (runState, error) {
	regions, err := p.targetRegions(r, nil)
	if err != nil {
		return runState{}, err
	}
	if r.fresh != nil && r.fresh.Swap(false) {
		st := runState{copies: make(map[string][]cloud.Image, len(regions))}
		for _, region := range regions {
			st.copies[region] = nil
		}
		return st, nil
	}
	var (
		st      runState
		candErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		cand, err := p.Candidate(ctx, r)
		switch {
		case err == nil:
			st.candidate = &cand
		case !isNotFound(err):
			candErr = err
		}
	}()
	found := make([][]cloud.Image, len(regions))
	errs := fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
		var err error
		found[slices.Index(regions, region)], err = p.Copies(ctx, r, region)
		return err
	})
	<-done
	if err := errors.Join(append([]error{candErr}, errs...)...); err != nil {
		return runState{}, err
	}
	st.copies = make(map[string][]cloud.Image, len(regions))
	for i, region := range regions {
		st.copies[region] = found[i]
	}
	return st, nil
}
