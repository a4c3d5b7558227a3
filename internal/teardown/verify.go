package teardown

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// Verification is the listing after a teardown: everything that should be
// gone, looked for again through every lister and the tag index, until
// it is gone or the time is up.
type Verification struct {
	Passed bool `json:"passed"`
	// Rounds is how many times everything was listed.
	Rounds int    `json:"rounds"`
	Took   string `json:"took"`
	// Left is what should be gone and is not, in the last round.
	Left []Left `json:"left"`
	// Kept counts the retained resources the last round found.
	Kept int `json:"kept"`
	// Stale lists what the tag index returned that its own service says
	// is gone (the index lags deletions by up to an hour or more).
	Stale []string `json:"stale"`
}

// Left is a resource found after a teardown that should be gone.
type Left struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	// FoundBy names the listing that found it.
	FoundBy string `json:"found_by"`
	Note    string `json:"note,omitempty"`
}

// verify lists the deployment's resources again until nothing but kept
// (type|id keys) is found, or destroy.verify_timeout passes.
func (d *Destroyer) verify(ctx context.Context, p *Plan, kept map[string]bool) (*Verification, error) {
	start := time.Now()
	deadline := start.Add(d.Config.Destroy.VerifyTimeout.Std())
	pause := cmpDuration(d.PollInterval, 2*time.Second)
	v := &Verification{}
	stale := map[string]bool{}
	for {
		v.Rounds++
		left, nkept, st, err := d.verifyOnce(ctx, p, kept)
		if err != nil {
			return nil, err
		}
		for _, s := range st {
			stale[s] = true
		}
		v.Left, v.Kept = left, nkept
		if len(left) == 0 || time.Now().Add(pause).After(deadline) {
			break
		}
		d.log().Info("resources still listed; looking again", "deployment", p.Deployment, "left", len(left), "pause", pause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 30*time.Second)
	}
	v.Passed = len(v.Left) == 0
	v.Took = time.Since(start).Round(time.Millisecond).String()
	v.Stale = slices.Sorted(maps.Keys(stale))
	if v.Stale == nil {
		v.Stale = []string{}
	}
	if v.Left == nil {
		v.Left = []Left{}
	}
	return v, nil
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// verifyOnce lists once: the units' kinds, the backend's inventory, the
// leftover listers, and the tag index by kiln:deployment and by the cost
// tag.
func (d *Destroyer) verifyOnce(ctx context.Context, p *Plan, kept map[string]bool) (left []Left, nkept int, stale []string, err error) {
	seen := map[string]bool{}
	add := func(r deploy.Resource, by, note string) {
		k := key(r)
		if seen[k] {
			return
		}
		seen[k] = true
		if kept[k] || r.Retain && !p.opts.PurgeRetained {
			nkept++
			return
		}
		left = append(left, Left{Type: kilnType(r.Type), ID: r.ID, FoundBy: by, Note: note})
	}
	for _, kn := range slices.Sorted(maps.Keys(d.Kinds)) {
		rs, err := d.Kinds[kn].Resources(ctx, p.Region, p.scope)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("list %s units: %w", kn, err)
		}
		for _, r := range rs {
			add(r, kn+" units", "")
		}
	}
	rs, err := d.findLeftovers(ctx, p, nil)
	if err != nil {
		return nil, 0, nil, err
	}
	for _, r := range rs {
		add(r, "by tag", "")
	}
	if d.Index != nil {
		found, st, err := d.Index.Tagged(ctx, p.Region, p.scope)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("tag index: %w", err)
		}
		stale = append(stale, st...)
		for _, f := range found {
			add(f.Resource, "tag index", unconfirmed(f))
		}
		if key, value := d.Config.CostTag.Key, p.def.CostTagValue(); key != "" && d.costTagOwn(p.Deployment, value) {
			found, st, err := d.Index.Tagged(ctx, p.Region, map[string]string{key: value})
			if err != nil {
				return nil, 0, nil, fmt.Errorf("tag index: %w", err)
			}
			stale = append(stale, st...)
			for _, f := range found {
				switch dep := f.Tags[cloud.TagDeployment]; {
				case dep != "" && dep != p.Deployment:
					// Another deployment's, with the same cost tag.
				case dep == "" || !cloud.Managed(f.Tags):
					add(f.Resource, "tag index (cost tag)", fmt.Sprintf("carries %s=%s but was not made by kiln for %s; check it and delete it by hand", key, value, p.Deployment))
				default:
					add(f.Resource, "tag index (cost tag)", unconfirmed(f))
				}
			}
		}
	}
	return left, nkept, stale, nil
}

func unconfirmed(f Indexed) string {
	if f.Confirmed {
		return ""
	}
	return "kiln has no describe for this type: it counts as left until the tag index drops it"
}

// costTagOwn reports whether value, the deployment's cost tag value, is
// its own: no other deployment (of kiln.yaml, or a personal one with a
// record that is not destroyed) has it.
func (d *Destroyer) costTagOwn(name, value string) bool {
	for n, def := range d.Config.Deployments {
		if n != name && !def.Template && def.CostTagValue() == value {
			return false
		}
	}
	personal, err := record.List(d.Config.Dir)
	if err != nil {
		return false
	}
	for _, n := range personal {
		if n == name {
			continue
		}
		if _, ok := d.Config.Deployments[n]; ok {
			continue
		}
		def, rec, err := d.Deployments.Definition(n)
		if err != nil || rec == nil || rec.State == record.StateDestroyed {
			continue
		}
		if def.CostTagValue() == value {
			return false
		}
	}
	return true
}
