package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/fanout"
	"github.com/kiln-images/kiln/internal/journal"
)

// RegionResult is the outcome of one region of a fan-out phase.
type RegionResult struct {
	Region   string          `json:"region"`
	ImageID  string          `json:"image_id,omitempty"`
	Name     string          `json:"name,omitempty"`
	State    string          `json:"state"` // done, existing, failed
	Error    string          `json:"error,omitempty"`
	Duration config.Duration `json:"duration"` // how long the region took
}

// ReplicateReport is the outcome of the replicate phase.
type ReplicateReport struct {
	Run     Run            `json:"run"`
	Source  string         `json:"source"`
	Regions []RegionResult `json:"regions"`
}

// Copies returns the run's release copies in region (made by replicate).
func (p *Pipeline) Copies(ctx context.Context, r Run, region string) ([]cloud.Image, error) {
	imgs, err := p.Backend.ListImages(ctx, region, cloud.Filter{Tags: map[string]string{
		cloud.TagAssetID: r.ID, cloud.TagPhase: cloud.PhaseReplicate,
	}})
	if err != nil {
		return nil, fmt.Errorf("find copies of run %s in %s: %w", r.ID, region, err)
	}
	return imgs, nil
}

// targetRegions are the run's target regions, or the subset asked for.
func (p *Pipeline) targetRegions(r Run, only []string) ([]string, error) {
	u, err := p.useCase(r)
	if err != nil {
		return nil, err
	}
	all := p.Config.TargetRegions(u)
	if len(only) == 0 {
		return all, nil
	}
	var out []string
	for _, region := range only {
		// --region names the region; where the use case is published
		// into another account, that account's.
		loc := p.Config.Location(u, config.RegionOf(region))
		if !slices.Contains(all, loc) {
			return nil, fmt.Errorf("--region %s: not a target region of use case %s (targets: %v)", region, u.Name, all)
		}
		out = append(out, loc)
	}
	return out, nil
}

// Replicate copies the tested candidate to every target region (or those in
// only), concurrently up to p.Concurrency. Regions that already hold a copy
// are left as they are. Every region gets a result; if some failed the error
// is a *RegionsError naming them.
func (p *Pipeline) Replicate(ctx context.Context, r Run, only []string) (ReplicateReport, error) {
	rep := ReplicateReport{Run: r}
	regions, err := p.targetRegions(r, only)
	if err != nil {
		return rep, err
	}
	if err := p.Journal.SetRun(ctx, r.ID, cloud.PhaseReplicate, journal.RunRunning); err != nil {
		return rep, fmt.Errorf("journal: %w", err)
	}
	// The copies already made are looked for while the candidate is: a
	// region whose answer is missing is asked again when it is copied,
	// and fails there.
	known := make([][]cloud.Image, len(regions))
	var lookErrs []error
	looked := async(func() error {
		lookErrs = fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
			var err error
			known[slices.Index(regions, region)], err = p.Copies(ctx, r, region)
			return err
		})
		return nil
	})
	cand, err := p.Candidate(ctx, r)
	looked()
	if err != nil {
		return rep, err
	}
	if cand.Tags[cloud.TagTest] != cloud.TestPassed {
		return rep, &NotTestedError{RunID: r.ID, State: cand.Tags[cloud.TagTest]}
	}
	rep.Source = cand.ID
	byRegion := map[string][]cloud.Image{}
	for i, region := range regions {
		if lookErrs[i] == nil {
			byRegion[region] = known[i]
		}
	}

	name, tags, err := p.copySpec(r, cand)
	if err != nil {
		return rep, err
	}
	rep.Regions = make([]RegionResult, len(regions))
	errs := fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
		var err error
		_, rep.Regions[slices.Index(regions, region)], err = p.replicateRegion(ctx, r, cand, region, name, tags, byRegion)
		return err
	})
	if err := regionsError(cloud.PhaseReplicate, r, regions, errs); err != nil {
		p.failRun(ctx, r, cloud.PhaseReplicate)
		return rep, err
	}
	return rep, nil
}

// copySpec is the name and the creation tags of every copy of the run's
// candidate cand, which has passed its tests.
func (p *Pipeline) copySpec(r Run, cand cloud.Image) (string, map[string]string, error) {
	tags := p.tags(r, cloud.PhaseReplicate)
	tags[cloud.TagTest] = cloud.TestPassed
	tags[cloud.TagSource] = cand.ID
	name, err := p.name(p.Config.Naming.Release, r)
	return name, tags, err
}

// replicateRegion is replicateTo with its result for the report.
func (p *Pipeline) replicateRegion(ctx context.Context, r Run, cand cloud.Image, region, name string, tags map[string]string, known map[string][]cloud.Image) (cloud.Image, RegionResult, error) {
	start := time.Now()
	img, existed, err := p.replicateTo(ctx, r, cand, region, name, maps.Clone(tags), known)
	res := RegionResult{Region: region, Name: name, ImageID: img.ID, Duration: took(time.Since(start))}
	switch {
	case err != nil:
		res.State, res.Error = "failed", err.Error()
	case existed:
		res.State = "existing"
	default:
		res.State = "done"
	}
	return img, res, err
}

// replicateTo makes (or finds) the run's copy in one region and waits until
// it is available. The run's copies in the region are looked up unless
// known holds the answer of a look this process has just made (release
// looks in every region before it builds); the backend's CopyImage still
// finds an earlier copy by its token.
func (p *Pipeline) replicateTo(ctx context.Context, r Run, cand cloud.Image, region, name string, tags map[string]string, known map[string][]cloud.Image) (cloud.Image, bool, error) {
	existing, ok := known[region]
	if !ok {
		var err error
		if existing, err = p.Copies(ctx, r, region); err != nil {
			return cloud.Image{}, false, err
		}
	}
	for _, img := range existing {
		if img.State == cloud.StateAvailable {
			return img, true, nil
		}
	}
	var img cloud.Image
	fresh := p.firstTry(r, cloud.PhaseReplicate, "copy", region)
	err := p.step(ctx, r, cloud.PhaseReplicate, "copy", region, "from "+cand.ID+" in "+cand.Region, func(ctx context.Context) (string, error) {
		var err error
		img, err = p.Backend.CopyImage(ctx, cloud.CopyInput{
			SourceRegion: cand.Region,
			SourceID:     cand.ID,
			Region:       region,
			Name:         name,
			Description:  fmt.Sprintf("%s %s %s (kiln run %s)", r.UseCase, r.Arch, r.Version, r.ID),
			Tags:         tags,
			Token:        cloud.Token(r.ID, cloud.PhaseReplicate, region),
			SourceTags:   cand.Tags,
			Fresh:        fresh,
		})
		if err != nil {
			return "", err
		}
		if img.State != cloud.StateAvailable {
			img, err = p.Backend.WaitImage(ctx, region, img.ID)
		}
		return img.ID, err
	})
	return img, false, err
}

// took is a measured time as reports carry it: to the millisecond.
func took(d time.Duration) config.Duration {
	return config.Duration(d.Round(time.Millisecond))
}
