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
	Exports       []cloud.Export    `json:"exports"`
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
	if err := p.checkRelease(ctx, r); err != nil {
		return rep, err
	}
	if err := p.Journal.SetRun(ctx, r.ID, cloud.PhasePublish, journal.RunRunning); err != nil {
		return rep, fmt.Errorf("journal: %w", err)
	}
	regions := p.Config.TargetRegions(u)
	perms := Permissions(u.Publish)
	rep.Public = perms.Public
	rep.Deprecation = Deprecation(r, u.Publish)
	// What publishing needs to know before it changes anything — the
	// copies, image block public access in every region, the candidate
	// to remove at the end — is asked at once.
	var (
		copies  map[string]cloud.Image
		cand    cloud.Image
		candErr error
	)
	copiesErr, checkErr := async(func() error {
		var err error
		copies, err = p.releaseCopies(ctx, r, regions)
		return err
	}), async(func() error {
		if !perms.Public {
			return nil
		}
		return p.checkPublicAccess(ctx, regions)
	})
	cand, candErr = p.Candidate(ctx, r)
	if err := copiesErr(); err != nil {
		checkErr()
		return rep, err
	}
	if err := checkErr(); err != nil {
		return rep, err
	}

	rep.Regions = make([]RegionResult, len(regions))
	back := make([]readBack, len(regions))
	errs := fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
		i := slices.Index(regions, region)
		var err error
		rep.Regions[i], back[i], err = p.publishRegion(ctx, r, channelName, region, copies[region], perms, rep.Deprecation)
		return err
	})
	if err := regionsError(cloud.PhasePublish, r, regions, errs); err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rep, err
	}

	// Document: only what is seen in the cloud goes into the manifest.
	entries, err := manifestEntries(regions, copies, back, perms.Public)
	if err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rep, err
	}
	if err := p.document(ctx, r, u, channelName, copies, entries, &rep); err != nil {
		p.failRun(ctx, r, cloud.PhasePublish)
		return rep, err
	}

	// The candidate was only the source of the copies.
	switch {
	case candErr == nil:
		if err := p.removeCandidate(ctx, r, cand); err != nil {
			return rep, err
		}
	case !isNotFound(candErr):
		return rep, candErr
	}
	rep.CandidateGone = true
	if err := p.Journal.SetRun(ctx, r.ID, cloud.PhasePublish, journal.RunSucceeded); err != nil {
		return rep, fmt.Errorf("journal: %w", err)
	}
	return rep, nil
}

// readBack is what reading a published image back saw.
type readBack struct {
	seen []cloud.Image
	err  error
}

// publishRegion gives one region's copy the launch permissions and
// deprecation of the policy and the channel's tag, as one journal step,
// and reads the image back for its manifest entry. The read goes while
// the tag is written: what the manifest records (permissions, deprecation)
// is set by then, the tag is not part of it.
func (p *Pipeline) publishRegion(ctx context.Context, r Run, channelName, region string, img cloud.Image, perms cloud.LaunchPermissions, deprecation time.Time) (RegionResult, readBack, error) {
	start := time.Now()
	var back readBack
	err := p.step(ctx, r, cloud.PhasePublish, "launch permissions", region, img.ID, func(ctx context.Context) (string, error) {
		if err := p.Backend.SetLaunchPermissions(ctx, region, img.ID, perms); err != nil {
			return img.ID, err
		}
		// No deprecation wanted and none set: nothing to change, and
		// removing an absent one would cost requests for nothing.
		if !deprecation.IsZero() || !img.Deprecation.IsZero() {
			if err := p.Backend.SetDeprecation(ctx, region, img.ID, deprecation); err != nil {
				return img.ID, err
			}
		}
		read := async(func() error {
			back.seen, back.err = p.readBack(ctx, region, img.ID)
			return nil
		})
		err := p.Backend.TagImage(ctx, region, img.ID, map[string]string{channelTag(channelName): "true"})
		read()
		return img.ID, err
	})
	res := RegionResult{Region: region, ImageID: img.ID, Name: img.Name, State: "done", Duration: took(time.Since(start))}
	if err != nil {
		res.State, res.Error = "failed", err.Error()
	}
	return res, back, err
}

// document ends publishing: the exports, the channel's parameters and the
// manifest, each from what was seen in the cloud (entries, per region).
func (p *Pipeline) document(ctx context.Context, r Run, u *config.UseCase, channelName string, copies map[string]cloud.Image, entries map[string]manifest.Entry, rep *PublishReport) error {
	var err error
	if rep.Exports, err = p.export(ctx, r, u, copies); err != nil {
		return err
	}
	n, err := p.putParameters(ctx, r, channelName, u, entries)
	if err != nil {
		return err
	}
	rep.Parameters = n
	key := u.ManifestKey(r.Arch)
	err = p.step(ctx, r, cloud.PhasePublish, "document", "", rep.Manifest, func(ctx context.Context) (string, error) {
		rep.Changes, err = channel.Update(ctx, p.Config, channelName, func(m manifest.Manifest) error {
			delete(m, key)
			for loc, e := range entries {
				m.Set(key, config.RegionOf(loc), e) // manifests name the region, whatever the account
			}
			return nil
		})
		return rep.Manifest, err
	})
	if err != nil {
		return err
	}
	return p.index(ctx, r, channelName)
}

// removeCandidate deletes the run's candidate, which was only the source
// of the copies.
func (p *Pipeline) removeCandidate(ctx context.Context, r Run, cand cloud.Image) error {
	return p.step(ctx, r, cloud.PhasePublish, "remove candidate", cand.Region, cand.ID, func(ctx context.Context) (string, error) {
		return cand.ID, p.Backend.DeleteImage(ctx, cand.Region, cand.ID)
	})
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

// manifestEntries are the manifest entries of the published images, from what
// reading each back saw, checked in region order; an image not available
// or not as published fails them all.
func manifestEntries(regions []string, copies map[string]cloud.Image, back []readBack, public bool) (map[string]manifest.Entry, error) {
	out := make(map[string]manifest.Entry, len(regions))
	for i, region := range regions {
		if back[i].err != nil {
			return nil, back[i].err
		}
		e, err := entryOf(region, copies[region].ID, back[i].seen, public)
		if err != nil {
			return nil, err
		}
		out[region] = e
	}
	return out, nil
}

// readBack reads a published image again, for its manifest entry.
func (p *Pipeline) readBack(ctx context.Context, region, id string) ([]cloud.Image, error) {
	imgs, err := p.Backend.ListImages(ctx, region, cloud.Filter{IDs: []string{id}})
	if err != nil {
		return nil, fmt.Errorf("read back %s in %s: %w", id, region, err)
	}
	return imgs, nil
}

// entryOf is the manifest entry of a published image from what reading it
// back saw, or an error if that is not available or not as published.
func entryOf(region, id string, seen []cloud.Image, public bool) (manifest.Entry, error) {
	if len(seen) != 1 || seen[0].State != cloud.StateAvailable {
		return manifest.Entry{}, fmt.Errorf("read back %s in %s: not available; the manifest was not written", id, region)
	}
	img := seen[0]
	if img.Public != public {
		return manifest.Entry{}, fmt.Errorf("read back %s in %s: public is %v, want %v; the manifest was not written", id, region, img.Public, public)
	}
	e := manifest.Entry{Architecture: img.Architecture, ID: img.ID, Name: img.Name, Public: img.Public}
	if !img.Deprecation.IsZero() {
		e.DeprecationTime = img.Deprecation.UTC().Format(time.RFC3339)
	}
	return e, nil
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
		// entries are by location (publish) or by region (promote,
		// rollback); the parameter goes where the image is.
		loc := p.Config.Location(u, config.RegionOf(region))
		values = append(values, cloud.Parameter{Region: loc, Name: name, ImageID: e.ID, Tags: p.tags(r, cloud.PhasePublish)})
	}
	slices.SortFunc(values, func(a, b cloud.Parameter) int { return strings.Compare(a.Region, b.Region) })
	if r.ID == "" {
		// promote and rollback move pointers outside any run: nothing to
		// journal them under.
		return len(values), params.PutParameters(ctx, values)
	}
	err := p.step(ctx, r, cloud.PhasePublish, "parameters", "", name, func(ctx context.Context) (string, error) {
		return name, params.PutParameters(ctx, values)
	})
	return len(values), err
}
