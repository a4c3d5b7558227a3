package drift

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/fanout"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Images is what drift reads from a cloud.
type Images interface {
	ListImages(ctx context.Context, region string, f cloud.Filter) ([]cloud.Image, error)
	LaunchPermissions(ctx context.Context, region, id string) (cloud.LaunchPermissions, error)
}

// Kind is the kind of a finding.
type Kind string

const (
	Missing      Kind = "missing"      // the image does not exist in the region
	Unavailable  Kind = "unavailable"  // it exists but is not available
	Name         Kind = "name"         // its name differs from the entry
	Architecture Kind = "architecture" // its architecture differs
	Public       Kind = "public"       // its public flag differs from the entry
	Permissions  Kind = "permissions"  // its shared accounts/organizations differ from the policy
	Deprecation  Kind = "deprecation"  // its deprecation time differs from the entry
	Policy       Kind = "policy"       // the entry's public flag contradicts the publish policy
	Deprecated   Kind = "deprecated"   // warning: deprecated already
	Deprecating  Kind = "deprecating"  // warning: deprecated within the warning window
	Orphan       Kind = "orphan"       // a kiln-managed image no manifest references
)

// Severity says whether a finding is drift (exit 1), a warning or an orphan.
type Severity string

const (
	SevDrift   Severity = "drift"
	SevWarning Severity = "warning"
	SevOrphan  Severity = "orphan"
)

func (k Kind) severity() Severity {
	switch k {
	case Deprecated, Deprecating, Policy:
		return SevWarning
	case Orphan:
		return SevOrphan
	}
	return SevDrift
}

// Fixable reports whether reconcile can make the cloud match for this kind.
func (k Kind) Fixable() bool { return k == Public || k == Permissions || k == Deprecation }

// Finding is one problem.
type Finding struct {
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	Channel  string   `json:"channel,omitempty"`
	UseCase  string   `json:"use_case,omitempty"`
	Region   string   `json:"region"`
	ImageID  string   `json:"image_id"`
	Expected string   `json:"expected,omitempty"`
	Actual   string   `json:"actual,omitempty"`
	Message  string   `json:"message"`
	// Key is the entry's key as its manifest file writes it, when that is
	// not kiln's key (a declared format, e.g. linux-amd64-ephemeral).
	Key string `json:"key,omitempty"`
}

// Summary counts a report's checks and findings.
type Summary struct {
	Checked  int          `json:"checked"`
	InSync   int          `json:"in_sync"`
	Drifted  map[Kind]int `json:"drifted"`
	Warnings int          `json:"warnings"`
	Orphans  int          `json:"orphans"`
	// Coverage is InSync / Checked (1 when nothing is checked).
	Coverage float64 `json:"coverage"`
	Regions  int     `json:"regions_scanned"`
}

// Report is the outcome of a drift check.
type Report struct {
	Summary  Summary   `json:"summary"`
	Findings []Finding `json:"findings"`
}

// Drifted reports whether any finding is drift (not a warning or orphan).
func (r Report) Drifted() bool {
	for _, f := range r.Findings {
		if f.Severity == SevDrift {
			return true
		}
	}
	return false
}

// Channel is one channel's manifest to check.
type Channel struct {
	Name     string
	Manifest manifest.Manifest
	// Layout is the format the manifest was read in; nil is kiln's own.
	// Only the fields it holds from the cloud are compared: a format
	// without a name field has no name to drift, and its constants and
	// attributes are kiln validate's business.
	Layout *manifest.Layout
}

// binds reports whether the channel's entries hold s.
func (c Channel) binds(s manifest.FieldSource) bool { return c.Layout == nil || c.Layout.Binds(s) }

// fileKey is the key the channel's file uses for kiln's key.
func (c Channel) fileKey(key string) string {
	if c.Layout == nil {
		return key
	}
	if k, ok := c.Layout.FileKey(key); ok {
		return k
	}
	return key
}

// Input says what to check.
type Input struct {
	// Channels are checked entry by entry.
	Channels []Channel
	// Referenced holds every manifest whose images are not orphans: all
	// channels' working-tree manifests and those at the git refs asked for.
	Referenced []manifest.Manifest
	// Policy returns the launch permissions the publish policy of a manifest
	// key (use case) grants; ok false when the key is unknown to the config.
	Policy func(useCase string) (cloud.LaunchPermissions, bool)
	// Regions are scanned for orphans besides the regions entries name:
	// locations, as backends take them (ACCOUNT/REGION for a region of
	// another account).
	Regions []string
	// Locate returns where the image of a manifest key's entry in region
	// lives, when that is not the region of the backend's own account;
	// nil means it always is.
	Locate func(key, region string) string
	// Ignore, when set, exempts an image from the orphan check (e.g. it
	// belongs to a run still in progress).
	Ignore func(cloud.Image) bool
	// Owns says whether a kiln-managed image is this project's; only this
	// project's images can be its orphans. Nil: none are.
	Owns       func(tags map[string]string) bool
	WarnBefore time.Duration
	Now        time.Time
	// Concurrency bounds the regions scanned at once.
	Concurrency int
}

// located is an entry of a channel.
type located struct {
	channel string
	ch      Channel
	loc     string // where its image lives (see Input.Locate)
	manifest.Located
}

// locate applies in.Locate.
func (in Input) locate(key, region string) string {
	if in.Locate == nil {
		return region
	}
	return in.Locate(key, region)
}

// Check compares the manifests in in with the cloud.
func Check(ctx context.Context, b Images, in Input) (Report, error) {
	byRegion := map[string][]located{}
	for _, ch := range in.Channels {
		for _, e := range ch.Manifest.Entries() {
			loc := in.locate(e.UseCase, e.Region)
			byRegion[loc] = append(byRegion[loc], located{channel: ch.Name, ch: ch, loc: loc, Located: e})
		}
	}
	regionSet := map[string]bool{}
	for _, r := range in.Regions {
		regionSet[r] = true
	}
	for r := range byRegion {
		regionSet[r] = true
	}
	regions := slices.Sorted(maps.Keys(regionSet))
	referenced := map[string]bool{}
	for _, m := range in.Referenced {
		for _, e := range m.Entries() {
			referenced[in.locate(e.UseCase, e.Region)+"/"+e.ID] = true
		}
	}

	perRegion := make([][]Finding, len(regions))
	inSync := make([]int, len(regions))
	errs := fanout.Each(ctx, regions, in.Concurrency, func(ctx context.Context, region string) error {
		i := slices.Index(regions, region)
		imgs, err := b.ListImages(ctx, region, cloud.Filter{})
		if err != nil {
			return fmt.Errorf("scan images in %s: %w", region, err)
		}
		byID := make(map[string]cloud.Image, len(imgs))
		for _, img := range imgs {
			byID[img.ID] = img
		}
		for _, e := range byRegion[region] {
			fs, err := checkEntry(ctx, b, in, e, byID)
			if err != nil {
				return err
			}
			drifted := false
			for _, f := range fs {
				drifted = drifted || f.Severity == SevDrift
			}
			if !drifted {
				inSync[i]++
			}
			perRegion[i] = append(perRegion[i], fs...)
		}
		for _, img := range imgs {
			if !cloud.Managed(img.Tags) || in.Owns == nil || !in.Owns(img.Tags) || referenced[region+"/"+img.ID] || (in.Ignore != nil && in.Ignore(img)) {
				continue
			}
			perRegion[i] = append(perRegion[i], Finding{
				Kind: Orphan, Severity: SevOrphan, Region: region, ImageID: img.ID,
				UseCase: img.Tags[cloud.TagUseCase], Actual: img.Name,
				Message: fmt.Sprintf("kiln-managed image of run %s is referenced by no manifest (created %s)",
					img.Tags[cloud.TagAssetID], img.Created.UTC().Format(time.RFC3339)),
			})
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			return Report{}, fmt.Errorf("drift in %s: %w", regions[i], err)
		}
	}

	rep := Report{Summary: Summary{Drifted: map[Kind]int{}, Regions: len(regions)}}
	for i := range regions {
		rep.Findings = append(rep.Findings, perRegion[i]...)
		rep.Summary.InSync += inSync[i]
	}
	for _, es := range byRegion {
		rep.Summary.Checked += len(es)
	}
	for _, f := range rep.Findings {
		switch f.Severity {
		case SevDrift:
			rep.Summary.Drifted[f.Kind]++
		case SevWarning:
			rep.Summary.Warnings++
		case SevOrphan:
			rep.Summary.Orphans++
		}
	}
	rep.Summary.Coverage = 1
	if rep.Summary.Checked > 0 {
		rep.Summary.Coverage = float64(rep.Summary.InSync) / float64(rep.Summary.Checked)
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i], rep.Findings[j]
		if a.Severity != b.Severity {
			return a.Severity < b.Severity
		}
		if a.Channel != b.Channel {
			return a.Channel < b.Channel
		}
		if a.UseCase != b.UseCase {
			return a.UseCase < b.UseCase
		}
		return a.Region < b.Region
	})
	return rep, nil
}

// checkEntry compares one manifest entry with the image in the cloud.
func checkEntry(ctx context.Context, b Images, in Input, e located, byID map[string]cloud.Image) ([]Finding, error) {
	key := e.ch.fileKey(e.UseCase)
	if key == e.UseCase {
		key = ""
	}
	f := func(k Kind, expected, actual, msg string) Finding {
		return Finding{Kind: k, Severity: k.severity(), Channel: e.channel, UseCase: e.UseCase, Key: key,
			Region: e.loc, ImageID: e.ID, Expected: expected, Actual: actual, Message: msg}
	}
	img, ok := byID[e.ID]
	if !ok {
		return []Finding{f(Missing, "available", "absent", "image does not exist (deleted or deregistered): needs a new release or a rollback")}, nil
	}
	var out []Finding
	if img.State != cloud.StateAvailable {
		out = append(out, f(Unavailable, string(cloud.StateAvailable), string(img.State), "image is not available"))
	}
	if e.ch.binds(manifest.SourceName) && img.Name != e.Name {
		out = append(out, f(Name, e.Name, img.Name, "image name differs from the manifest"))
	}
	if img.Architecture != e.Architecture {
		out = append(out, f(Architecture, e.Architecture, img.Architecture, "image architecture differs from the manifest"))
	}
	if e.ch.binds(manifest.SourcePublic) && img.Public != e.Public {
		out = append(out, f(Public, fmt.Sprint(e.Public), fmt.Sprint(img.Public), "image public flag differs from the manifest"))
	}
	if in.Policy != nil {
		if pol, ok := in.Policy(e.UseCase); ok {
			if e.ch.binds(manifest.SourcePublic) && pol.Public != e.Public {
				out = append(out, f(Policy, fmt.Sprint(pol.Public), fmt.Sprint(e.Public),
					"manifest entry's public flag contradicts the use case's publish policy"))
			}
			if len(pol.Accounts)+len(pol.Organizations)+len(pol.OrganizationalUnits) > 0 {
				got, err := b.LaunchPermissions(ctx, e.loc, e.ID)
				if err != nil {
					return nil, fmt.Errorf("launch permissions of %s: %w", e.ID, err)
				}
				if want, have := sharing(pol), sharing(got); want != have {
					out = append(out, f(Permissions, want, have, "image is not shared as the publish policy says"))
				}
			}
		}
	}
	want, err := parseTime(e.DeprecationTime)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", e.UseCase, e.Region, err)
	}
	if e.ch.binds(manifest.SourceDeprecation) && !want.Equal(img.Deprecation.Truncate(time.Second)) {
		out = append(out, f(Deprecation, formatTime(want), formatTime(img.Deprecation), "image deprecation time differs from the manifest"))
	}
	if d := img.Deprecation; !d.IsZero() {
		switch {
		case !d.After(in.Now):
			out = append(out, f(Deprecated, "", formatTime(d), "image is deprecated"))
		case in.WarnBefore > 0 && d.Sub(in.Now) <= in.WarnBefore:
			out = append(out, f(Deprecating, "", formatTime(d), fmt.Sprintf("image will be deprecated in %s", config.Duration(d.Sub(in.Now).Round(time.Hour)))))
		}
	}
	return out, nil
}

// sharing renders the non-public part of launch permissions comparably.
func sharing(p cloud.LaunchPermissions) string {
	parts := slices.Concat(p.Accounts, p.Organizations, p.OrganizationalUnits)
	slices.Sort(parts)
	return fmt.Sprint(slices.Compact(parts))
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("deprecation_time %q: %w", s, err)
	}
	return t.UTC().Truncate(time.Second), nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}
