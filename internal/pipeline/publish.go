package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/fanout"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
)

// PublishReport is the outcome of the publish phase, which ends with the
// document step (the channel manifest).
type PublishReport struct {
	Run           Run               `json:"run"`
	Channel       string            `json:"channel"`
	Manifest      string            `json:"manifest"`
	Public        bool              `json:"public"`
	Deprecation   time.Time         `json:"deprecation,omitzero"`
	Regions       []RegionResult    `json:"regions"`
	Changes       []manifest.Change `json:"changes"`
	Parameters    int               `json:"parameters"`
	Exports       []cloud.Export    `json:"exports,omitempty"`
	CandidateGone bool              `json:"candidate_removed"`
}

// Permissions are the launch permissions a publish policy grants.
func Permissions(pol config.Publish) cloud.LaunchPermissions {
	return cloud.LaunchPermissions{
		Public:              pol.Public,
		Accounts:            slices.Clone(pol.Accounts),
		Organizations:       slices.Clone(pol.Organizations),
		OrganizationalUnits: slices.Clone(pol.OrganizationalUnits),
	}
}

// Deprecation is when a run's images are deprecated under its use case's
// policy: deprecate_after from the run's start, so that every rerun of the
// phase computes the same time. Zero means never.
func Deprecation(r Run, pol config.Publish) time.Time {
	if pol.DeprecateAfter.Std() <= 0 {
		return time.Time{}
	}
	return r.Created.UTC().Add(pol.DeprecateAfter.Std()).Truncate(time.Second)
}

// Publish makes the run's copies launchable per the use case's publish
// policy, sets their deprecation time, then writes the channel's manifest
// with an entry per target region, each for an image seen available there,
// and finally removes the candidate. Every target region must hold a tested
// copy; nothing is changed otherwise.
func (p *Pipeline) Publish(ctx context.Context, r Run, channelName string) (PublishReport, error) {
	rep := PublishReport{Run: r, Channel: channelName}
	u, err := p.useCase(r)
	if err != nil {
		return rep, err
	}
	if rep.Manifest, err = p.Config.ManifestPath(channelName); err != nil {
		return rep, err
	}
	if err := p.Journal.SetRun(ctx, r.ID, cloud.PhasePublish, journal.RunRunning); err != nil {
		return rep, fmt.Errorf("journal: %w", err)
	}
	regions := p.Config.TargetRegions(u)
	copies, err := p.releaseCopies(ctx, r, regions)
	if err != nil {
		return rep, err
	}
	perms := Permissions(u.Publish)
	rep.Public = perms.Public
	rep.Deprecation = Deprecation(r, u.Publish)
	if perms.Public {
		if err := p.checkPublicAccess(ctx, regions); err != nil {
			return rep, err
		}
	}

	rep.Regions = make([]RegionResult, len(regions))
	errs := fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
		i := slices.Index(regions, region)
		img := copies[region]
		start := time.Now()
		err := p.step(ctx, r, cloud.PhasePublish, "launch permissions", region, img.ID, func(ctx context.Context) (string, error) {
			if err := p.Backend.SetLaunchPermissions(ctx, region, img.ID, perms); err != nil {
				return img.ID, err
			}
			// No deprecation wanted and none set: nothing to change, and
			// removing an absent one would cost requests for nothing.
			if !rep.Deprecation.IsZero() || !img.Deprecation.IsZero() {
				if err := p.Backend.SetDeprecation(ctx, region, img.ID, rep.Deprecation); err != nil {
					return img.ID, err
				}
			}
			return img.ID, p.Backend.TagImage(ctx, region, img.ID, map[string]string{channelTag(channelName): "true"})
		})
		res := RegionResult{Region: region, ImageID: img.ID, Name: img.Name, State: "done", Duration: time.Since(start)}
		if err != nil {
			res.State, res.Error = "failed", err.Error()
		}
		rep.Regions[i] = res
		return err
	})
	failed := map[string]error{}
	for i, err := range errs {
		if err != nil {
			failed[regions[i]] = err
		}
	}
	if len(failed) > 0 {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rep, &RegionsError{Phase: cloud.PhasePublish, RunID: r.ID, Errors: failed}
	}

	// Document: only what is seen in the cloud goes into the manifest.
	entries, err := p.observe(ctx, r, regions, copies, perms.Public)
	if err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rep, err
	}
	if rep.Exports, err = p.export(ctx, r, u, copies); err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rep, err
	}
	if n, err := p.putParameters(ctx, r, channelName, u, entries); err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rep, err
	} else {
		rep.Parameters = n
	}
	key := u.ManifestKey(r.Arch)
	err = p.step(ctx, r, cloud.PhasePublish, "document", "", rep.Manifest, func(ctx context.Context) (string, error) {
		rep.Changes, err = channel.Update(ctx, p.Config, channelName, func(m manifest.Manifest) error {
			delete(m, key)
			for region, e := range entries {
				m.Set(key, region, e)
			}
			return nil
		})
		return rep.Manifest, err
	})
	if err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rep, err
	}

	// The candidate was only the source of the copies.
	cand, err := p.Candidate(ctx, r)
	switch {
	case err == nil:
		err = p.step(ctx, r, cloud.PhasePublish, "remove candidate", cand.Region, cand.ID, func(ctx context.Context) (string, error) {
			return cand.ID, p.Backend.DeleteImage(ctx, cand.Region, cand.ID)
		})
		if err != nil {
			return rep, err
		}
		rep.CandidateGone = true
	case isNotFound(err):
		rep.CandidateGone = true
	default:
		return rep, err
	}
	if err := p.Journal.SetRun(ctx, r.ID, cloud.PhasePublish, journal.RunSucceeded); err != nil {
		return rep, fmt.Errorf("journal: %w", err)
	}
	return rep, nil
}

// channelTag marks an image as published in a channel.
func channelTag(name string) string { return "kiln:channel:" + name }

// releaseCopies returns the available, tested copy of the run in each region,
// or an error naming every region that lacks one.
func (p *Pipeline) releaseCopies(ctx context.Context, r Run, regions []string) (map[string]cloud.Image, error) {
	// The regions are read at once, the answers checked in region order.
	found := make([][]cloud.Image, len(regions))
	errs := fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
		imgs, err := p.Copies(ctx, r, region)
		found[slices.Index(regions, region)] = imgs
		return err
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	copies := map[string]cloud.Image{}
	var missing []string
	for i, region := range regions {
		for _, img := range found[i] {
			if img.State == cloud.StateAvailable {
				copies[region] = img
				break
			}
		}
		img, ok := copies[region]
		if !ok {
			missing = append(missing, region)
			continue
		}
		if img.Tags[cloud.TagTest] != cloud.TestPassed {
			return nil, &NotTestedError{RunID: r.ID, State: img.Tags[cloud.TagTest]}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("run %s has no available copy in %s: run `kiln replicate --run %s` first",
			r.ID, strings.Join(missing, ", "), r.ID)
	}
	return copies, nil
}

// checkPublicAccess fails, naming the regions, when any of them blocks
// public images; it runs before anything is changed.
func (p *Pipeline) checkPublicAccess(ctx context.Context, regions []string) error {
	checker, ok := p.Backend.(cloud.PublicAccessChecker)
	if !ok {
		return nil
	}
	blocked := make([]bool, len(regions))
	errs := fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
		b, err := checker.PublicAccessBlocked(ctx, region)
		blocked[slices.Index(regions, region)] = b
		return err
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("check image block public access: %w", err)
	}
	var on []string
	for i, b := range blocked {
		if b {
			on = append(on, regions[i])
		}
	}
	if len(on) > 0 {
		return cloud.Mark(fmt.Errorf("image block public access is on in %s: the publish policy makes images public; "+
			"turn it off there (aws ec2 disable-image-block-public-access) or publish to accounts instead; nothing was changed",
			strings.Join(on, ", ")), cloud.ErrPublicAccessBlocked)
	}
	return nil
}

// observe reads the published images back and returns their manifest
// entries, failing if any is not available or not as published.
func (p *Pipeline) observe(ctx context.Context, r Run, regions []string, copies map[string]cloud.Image, public bool) (map[string]manifest.Entry, error) {
	// The regions are read at once, the answers checked in region order.
	seen := make([][]cloud.Image, len(regions))
	errs := fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
		id := copies[region].ID
		imgs, err := p.Backend.ListImages(ctx, region, cloud.Filter{IDs: []string{id}})
		if err != nil {
			return fmt.Errorf("read back %s in %s: %w", id, region, err)
		}
		seen[slices.Index(regions, region)] = imgs
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	entries := make(map[string]manifest.Entry, len(regions))
	for i, region := range regions {
		id, imgs := copies[region].ID, seen[i]
		if len(imgs) != 1 || imgs[0].State != cloud.StateAvailable {
			return nil, fmt.Errorf("read back %s in %s: not available; the manifest was not written", id, region)
		}
		img := imgs[0]
		if img.Public != public {
			return nil, fmt.Errorf("read back %s in %s: public is %v, want %v; the manifest was not written", id, region, img.Public, public)
		}
		e := manifest.Entry{Architecture: img.Architecture, ID: img.ID, Name: img.Name, Public: img.Public}
		if !img.Deprecation.IsZero() {
			e.DeprecationTime = img.Deprecation.UTC().Format(time.RFC3339)
		}
		entries[region] = e
	}
	return entries, nil
}

// putParameters writes the channel pointers as backend parameters when the
// backend supports them and the project asks for them.
func (p *Pipeline) putParameters(ctx context.Context, r Run, channelName string, u *config.UseCase, entries map[string]manifest.Entry) (int, error) {
	params, ok := p.Backend.(cloud.Parameters)
	rule := p.Config.Backend.AWS.SSMParameters
	if !ok || rule == "" || p.Config.Backend.Type != "aws" {
		return 0, nil
	}
	name := strings.NewReplacer("{channel}", channelName, "{use_case}", u.Name, "{arch}", r.Arch).Replace(rule)
	var values []cloud.Parameter
	for region, e := range entries {
		values = append(values, cloud.Parameter{Region: region, Name: name, ImageID: e.ID, Tags: p.tags(r, cloud.PhasePublish)})
	}
	slices.SortFunc(values, func(a, b cloud.Parameter) int { return strings.Compare(a.Region, b.Region) })
	err := p.step(ctx, r, cloud.PhasePublish, "parameters", "", name, func(ctx context.Context) (string, error) {
		return name, params.PutParameters(ctx, values)
	})
	return len(values), err
}
