package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/gates"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Gate is one condition a promotion must meet.
type Gate = gates.Gate

// PromoteReport is the outcome of a promotion (planned or applied).
type PromoteReport struct {
	UseCase    string            `json:"use_case"`
	From       string            `json:"from"`
	To         string            `json:"to"`
	Gates      []Gate            `json:"gates"`
	Changes    []manifest.Change `json:"changes"`
	Applied    bool              `json:"applied"`
	Parameters int               `json:"parameters"`
}

// Passed reports whether every gate passed (or was overridden).
func (r PromoteReport) Passed() bool { return gates.Passed(r.Gates) }

// Gate names.
const (
	GateComplete      = gates.Complete      // every target region has an entry
	GateAvailable     = gates.Available     // every image exists and is available
	GateTested        = gates.Tested        // every image's run passed kiln test
	GatePublished     = gates.Published     // public or shared as the policy says
	GateNotDeprecated = gates.NotDeprecated // no image is deprecated
	GateInterval      = gates.Interval      // the target changed long enough ago
)

// Promote copies a use case's entries from one channel's manifest to
// another's, if every gate passes or is overridden by ov. Without apply it
// only reports the gates and the diff it would make. lastChange is when the
// target channel last changed (zero: never), for the interval gate, which
// a promotion that changes nothing (a rerun) passes.
func (p *Pipeline) Promote(ctx context.Context, useCase, from, to string, lastChange time.Time, apply bool, ov gates.Overrides) (PromoteReport, error) {
	rep := PromoteReport{UseCase: useCase, From: from, To: to}
	u, err := p.Config.UseCase(useCase)
	if err != nil {
		return rep, err
	}
	if from == to {
		return rep, fmt.Errorf("--from and --to are both %q", from)
	}
	src, srcLayout, err := channel.Open(p.Config, from)
	if err != nil {
		return rep, err
	}
	dstLayouts, err := channel.Layouts(p.Config, to)
	if err != nil {
		return rep, err
	}
	var seen map[string]cloud.Image
	rep.Gates, seen, err = p.gates(ctx, u, src)
	if err != nil {
		return rep, err
	}

	// The channels may differ in format: what the source's does not hold
	// comes from the image, as the gates read it.
	update := func(m manifest.Manifest) error {
		for _, arch := range u.Architectures {
			key := u.ManifestKey(arch)
			delete(m, key)
			for region, e := range src[key] {
				m.Set(key, region, fillFromImage(e, srcLayout, seen[region+"/"+e.ID]))
			}
		}
		return nil
	}
	dst, dstLayout, err := channel.Open(p.Config, to)
	if err != nil {
		return rep, err
	}
	next := manifest.Manifest{}
	for _, e := range dst.Entries() {
		next.Set(e.UseCase, e.Region, e.Entry)
	}
	update(next)
	rep.Changes = manifest.DiffLayouts(dst, dstLayout, next, dstLayouts[0])
	// The interval gate needs to know whether anything changes (a rerun
	// passes it), so it comes after the diff, which needs the images.
	if min := p.Config.Channels[to].MinInterval; min > 0 {
		rep.Gates = append(rep.Gates, gates.CheckInterval(to, min, lastChange, p.now(), len(rep.Changes) == 0))
	}
	ov.Apply(rep.Gates)
	if !apply || !rep.Passed() {
		return rep, nil
	}
	for _, arch := range u.Architectures {
		n, err := p.putParameters(ctx, Run{UseCase: u.Name, Arch: arch}, to, u, src[u.ManifestKey(arch)])
		if err != nil {
			return rep, err
		}
		rep.Parameters += n
	}
	if rep.Changes, err = channel.Update(ctx, p.Config, to, update); err != nil {
		return rep, err
	}
	rep.Applied = true
	return rep, nil
}

// gates checks a promotion of use case u's entries in src (the gates on
// the entries; the interval gate is the caller's), and returns the images
// it read, by region/id.
func (p *Pipeline) gates(ctx context.Context, u *config.UseCase, src manifest.Manifest) ([]Gate, map[string]cloud.Image, error) {
	seen := map[string]cloud.Image{}
	complete := Gate{Name: GateComplete}
	available := Gate{Name: GateAvailable}
	tested := Gate{Name: GateTested}
	published := Gate{Name: GatePublished}
	fresh := Gate{Name: GateNotDeprecated}
	perms := Permissions(u.Publish)
	now := p.now()
	for _, arch := range u.Architectures {
		key := u.ManifestKey(arch)
		for _, loc := range p.Config.TargetRegions(u) {
			region := config.RegionOf(loc) // as the manifest names it
			e, ok := src.Get(key, region)
			if !ok {
				complete.Detail = append(complete.Detail, fmt.Sprintf("%s %s: no entry", key, region))
				continue
			}
			where := fmt.Sprintf("%s %s %s", key, region, e.ID)
			imgs, err := p.Backend.ListImages(ctx, loc, cloud.Filter{IDs: []string{e.ID}})
			if err != nil {
				return nil, nil, fmt.Errorf("gate %s: %w", GateAvailable, err)
			}
			if len(imgs) == 0 {
				available.Detail = append(available.Detail, where+": image does not exist")
				continue
			}
			img := imgs[0]
			seen[region+"/"+e.ID] = img
			if img.State != cloud.StateAvailable {
				available.Detail = append(available.Detail, fmt.Sprintf("%s: state %s", where, img.State))
			}
			if img.Tags[cloud.TagTest] != cloud.TestPassed {
				tested.Detail = append(tested.Detail, fmt.Sprintf("%s: %s is %q, want %q", where, cloud.TagTest, img.Tags[cloud.TagTest], cloud.TestPassed))
			}
			if img.Public != perms.Public {
				published.Detail = append(published.Detail, fmt.Sprintf("%s: public is %v, policy says %v", where, img.Public, perms.Public))
			} else if len(perms.Accounts)+len(perms.Organizations)+len(perms.OrganizationalUnits) > 0 {
				got, err := p.Backend.LaunchPermissions(ctx, loc, e.ID)
				if err != nil {
					return nil, nil, fmt.Errorf("gate %s: %w", GatePublished, err)
				}
				if missing := missingShares(perms, got); len(missing) > 0 {
					published.Detail = append(published.Detail, fmt.Sprintf("%s: not shared with %s", where, strings.Join(missing, ", ")))
				}
			}
			if d := img.Deprecation; !d.IsZero() && !d.After(now) {
				fresh.Detail = append(fresh.Detail, fmt.Sprintf("%s: deprecated since %s", where, d.UTC().Format(time.RFC3339)))
			}
		}
	}
	gs := []Gate{complete, available, tested, published, fresh}
	for i := range gs {
		gs[i].Passed = len(gs[i].Detail) == 0
	}
	return gs, seen, nil
}

// missingShares lists the accounts, organizations and OUs of want that got
// lacks.
func missingShares(want, got cloud.LaunchPermissions) []string {
	var missing []string
	for _, pair := range [][2][]string{
		{want.Accounts, got.Accounts}, {want.Organizations, got.Organizations}, {want.OrganizationalUnits, got.OrganizationalUnits},
	} {
		for _, w := range pair[0] {
			if !slices.Contains(pair[1], w) {
				missing = append(missing, w)
			}
		}
	}
	return missing
}
