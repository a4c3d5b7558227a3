package ownership

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Adoption actions.
const (
	Adopt = "adopt" // tag it with this project
	Leave = "leave" // not adoptable; Reason says why
)

// AdoptItem is one resource of an adoption plan.
type AdoptItem struct {
	Asset  cloud.Asset `json:"asset"`
	RunID  string      `json:"run_id,omitempty"`
	Action string      `json:"action"`
	Reason string      `json:"reason,omitempty"`
	// Outcome is "adopted" or "failed" once applied.
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
}

// AdoptReport is the outcome of `kiln adopt`.
type AdoptReport struct {
	Schema  string         `json:"schema"`
	Project string         `json:"project"`
	Applied bool           `json:"applied"`
	Items   []AdoptItem    `json:"items"`
	Summary map[string]int `json:"summary"`
}

// PlanAdoption picks, from kiln-managed assets, those with no kiln:project
// tag whose use case is one of p's: the resources a kiln older than
// project tags made for this project. Untagged children (snapshots of an
// image, resources of a stack) follow their parent and are not listed.
// Resources of other projects, of use cases p does not name, without
// the project's cost tag, or with no use case tag are left, with the
// reason.
func PlanAdoption(as []cloud.Asset, p Project) []AdoptItem {
	out := []AdoptItem{}
	for _, a := range as {
		if !cloud.Managed(a.Tags) {
			continue // an untagged child goes with its parent
		}
		it := AdoptItem{Asset: a, RunID: a.Tags[cloud.TagAssetID], Action: Adopt}
		uc := a.Tags[cloud.TagUseCase]
		switch v, why := p.Judge(a.Tags); {
		case v == Ours:
			continue // adopted already
		case v == Other:
			it.Action, it.Reason = Leave, why
		case uc == "":
			it.Action, it.Reason = Leave, fmt.Sprintf("no %s tag: not known to be this project's", cloud.TagUseCase)
		case !slices.Contains(p.UseCases, uc):
			it.Action, it.Reason = Leave, fmt.Sprintf("use case %q is not in this kiln.yaml", uc)
		case p.CostKey != "" && a.Tags[p.CostKey] != p.CostValue:
			it.Action, it.Reason = Leave, fmt.Sprintf("cost tag %s=%q is not this project's (%q)", p.CostKey, a.Tags[p.CostKey], p.CostValue)
		}
		out = append(out, it)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Asset, out[j].Asset
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		return a.ID < b.ID
	})
	return out
}

// ApplyAdoption tags every item planned for adoption with p's project and
// records each outcome in the items. It goes on after a failure; the
// number of failures is returned.
func ApplyAdoption(ctx context.Context, t cloud.AssetTagger, items []AdoptItem, p Project) int {
	failed := 0
	for i := range items {
		it := &items[i]
		if it.Action != Adopt {
			continue
		}
		if err := t.TagAsset(ctx, it.Asset, map[string]string{cloud.TagProject: p.Name}); err != nil {
			it.Outcome, it.Error = "failed", err.Error()
			failed++
			continue
		}
		it.Outcome = "adopted"
	}
	return failed
}
