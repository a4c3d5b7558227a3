package assets

import (
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/ownership"
)

// Action is what a plan does with an asset.
type Action string

const (
	Delete     Action = "delete"      // delete it
	WithParent Action = "with-parent" // goes when its parent (a stack) is deleted
	Retain     Action = "retain"      // tagged kiln:retain=true or kept by its stack's policy
	Protect    Action = "protect"     // an image a channel manifest references, or its storage; in use; of no known run
	Skip       Action = "skip"        // its run is in progress, or it is too young
	Foreign    Action = "foreign"     // not this project's: another project's or use case's, or not tagged with a project
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
	// Project is whose assets may be deleted; the zero Project owns
	// nothing, so a plan without it deletes nothing.
	Project ownership.Project
	// InUse, when set, returns what uses an asset that kiln did not make
	// (an image registered from a kiln snapshot), or "".
	InUse func(a cloud.Asset) string
	// ForceUnidentified lets kiln-managed assets with no kiln:asset-id go;
	// without it they are kept, as no run is known to have made them.
	ForceUnidentified bool
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
		hasParent = hasParent && a.Parent != ""
		// An untagged child is judged with its parent; everything else
		// by its own tags.
		own, notOurs := ownership.Ours, ""
		if !hasParent || a.Tags[cloud.TagManaged] != "" {
			own, notOurs = pol.Project.Judge(a.Tags)
		}
		switch {
		case own != ownership.Ours:
			it.Action, it.Reason = Foreign, notOurs
		case ownership.IsTrue(a.Tags[cloud.TagRetain]):
			it.Action, it.Reason = Retain, cloud.TagRetain+"="+a.Tags[cloud.TagRetain]
		case a.Retain:
			it.Action, it.Reason = Retain, "its stack retains it on delete"
		case a.Kind == cloud.KindImage && pol.Referenced != nil && pol.Referenced(a.Region, a.ID) != "":
			it.Action, it.Reason = Protect, pol.Referenced(a.Region, a.ID)
		case pol.InUse != nil && pol.InUse(a) != "":
			it.Action, it.Reason = Protect, "in use by "+pol.InUse(a)
		case hasParent:
			p := decide(parent)
			switch {
			case p.Action != Delete:
				it.Action, it.Reason = p.Action, "belongs to "+string(parent.Kind)+" "+parent.ID+" ("+string(p.Action)+")"
			case parent.Kind == cloud.KindStack:
				it.Action, it.Reason = WithParent, "deleted with stack "+parent.ID
			}
		case it.RunID == "" && !pol.ForceUnidentified:
			it.Action, it.Reason = Protect, "kiln-managed but without "+cloud.TagAssetID+": no run is known to have made it (--force-unidentified deletes it)"
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
