package assets

import (
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Action is what a plan does with an asset.
type Action string

const (
	Delete     Action = "delete"      // delete it
	WithParent Action = "with-parent" // goes when its parent (a stack) is deleted
	Retain     Action = "retain"      // tagged kiln:retain=true or kept by its stack's policy
	Protect    Action = "protect"     // an image a manifest or deployment references, its storage, or a deployment's resource
	Skip       Action = "skip"        // its run is in progress, or it is too young
)

// Item is one asset of a plan.
type Item struct {
	Asset  cloud.Asset `json:"asset"`
	RunID  string      `json:"run_id,omitempty"`
	Action Action      `json:"action"`
	Reason string      `json:"reason,omitempty"`
}

// Plan says what a cleanup will do with every asset it found.
type Plan struct {
	Items []Item `json:"items"`
}

// Deletes counts the items the plan deletes itself.
func (p Plan) Deletes() int {
	n := 0
	for _, it := range p.Items {
		if it.Action == Delete {
			n++
		}
	}
	return n
}

// Policy holds the safety rules a plan applies.
type Policy struct {
	// Referenced returns why an image must be kept (e.g. "referenced by
	// v1.2.0:manifests/stable.json"), or "".
	Referenced func(region, imageID string) string
	// InProgress reports whether a run is still being worked on, and why.
	InProgress func(runID string, newest time.Time) (bool, string)
	// OlderThan, when set, leaves alone assets younger than it.
	OlderThan time.Duration
	Now       time.Time
}

// MakePlan decides, for every asset, what a cleanup does with it. Untagged
// children follow their parent: the snapshots of a protected image are
// protected, the resources of a stack go with the stack.
func MakePlan(as []cloud.Asset, pol Policy) Plan {
	byID := index(as)
	newest := map[string]time.Time{}
	for _, a := range as {
		if id := RunOf(a, byID); a.Created.After(newest[id]) {
			newest[id] = a.Created
		}
	}
	decided := map[string]Item{}
	var decide func(a cloud.Asset) Item
	decide = func(a cloud.Asset) Item {
		if it, ok := decided[key(a)]; ok {
			return it
		}
		it := Item{Asset: a, RunID: RunOf(a, byID), Action: Delete}
		parent, hasParent := byID[a.Region+"/"+a.Parent]
		switch {
		case a.Tags[cloud.TagRetain] == "true":
			it.Action, it.Reason = Retain, cloud.TagRetain+"=true"
		case a.Retain:
			it.Action, it.Reason = Retain, "its stack retains it on delete"
		case a.Tags[cloud.TagDeployment] != "":
			// What a deployment made is torn down with the deployment.
			it.Action, it.Reason = Protect, "belongs to deployment "+a.Tags[cloud.TagDeployment]+"; kiln destroy removes it"
		case a.Kind == cloud.KindImage && pol.Referenced != nil && pol.Referenced(a.Region, a.ID) != "":
			it.Action, it.Reason = Protect, pol.Referenced(a.Region, a.ID)
		case hasParent && a.Parent != "":
			p := decide(parent)
			switch {
			case p.Action != Delete:
				it.Action, it.Reason = p.Action, "belongs to "+string(parent.Kind)+" "+parent.ID+" ("+string(p.Action)+")"
			case parent.Kind == cloud.KindStack:
				it.Action, it.Reason = WithParent, "deleted with stack "+parent.ID
			}
		}
		if it.Action == Delete && pol.InProgress != nil {
			if busy, why := pol.InProgress(it.RunID, newest[it.RunID]); busy {
				it.Action, it.Reason = Skip, why
			}
		}
		if it.Action == Delete && pol.OlderThan > 0 {
			// What does not say when it was made (a security group) is as
			// young as its run's newest asset; what has no age at all is
			// not known to be old enough.
			created := a.Created
			if created.IsZero() {
				created = newest[it.RunID]
			}
			switch {
			case created.IsZero():
				it.Action, it.Reason = Skip, "creation time unknown: not known to be older than --older-than "+pol.OlderThan.String()
			case pol.Now.Sub(created) < pol.OlderThan:
				it.Action, it.Reason = Skip, "younger than --older-than "+pol.OlderThan.String()
			}
		}
		decided[key(a)] = it
		return it
	}
	plan := Plan{Items: make([]Item, 0, len(as))}
	for _, a := range as {
		plan.Items = append(plan.Items, decide(a))
	}
	return plan
}
