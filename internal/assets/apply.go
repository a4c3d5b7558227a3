package assets

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/fanout"
)

// Deleter deletes one asset (absent counts as deleted; cloud.ErrNotYet
// means "retry later").
type Deleter interface {
	DeleteAsset(ctx context.Context, a cloud.Asset) error
}

// Backend is what a cleanup needs from a cloud.
type Backend interface {
	Lister
	Deleter
}

// Outcome is what happened to one asset.
type Outcome string

const (
	Deleted      Outcome = "deleted"
	Retained     Outcome = "retained"      // a planned survivor (retain, protect, skip)
	StillPresent Outcome = "still-present" // deleted without error, yet listed again
	Failed       Outcome = "failed"
)

// Result is one asset's line in a cleanup report.
type Result struct {
	Item
	Outcome Outcome `json:"outcome"`
	Error   string  `json:"error,omitempty"`
}

// Report is the outcome of a cleanup.
type Report struct {
	Results []Result `json:"results"`
	// Unplanned counts assets that should be gone but are not.
	Unplanned int `json:"unplanned"`
}

// Options tune Apply.
type Options struct {
	Regions     []string     // regions to list again when verifying
	Filter      cloud.Filter // the filter the plan was made from
	Concurrency int          // regions at once; deletes within a kind at once
	// Retries bounds the attempts for errors that mean "not yet".
	Retries   int
	RetryBase time.Duration
	RetryMax  time.Duration
	// Progress, when set, shows each deletion.
	Progress cloud.Progress
}

func (o *Options) defaults() {
	if o.Concurrency < 1 {
		o.Concurrency = 8
	}
	if o.Retries < 1 {
		o.Retries = 8
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 2 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 30 * time.Second
	}
}

// Apply deletes what plan says to delete: regions in parallel, and within a
// region kind by kind in cloud.DeleteOrder, so an instance goes before its
// key pair and security group and an image before its snapshots. Then it
// lists again and reports, for every asset, what became of it. An error is
// returned only when verification could not list.
func Apply(ctx context.Context, b Backend, plan Plan, o Options) (Report, error) {
	o.defaults()
	results := make([]Result, len(plan.Items))
	byRegion := map[string][]int{}
	for i, it := range plan.Items {
		results[i] = Result{Item: it}
		switch it.Action {
		case Delete:
			byRegion[it.Asset.Region] = append(byRegion[it.Asset.Region], i)
		case WithParent:
		default:
			results[i].Outcome = Retained
		}
	}
	regions := slices.Sorted(maps.Keys(byRegion))
	fanout.Each(ctx, regions, o.Concurrency, func(ctx context.Context, region string) error {
		idx := byRegion[region]
		for _, kind := range append(slices.Clone(cloud.DeleteOrder), "") {
			var batch []int
			for _, i := range idx {
				k := plan.Items[i].Asset.Kind
				if k == kind || (kind == "" && !slices.Contains(cloud.DeleteOrder, k)) {
					batch = append(batch, i)
				}
			}
			fanout.Each(ctx, batch, o.Concurrency, func(ctx context.Context, i int) error {
				a := plan.Items[i].Asset
				done := func(error) {}
				if o.Progress != nil {
					done = o.Progress.Step(fmt.Sprintf("delete %s %s [%s]", a.Kind, a.ID, a.Region))
				}
				err := cloud.Retry(ctx, o.Retries, o.RetryBase, o.RetryMax, func(ctx context.Context) error {
					return b.DeleteAsset(ctx, a)
				})
				done(err)
				if err != nil {
					results[i].Outcome, results[i].Error = Failed, err.Error()
				}
				return nil
			})
		}
		return nil
	})

	// Verify: whatever is listed again was not deleted.
	again := Scan(ctx, b, o.Regions, o.Filter, o.Concurrency)
	if err := again.Err(); err != nil {
		return Report{Results: results}, fmt.Errorf("verify cleanup: %w", err)
	}
	present := map[string]bool{}
	for _, a := range again.Assets {
		present[key(a)] = true
	}
	rep := Report{Results: results}
	for i := range results {
		r := &results[i]
		if r.Outcome == Retained {
			continue
		}
		switch {
		case present[key(r.Asset)] && r.Outcome == Failed:
		case present[key(r.Asset)]:
			r.Outcome = StillPresent
		case r.Outcome == "":
			r.Outcome = Deleted
		case r.Outcome == Failed:
			// It went after all (deleted by its parent, or the error was late).
			r.Outcome, r.Error = Deleted, ""
		}
		if r.Outcome == StillPresent || r.Outcome == Failed {
			rep.Unplanned++
		}
	}
	return rep, nil
}

// ErrConfirm is returned when a plan is too big to apply without
// confirmation.
var ErrConfirm = errors.New("confirmation required")
