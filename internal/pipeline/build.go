package pipeline

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
)

// NewRun starts a run of a use case: it checks the use case and architecture,
// makes the asset id and records the run.
func (p *Pipeline) NewRun(ctx context.Context, useCase, arch, version string) (Run, error) {
	u, arch, err := p.ResolveArch(useCase, arch)
	if err != nil {
		return Run{}, err
	}
	now := p.now().UTC()
	id := journal.NewAssetID(now)
	if version == "" {
		version = u.Version
	}
	host, _ := os.Hostname()
	jr := journal.Run{ID: id, UseCase: u.Name, Arch: arch, Version: version,
		Created: now, Updated: now, State: journal.RunRunning, Phase: cloud.PhaseBuild, Host: host}
	if version != "" {
		err = p.Journal.StartRun(ctx, jr)
	} else {
		// A version made up from the time is unique among the use case's
		// runs: a second run in the same second (a retried CI job, a
		// script) gets VERSION-2 rather than the first one's image names.
		jr.Version = now.Format("20060102.150405")
		version, err = p.Journal.StartRunUnique(ctx, jr)
	}
	if err != nil {
		return Run{}, fmt.Errorf("journal: %w", err)
	}
	r := Run{ID: id, UseCase: u.Name, Arch: arch, Version: version, Created: now, fresh: new(atomic.Bool), begun: new(sync.Map)}
	r.fresh.Store(true)
	return r, nil
}

// name expands a naming rule for run r.
func (p *Pipeline) name(rule string, r Run) (string, error) {
	var vars map[string]string
	if p.Variables != nil {
		var err error
		if vars, err = p.Variables.Naming(); err != nil {
			return "", fmt.Errorf("run %s: name images: %w", r.ID, err)
		}
	}
	return config.ExpandName(rule, config.NameVars{
		UseCase: r.UseCase, Arch: r.Arch, AssetID: r.ID, Version: r.Version,
		Date: r.Created.UTC().Format("20060102"), Vars: vars,
	}), nil
}

// provisionVars returns the recipe's variables for a build.
func (p *Pipeline) provisionVars(r Run) ([]cloud.Var, error) {
	if p.Variables == nil {
		return nil, nil
	}
	v, err := p.Variables.Provision()
	if err != nil {
		return nil, fmt.Errorf("run %s: variables: %w", r.ID, err)
	}
	return v, nil
}

// secrets returns the values kept logs must not hold.
func (p *Pipeline) secrets() []string {
	if p.Variables == nil {
		return nil
	}
	return p.Variables.Secrets()
}

// Candidate returns the run's candidate image in the build region, or an
// error matching cloud.ErrNotFound when the build has not made it yet.
func (p *Pipeline) Candidate(ctx context.Context, r Run) (cloud.Image, error) {
	region := p.Config.BuildRegion
	imgs, err := p.Backend.ListImages(ctx, region, cloud.Filter{Tags: map[string]string{
		cloud.TagAssetID: r.ID, cloud.TagPhase: cloud.PhaseBuild,
	}})
	if err != nil {
		return cloud.Image{}, fmt.Errorf("find candidate of run %s in %s: %w", r.ID, region, err)
	}
	for _, img := range imgs {
		if img.State != cloud.StateFailed {
			return img, nil
		}
	}
	return cloud.Image{}, cloud.Mark(fmt.Errorf("run %s has no candidate image in %s", r.ID, region), cloud.ErrNotFound)
}

// Build makes the run's candidate in the build region, or returns the one an
// earlier attempt made. An earlier attempt may have made the candidate yet
// died before removing its temporary resources: the backend's Build is
// called all the same, and with the same token it returns that image and
// tidies up.
func (p *Pipeline) Build(ctx context.Context, r Run) (cloud.Image, error) {
	return p.build(ctx, r, nil)
}

// build is Build. With bg set and a backend that can, the removal of the
// build's temporary resources runs in bg, as a step of its own, and build
// returns as soon as the image is ready.
func (p *Pipeline) build(ctx context.Context, r Run, bg *background) (cloud.Image, error) {
	u, err := p.useCase(r)
	if err != nil {
		return cloud.Image{}, err
	}
	region := p.Config.BuildRegion
	if err := p.Journal.SetRun(ctx, r.ID, cloud.PhaseBuild, journal.RunRunning); err != nil {
		return cloud.Image{}, fmt.Errorf("journal: %w", err)
	}

	var (
		img     cloud.Image
		cleanup func(context.Context) error
	)
	name, err := p.name(p.Config.Naming.Candidate, r)
	if err != nil {
		return cloud.Image{}, err
	}
	vars, err := p.provisionVars(r)
	if err != nil {
		return cloud.Image{}, err
	}
	in := cloud.BuildInput{
		Region:   region,
		Name:     name,
		Arch:     r.Arch,
		UseCase:  u,
		Dir:      p.Config.Dir,
		StateDir: p.Config.StateDir(),
		Tags:     p.tags(r, cloud.PhaseBuild),
		Token:    cloud.Token(r.ID, cloud.PhaseBuild, region),
		Progress: p.Progress,
		Vars:     vars,
		Regions:  p.Config.TargetRegions(u),
		Fresh:    p.firstTry(r, cloud.PhaseBuild, "build", region),
	}
	deferring, canDefer := p.Backend.(cleanupDeferringBuilder)
	err = p.step(ctx, r, cloud.PhaseBuild, "build", region, name, func(ctx context.Context) (string, error) {
		if bg != nil && canDefer {
			img, cleanup, err = deferring.BuildDeferCleanup(ctx, in)
		} else {
			img, err = p.Backend.Build(ctx, in)
		}
		return img.ID, err
	})
	if err != nil {
		p.failRun(ctx, r, cloud.PhaseBuild)
		return cloud.Image{}, fmt.Errorf("build %s (run %s): %w", r.UseCase, r.ID, err)
	}
	if cleanup != nil {
		bg.Go(cloud.PhaseBuild, func() error {
			err := p.step(ctx, r, cloud.PhaseBuild, "remove temporary resources", region, img.ID, func(ctx context.Context) (string, error) {
				return img.ID, cleanup(ctx)
			})
			if err != nil {
				return fmt.Errorf("build %s (run %s): %w", r.UseCase, r.ID, err)
			}
			return nil
		})
	}
	return img, nil
}

// failRun records a failed phase; the error that caused it is returned by
// the caller, so a journal error here is only logged.
func (p *Pipeline) failRun(ctx context.Context, r Run, phase string) {
	if err := p.Journal.SetRun(context.WithoutCancel(ctx), r.ID, phase, journal.RunFailed); err != nil {
		p.log().Warn("journal", "run", r.ID, "err", err)
	}
}
