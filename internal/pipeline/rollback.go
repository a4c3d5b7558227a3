package pipeline

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/fanout"
	"github.com/kiln-images/kiln/internal/manifest"
)

// RollbackReport is the outcome of a rollback (planned or applied).
type RollbackReport struct {
	Channel string            `json:"channel"`
	Ref     string            `json:"ref"`
	Changes []manifest.Change `json:"changes"`
	// Missing lists the images the restored manifest needs that no longer
	// exist ("region id"); a rollback with any is refused.
	Missing []string `json:"missing,omitempty"`
	// Reconciled counts the images whose launch permissions and deprecation
	// were set to match the restored manifest.
	Reconciled int  `json:"reconciled"`
	Applied    bool `json:"applied"`
}

// Rollback restores a channel's manifest to target (read from a git ref by
// the caller, in the format tl; nil is kiln's own), refusing if any image
// it names is gone. With apply it writes the manifest in the channel's
// format and makes each image's launch permissions and deprecation match
// its entry and the publish policy. What target's format does not hold
// (an older format without the image's name, say) is taken from the image.
func (p *Pipeline) Rollback(ctx context.Context, channelName, ref string, target manifest.Manifest, tl *manifest.Layout, apply bool) (RollbackReport, error) {
	rep := RollbackReport{Channel: channelName, Ref: ref}
	if tl == nil {
		tl = manifest.DefaultLayout
	}
	path, err := p.Config.ManifestPath(channelName)
	if err != nil {
		return rep, err
	}
	if err := tl.Validate(ref+":"+path, target, channel.Rules(p.Config.Backend.Type)); err != nil {
		return rep, err
	}
	cur, curLayout, err := channel.Open(p.Config, channelName)
	if err != nil {
		return rep, err
	}
	rep.Changes = manifest.DiffLayouts(cur, curLayout, target, tl)

	// By location: a use case published into another account has its
	// images there.
	byRegion := map[string][]manifest.Located{}
	locOf := func(e manifest.Located) string { return channel.Locate(p.Config, e.UseCase, e.Region) }
	for _, e := range target.Entries() {
		byRegion[locOf(e)] = append(byRegion[locOf(e)], e)
	}
	regions := slices.Sorted(maps.Keys(byRegion))
	found := make([]map[string]cloud.Image, len(regions))
	errs := fanout.Each(ctx, regions, p.Concurrency, func(ctx context.Context, region string) error {
		var ids []string
		for _, e := range byRegion[region] {
			ids = append(ids, e.ID)
		}
		imgs, err := p.Backend.ListImages(ctx, region, cloud.Filter{IDs: ids})
		if err != nil {
			return fmt.Errorf("look up images in %s: %w", region, err)
		}
		m := map[string]cloud.Image{}
		for _, img := range imgs {
			m[img.ID] = img
		}
		found[slices.Index(regions, region)] = m
		return nil
	})
	for _, err := range errs {
		if err != nil {
			return rep, err
		}
	}
	for i, region := range regions {
		for _, e := range byRegion[region] {
			if img, ok := found[i][e.ID]; !ok || img.State != cloud.StateAvailable {
				rep.Missing = append(rep.Missing, region+" "+e.ID)
			}
		}
	}
	if len(rep.Missing) > 0 {
		return rep, fmt.Errorf("rollback of %s to %s refused: the images %s no longer exist or are not available; "+
			"nothing was changed (choose another ref, or release again)", channelName, ref, strings.Join(rep.Missing, ", "))
	}
	if !apply {
		return rep, nil
	}

	// Cloud first, manifest last: the manifest never names an image that is
	// not yet launchable as it says.
	var entries []manifest.Located
	for _, r := range regions {
		entries = append(entries, byRegion[r]...)
	}
	errs = fanout.Each(ctx, entries, p.Concurrency, func(ctx context.Context, e manifest.Located) error {
		perms := cloud.LaunchPermissions{Public: e.Public}
		u, _, known := channel.UseCaseOf(p.Config, e.UseCase)
		if known {
			pol := Permissions(u.Publish)
			perms.Accounts, perms.Organizations, perms.OrganizationalUnits = pol.Accounts, pol.Organizations, pol.OrganizationalUnits
		}
		switch {
		case tl.Binds(manifest.SourcePublic):
		case known:
			perms.Public = Permissions(u.Publish).Public // the file does not say; the policy does
		default:
			perms.Public = found[slices.Index(regions, locOf(e))][e.ID].Public // nor the policy: leave it
		}
		if err := p.Backend.SetLaunchPermissions(ctx, locOf(e), e.ID, perms); err != nil {
			return fmt.Errorf("%s in %s: %w", e.ID, locOf(e), err)
		}
		if !tl.Binds(manifest.SourceDeprecation) {
			return nil // the file does not say: leave the image's as it is
		}
		var dep time.Time
		if e.DeprecationTime != "" {
			dep, _ = time.Parse(time.RFC3339, e.DeprecationTime) // validated above
		}
		if err := p.Backend.SetDeprecation(ctx, locOf(e), e.ID, dep); err != nil {
			return fmt.Errorf("%s in %s: %w", e.ID, locOf(e), err)
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			return rep, fmt.Errorf("rollback of %s: reconcile: %w", channelName, err)
		}
		rep.Reconciled++
	}
	// Channel pointers kept as parameters follow the manifest, all or none
	// per use case.
	for _, key := range slices.Sorted(maps.Keys(target)) {
		u, arch, ok := channel.UseCaseOf(p.Config, key)
		if !ok {
			continue
		}
		if _, err := p.putParameters(ctx, Run{UseCase: u.Name, Arch: arch}, channelName, u, target[key]); err != nil {
			return rep, fmt.Errorf("rollback of %s: parameters: %w", channelName, err)
		}
	}
	if _, err := channel.Update(ctx, p.Config, channelName, func(m manifest.Manifest) error {
		clear(m)
		for _, e := range target.Entries() {
			img := found[slices.Index(regions, locOf(e))][e.ID]
			m.Set(e.UseCase, e.Region, fillFromImage(e.Entry, tl, img))
		}
		return nil
	}); err != nil {
		return rep, err
	}
	rep.Applied = true
	return rep, nil
}

// fillFromImage completes an entry read in layout l with what l does not
// hold, from the image it names, as it is now: so an entry moves from a
// format without (say) the image's name into one with it.
func fillFromImage(e manifest.Entry, l *manifest.Layout, img cloud.Image) manifest.Entry {
	if !l.Binds(manifest.SourceName) {
		e.Name = img.Name
	}
	if !l.Binds(manifest.SourcePublic) {
		e.Public = img.Public
	}
	if !l.Binds(manifest.SourceDeprecation) {
		e.DeprecationTime = ""
		if !img.Deprecation.IsZero() {
			e.DeprecationTime = img.Deprecation.UTC().Format(time.RFC3339)
		}
	}
	return e
}
