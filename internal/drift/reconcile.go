package drift

import (
	"context"
	"fmt"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/fanout"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Setter changes what reconcile can fix.
type Setter interface {
	SetLaunchPermissions(ctx context.Context, region, id string, p cloud.LaunchPermissions) error
	SetDeprecation(ctx context.Context, region, id string, t time.Time) error
}

// Fix is one change reconcile makes to one image.
type Fix struct {
	Region  string `json:"region"`
	ImageID string `json:"image_id"`
	// Permissions, when set, are the launch permissions to restore.
	Permissions *cloud.LaunchPermissions `json:"permissions,omitempty"`
	// Deprecation, when set, is the deprecation time to restore (zero
	// removes it).
	Deprecation *time.Time `json:"deprecation,omitempty"`
	Findings    []Finding  `json:"findings"`
	Error       string     `json:"error,omitempty"`
}

// Plan turns a report's fixable findings into fixes (one per image) and
// returns the drift findings no fix can cure: a missing or unavailable image,
// a name or architecture mismatch need a new release or a rollback.
func Plan(rep Report, in Input) (fixes []Fix, unfixable []Finding) {
	entries := map[string]located{}
	for _, ch := range in.Channels {
		for _, e := range ch.Manifest.Entries() {
			loc := in.locate(e.UseCase, e.Region)
			entries[ch.Name+"/"+e.UseCase+"/"+loc] = located{channel: ch.Name, ch: ch, loc: loc, Located: e}
		}
	}
	byImage := map[string]int{}
	for _, f := range rep.Findings {
		if f.Severity != SevDrift {
			continue
		}
		if !f.Kind.Fixable() {
			unfixable = append(unfixable, f)
			continue
		}
		e := entries[f.Channel+"/"+f.UseCase+"/"+f.Region]
		k := f.Region + "/" + f.ImageID
		i, ok := byImage[k]
		if !ok {
			i = len(fixes)
			byImage[k] = i
			fixes = append(fixes, Fix{Region: f.Region, ImageID: f.ImageID})
		}
		fx := &fixes[i]
		fx.Findings = append(fx.Findings, f)
		switch f.Kind {
		case Public, Permissions:
			p := cloud.LaunchPermissions{Public: e.Public}
			if in.Policy != nil {
				if pol, ok := in.Policy(e.UseCase); ok {
					p.Accounts, p.Organizations, p.OrganizationalUnits = pol.Accounts, pol.Organizations, pol.OrganizationalUnits
					if !e.ch.binds(manifest.SourcePublic) {
						// The file does not say; the policy does.
						p.Public = pol.Public
					}
				}
			}
			fx.Permissions = &p
		case Deprecation:
			t, _ := parseTime(e.DeprecationTime) // Check already parsed it
			fx.Deprecation = &t
		}
	}
	return fixes, unfixable
}

// Apply makes the fixes, regions in parallel, and records each one's error.
// It returns the number that failed.
func Apply(ctx context.Context, b Setter, fixes []Fix, concurrency int) int {
	errs := fanout.Range(ctx, len(fixes), concurrency, func(ctx context.Context, i int) error {
		fx := fixes[i]
		if fx.Permissions != nil {
			if err := b.SetLaunchPermissions(ctx, fx.Region, fx.ImageID, *fx.Permissions); err != nil {
				return fmt.Errorf("launch permissions of %s in %s: %w", fx.ImageID, fx.Region, err)
			}
		}
		if fx.Deprecation != nil {
			if err := b.SetDeprecation(ctx, fx.Region, fx.ImageID, *fx.Deprecation); err != nil {
				return fmt.Errorf("deprecation of %s in %s: %w", fx.ImageID, fx.Region, err)
			}
		}
		return nil
	})
	failed := 0
	for i, err := range errs {
		if err != nil {
			fixes[i].Error = err.Error()
			failed++
		}
	}
	return failed
}
