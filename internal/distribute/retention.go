package distribute

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Retention says which versions each channel's products keep, with
// prune's rules: per product (use case and architecture) the newest Keep
// versions, every version younger than OlderThan, and every version
// whose image a manifest references — in the working tree or at a git
// tag — whatever its age.
type Retention struct {
	// Keep is how many of the newest versions each product keeps in each
	// channel; 0 keeps all.
	Keep int
	// OlderThan, when set, keeps versions published less than this ago.
	OlderThan time.Duration
	// Referenced returns where a manifest references the image region/id,
	// or "".
	Referenced func(region, id string) string
}

// apply drops the versions beyond the retention from next and returns
// them.
func (r Retention) apply(next map[string]*Products, now time.Time) []VersionRef {
	var retired []VersionRef
	if r.Keep <= 0 {
		return nil
	}
	for _, ch := range slices.Sorted(maps.Keys(next)) {
		prods := next[ch]
		for _, pk := range slices.Sorted(maps.Keys(prods.Products)) {
			prod := prods.Products[pk]
			serials := slices.Sorted(maps.Keys(prod.Versions))
			slices.Reverse(serials) // newest first: serials sort by time
			for rank, s := range serials {
				v := prod.Versions[s]
				if rank < r.Keep || r.keep(v, now) != "" {
					continue
				}
				delete(prod.Versions, s)
				retired = append(retired, VersionRef{
					Channel: ch, Product: pk, Serial: s, Version: v.Label, AssetID: v.AssetID,
					Reason: fmt.Sprintf("beyond the newest %d", r.Keep),
				})
			}
			if len(prod.Versions) == 0 {
				delete(prods.Products, pk)
			}
		}
	}
	return retired
}

// keep says why a version beyond the newest Keep stays, or "".
func (r Retention) keep(v *Version, now time.Time) string {
	if r.OlderThan > 0 {
		if t, err := time.Parse(time.RFC3339, v.Published); err == nil && now.Sub(t) < r.OlderThan {
			return "younger than the retention"
		}
	}
	if r.Referenced != nil {
		for _, region := range slices.Sorted(maps.Keys(v.Images)) {
			if w := r.Referenced(region, v.Images[region]); w != "" {
				return "referenced by " + w
			}
		}
	}
	return ""
}
