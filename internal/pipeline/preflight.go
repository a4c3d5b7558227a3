package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/gates"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
)

// ResolveArch returns the use case called useCase and the architecture a
// run of it builds: arch, or the use case's only one.
func (p *Pipeline) ResolveArch(useCase, arch string) (*config.UseCase, string, error) {
	u, err := p.Config.UseCase(useCase)
	if err != nil {
		return nil, "", err
	}
	if arch == "" {
		if len(u.Architectures) != 1 {
			return nil, "", fmt.Errorf("use case %s has architectures %v: choose one with --arch", u.Name, u.Architectures)
		}
		arch = u.Architectures[0]
	}
	if !slices.Contains(u.Architectures, arch) {
		return nil, "", fmt.Errorf("--arch %q: use case %s has architectures %v", arch, u.Name, u.Architectures)
	}
	return u, arch, nil
}

// PreflightError means a release cannot succeed and was refused before it
// made anything.
type PreflightError struct{ Err error }

func (e *PreflightError) Error() string {
	return fmt.Sprintf("%v; nothing was made", e.Err)
}

func (e *PreflightError) Unwrap() error { return e.Err }

// CheckRelease checks, before a release of the use case for arch to
// channel makes anything, what would otherwise stop it half-way, after
// images were made or made public: the channel's manifest reads and is
// valid (not corrupt, no merge conflict left in it); and the backend can
// build the recipe for arch and boot-test it (cloud.BuildChecker: the
// local builder refuses arm64, a bundle inline in EC2 user data has a size
// limit and may not hold a secret, every recipe file is the project's). The error is a *PreflightError.
func (p *Pipeline) CheckRelease(ctx context.Context, useCase, arch, channelName string) error {
	u, arch, err := p.ResolveArch(useCase, arch)
	if err != nil {
		return &PreflightError{err}
	}
	if _, err := channel.Load(p.Config, channelName); err != nil {
		return &PreflightError{fmt.Errorf("channel %s: %w", channelName, err)}
	}
	if c, ok := p.Backend.(cloud.BuildChecker); ok {
		r := Run{ID: journal.NewAssetID(p.now()), UseCase: u.Name, Arch: arch, Version: "00000000.000000", Created: p.now()}
		name, err := p.name(p.Config.Naming.Candidate, r)
		if err != nil {
			return &PreflightError{err}
		}
		// The variables go into the bundle on aws (a secret one may not
		// travel inline) and into the local build's files.
		vars, err := p.provisionVars(r)
		if err != nil {
			return &PreflightError{err}
		}
		in := cloud.BuildInput{
			Region: p.Config.BuildRegion, Arch: arch, UseCase: u, Dir: p.Config.Dir, StateDir: p.Config.StateDir(),
			Name: name, Vars: vars, Regions: p.Config.TargetRegions(u),
		}
		if err := c.CheckBuild(ctx, in, u.Tests); err != nil {
			return &PreflightError{err}
		}
	}
	return nil
}

// ChannelGates are the gates of writing run r's entries to channelName,
// which every writer of a channel checks before it changes anything:
//
//   - interval: the channel's min_interval since it last changed (git
//     history, or the file's time for a change not committed yet);
//   - newer: the run is not older than the run whose images the channel
//     holds for the use case and architecture, so that a publish never
//     moves a channel back by accident.
//
// A run whose entries the channel holds already (a rerun) passes both: it
// changes nothing. r.ID may be empty for a run not started yet, which is
// newer than any. done reports such a rerun.
func (p *Pipeline) ChannelGates(ctx context.Context, r Run, channelName string) (gs []gates.Gate, done bool, err error) {
	u, err := p.Config.UseCase(r.UseCase)
	if err != nil {
		return nil, false, err
	}
	m, err := channel.Load(p.Config, channelName)
	if err != nil {
		return nil, false, fmt.Errorf("channel %s: %w", channelName, err)
	}
	key := u.ManifestKey(r.Arch)
	newer, done, err := p.newerGate(ctx, r, channelName, key, m)
	if err != nil {
		return nil, false, err
	}
	last, err := channel.LastChange(ctx, p.Config, channelName)
	if err != nil {
		return nil, false, fmt.Errorf("channel %s: when did it last change: %w", channelName, err)
	}
	interval := gates.CheckInterval(channelName, p.Config.Channels[channelName].MinInterval, last, p.now(), done)
	return []gates.Gate{interval, newer}, done, nil
}

// newerGate compares run r with the run that made the images the channel
// holds under key, found by the tags of one of them; same reports that it
// is r itself.
func (p *Pipeline) newerGate(ctx context.Context, r Run, channelName, key string, m manifest.Manifest) (g gates.Gate, same bool, err error) {
	g = gates.Gate{Name: gates.Newer, Passed: true}
	if r.ID == "" {
		return g, false, nil
	}
	entries := m[key]
	regions := make([]string, 0, len(entries))
	for region := range entries {
		regions = append(regions, region)
	}
	slices.Sort(regions)
	if i := slices.Index(regions, p.Config.BuildRegion); i > 0 {
		regions[0], regions[i] = regions[i], regions[0]
	}
	for _, region := range regions {
		if !slices.Contains(p.Config.Regions, region) {
			continue
		}
		imgs, err := p.Backend.ListImages(ctx, region, cloud.Filter{IDs: []string{entries[region].ID}})
		if err != nil {
			return g, false, fmt.Errorf("gate %s: %w", gates.Newer, err)
		}
		if len(imgs) == 0 {
			continue // gone: drift's business; ask another region
		}
		holder := imgs[0].Tags[cloud.TagAssetID]
		if holder == r.ID {
			return g, true, nil
		}
		theirs, err := journal.ParseAssetID(holder)
		if err != nil {
			return g, false, nil // not a kiln run's image: nothing to compare
		}
		ours, err := journal.ParseAssetID(r.ID)
		if err != nil {
			return g, false, err
		}
		if ours.Before(theirs) {
			g.Passed = false
			g.Detail = []string{fmt.Sprintf("channel %s holds %s from run %s (started %s); run %s started earlier (%s): publishing it would move the channel back",
				channelName, key, holder, theirs.UTC().Format(time.RFC3339), r.ID, ours.UTC().Format(time.RFC3339))}
		}
		return g, false, nil
	}
	return g, false, nil
}

// Published reports whether run r is published already: its candidate is
// gone and every target region holds its tested copy. Phases that need
// the candidate (test, replicate) have nothing left to do then.
func (p *Pipeline) Published(ctx context.Context, r Run) (bool, error) {
	if _, err := p.Candidate(ctx, r); err == nil {
		return false, nil
	} else if !errors.Is(err, cloud.ErrNotFound) {
		return false, err
	}
	u, err := p.useCase(r)
	if err != nil {
		return false, err
	}
	// Missing or untested copies: not published, whatever the reason.
	copies, err := p.releaseCopies(ctx, r, p.Config.TargetRegions(u))
	return err == nil && len(copies) > 0, nil
}
