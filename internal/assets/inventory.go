package assets

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/fanout"
)

// Lister lists assets by tags in one region.
type Lister interface {
	ListAssets(ctx context.Context, region string, f cloud.Filter) ([]cloud.Asset, error)
}

// Inventory is what a scan found.
type Inventory struct {
	Assets []cloud.Asset
	// Errors holds the regions whose scan failed; their assets are missing.
	Errors map[string]error
}

// Scan lists the kiln-managed assets matching f in every region, at most
// limit regions at a time. A region that fails is recorded in Errors and
// the others are still returned. The result is sorted by region, kind order
// and id.
func Scan(ctx context.Context, l Lister, regions []string, f cloud.Filter, limit int) Inventory {
	want := cloud.Filter{Tags: map[string]string{cloud.TagManaged: "true"}, IDs: f.IDs}
	maps.Copy(want.Tags, f.Tags)
	found := make([][]cloud.Asset, len(regions))
	errs := fanout.Each(ctx, regions, limit, func(ctx context.Context, region string) error {
		as, err := l.ListAssets(ctx, region, want)
		if err != nil {
			return fmt.Errorf("list assets in %s: %w", region, err)
		}
		found[slices.Index(regions, region)] = as
		return nil
	})
	inv := Inventory{Errors: map[string]error{}}
	for i, as := range found {
		if errs[i] != nil {
			inv.Errors[regions[i]] = errs[i]
			continue
		}
		inv.Assets = append(inv.Assets, as...)
	}
	sortAssets(inv.Assets)
	return inv
}

// Err joins the scan's region errors, or returns nil.
func (inv Inventory) Err() error {
	if len(inv.Errors) == 0 {
		return nil
	}
	regions := slices.Sorted(maps.Keys(inv.Errors))
	msgs := make([]string, len(regions))
	for i, r := range regions {
		msgs[i] = inv.Errors[r].Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// kindRank orders kinds for deletion (cloud.DeleteOrder); unknown kinds go
// last.
func kindRank(k cloud.Kind) int {
	if i := slices.Index(cloud.DeleteOrder, k); i >= 0 {
		return i
	}
	return len(cloud.DeleteOrder)
}

func sortAssets(as []cloud.Asset) {
	sort.SliceStable(as, func(i, j int) bool {
		a, b := as[i], as[j]
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		if ra, rb := kindRank(a.Kind), kindRank(b.Kind); ra != rb {
			return ra < rb
		}
		return a.ID < b.ID
	})
}

// key identifies an asset across regions.
func key(a cloud.Asset) string { return a.Region + "/" + string(a.Kind) + "/" + a.ID }

// RunOf returns the asset id of the run that made a, looking through to the
// parent for untagged children.
func RunOf(a cloud.Asset, byID map[string]cloud.Asset) string {
	if id := a.Tags[cloud.TagAssetID]; id != "" {
		return id
	}
	if p, ok := byID[a.Region+"/"+a.Parent]; ok {
		return p.Tags[cloud.TagAssetID]
	}
	return ""
}

// index maps region/id to asset, for parent lookups.
func index(as []cloud.Asset) map[string]cloud.Asset {
	m := make(map[string]cloud.Asset, len(as))
	for _, a := range as {
		m[a.Region+"/"+a.ID] = a
	}
	return m
}

// RunSummary counts one run's assets by kind.
type RunSummary struct {
	RunID   string             `json:"run_id"`
	UseCase string             `json:"use_case"`
	Regions []string           `json:"regions"`
	Kinds   map[cloud.Kind]int `json:"kinds"`
	Total   int                `json:"total"`
}

// ByRun groups assets by run, newest run first (asset ids sort by time).
func ByRun(as []cloud.Asset) []RunSummary {
	byID := index(as)
	runs := map[string]*RunSummary{}
	for _, a := range as {
		id := RunOf(a, byID)
		s := runs[id]
		if s == nil {
			s = &RunSummary{RunID: id, Kinds: map[cloud.Kind]int{}}
			runs[id] = s
		}
		if s.UseCase == "" {
			s.UseCase = a.Tags[cloud.TagUseCase]
		}
		if !slices.Contains(s.Regions, a.Region) {
			s.Regions = append(s.Regions, a.Region)
		}
		s.Kinds[a.Kind]++
		s.Total++
	}
	out := make([]RunSummary, 0, len(runs))
	for _, s := range runs {
		sort.Strings(s.Regions)
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RunID > out[j].RunID })
	return out
}
