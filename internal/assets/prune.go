package assets

import (
	"fmt"
	"sort"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/ownership"
)

// Retention says which released images prune keeps.
type Retention struct {
	// Keep is how many of the newest images to keep per use case,
	// architecture and region.
	Keep int
	// OlderThan, when set, keeps images younger than it.
	OlderThan time.Duration
	// Referenced returns where a manifest references an image, or "".
	Referenced func(region, id string) string
	// InUse returns what uses an image (a running instance, a launch
	// template), or "".
	InUse func(region, id string) string
	Now   time.Time
	// Project is whose images may go; others' are listed and kept, and
	// do not count towards Keep.
	Project ownership.Project
}

// PrunePlan plans the deletion of released images (and their snapshots)
// beyond the retention: per use case, architecture and region it keeps the
// newest Keep, every image a manifest references and every image in use.
// Other kinds of assets are cleanup's business and are left out.
func PrunePlan(as []cloud.Asset, r Retention) Plan {
	released := map[string]bool{}
	groups := map[string][]cloud.Asset{}
	for _, a := range as {
		if a.Kind != cloud.KindImage || a.Tags[cloud.TagPhase] != cloud.PhaseReplicate {
			continue
		}
		released[a.Region+"/"+a.ID] = true
		if !r.Project.Owns(a.Tags) {
			continue // not ranked: another project's newer image must not push ours out
		}
		g := a.Tags[cloud.TagUseCase] + "/" + a.Tags[cloud.TagArch] + "/" + a.Region
		groups[g] = append(groups[g], a)
	}
	newest := map[string]int{} // region/id -> rank, 1 = newest
	for _, g := range groups {
		sort.SliceStable(g, func(i, j int) bool { return g[i].Created.After(g[j].Created) })
		for i, a := range g {
			newest[a.Region+"/"+a.ID] = i + 1
		}
	}
	var scope []cloud.Asset
	for _, a := range as {
		if released[a.Region+"/"+a.ID] || (a.Parent != "" && released[a.Region+"/"+a.Parent]) {
			scope = append(scope, a)
		}
	}
	return MakePlan(scope, Policy{
		Referenced: func(region, id string) string {
			if n := newest[region+"/"+id]; n > 0 && n <= r.Keep {
				return fmt.Sprintf("retention (newest %d of %d)", n, r.Keep)
			}
			if r.Referenced != nil {
				if w := r.Referenced(region, id); w != "" {
					return "referenced by " + w
				}
			}
			if r.InUse != nil {
				if w := r.InUse(region, id); w != "" {
					return "in use by " + w
				}
			}
			return ""
		},
		OlderThan: r.OlderThan,
		Now:       r.Now,
		Project:   r.Project,
	})
}
