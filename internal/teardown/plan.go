package teardown

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// Action is what a teardown does with one resource.
type Action string

const (
	ActStop     Action = "stop"      // stop a unit's compute
	ActEmpty    Action = "empty"     // empty a bucket or repository that goes
	ActKeep     Action = "keep"      // move a part the project keeps out of its unit
	ActDestroy  Action = "destroy"   // destroy a unit
	ActWithUnit Action = "with-unit" // goes when its unit is destroyed
	ActDelete   Action = "delete"    // a leftover found by tag, deleted by itself
)

// Item is one action of a plan, in the order the teardown takes them.
type Item struct {
	Action Action `json:"action"`
	// Type is kiln's name of the resource's type (stack, bucket,
	// log-group, vm, overlay...).
	Type string `json:"type"`
	ID   string `json:"id"`
	// Unit is the unit the resource belongs to.
	Unit string `json:"unit,omitempty"`
	Note string `json:"note,omitempty"`
	// Outcome is what became of it: done, failed, gone (absent when
	// the teardown came to it). Empty in a plan.
	Outcome string `json:"outcome,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Options change a teardown.
type Options struct {
	// PurgeRetained deletes the retained resources too (those this
	// teardown would keep, and those earlier ones kept).
	PurgeRetained bool
	// ForceProtected allows destroying a deployment with protect: true.
	ForceProtected bool
}

// Plan is what a teardown would do.
type Plan struct {
	Deployment string `json:"deployment"`
	// Template is the template a personal deployment was made from.
	Template string `json:"template,omitempty"`
	Region   string `json:"region"`
	Account  string `json:"account"`
	// State is the deployment's state before the teardown ("new" when it
	// has no record).
	State     record.State `json:"state"`
	Protected bool         `json:"protected"`
	Expires   time.Time    `json:"expires,omitzero"`
	Purge     bool         `json:"purge_retained"`
	// Hooks are the pre-destroy hooks, run first.
	Hooks []string `json:"hooks"`
	// Items are the actions, in order.
	Items []Item `json:"items"`
	// Retained is what the teardown keeps, and why.
	Retained []record.Retained `json:"retained"`
	// Refused says why the deployment may not be destroyed now; empty
	// when it may.
	Refused []string `json:"refused"`
	// Deletes counts the resources that go (units, their resources,
	// leftovers).
	Deletes int `json:"deletes"`

	def   *config.Deployment
	rec   *record.Record
	opts  Options
	scope map[string]string
	units []*plannedUnit
}

// plannedUnit is a unit a teardown destroys.
type plannedUnit struct {
	unit     deploy.Unit
	kind     deploy.UnitKind
	kindName string
	// exists: a kind's Resources found something of it.
	exists bool
	// retained: the unit itself is tagged kiln:retain=true; it is kept
	// whole.
	retained bool
	// resources are its own (Parent "") and its children.
	resources []deploy.Resource
	// keep are the parts to move out of it first.
	keep []deploy.Resource
}

// Nothing reports whether the plan has nothing to do.
func (p *Plan) Nothing() bool { return len(p.Items) == 0 && len(p.Hooks) == 0 }

// Plan works out what destroying deployment name would do. It changes
// nothing.
func (d *Destroyer) Plan(ctx context.Context, name string, o Options) (*Plan, error) {
	def, rec, err := d.Deployments.Definition(name)
	if err != nil {
		return nil, err
	}
	p := &Plan{
		Deployment: name, Region: def.Region, Account: def.Account, State: record.StateNew,
		Protected: def.Protect, Purge: o.PurgeRetained, Hooks: []string{}, Items: []Item{},
		Retained: []record.Retained{}, Refused: []string{},
		def: def, rec: rec, opts: o,
		scope: map[string]string{cloud.TagProject: d.Config.Project, cloud.TagDeployment: name},
	}
	if rec != nil {
		p.State, p.Template, p.Expires = rec.State, rec.Template, rec.Expires
	}
	if err := d.refusals(p); err != nil {
		return nil, err
	}
	c := classifier{d: d, p: p, recorded: map[string]record.Retained{}, seen: map[string]bool{}}
	if rec != nil {
		for _, r := range rec.Retained {
			c.recorded[kilnType(r.Type)+"|"+r.ID] = r
		}
	}
	if err := c.units(ctx); err != nil {
		return nil, err
	}
	if err := c.leftovers(ctx); err != nil {
		return nil, err
	}
	c.recordedRetained()
	c.order()
	// Hooks run before a teardown of something: a deployment that was
	// deployed, or whatever is found of one that never was.
	if len(p.Items) > 0 || p.State != record.StateNew && p.State != record.StateDestroyed {
		for _, h := range def.Hooks.PreDestroy {
			p.Hooks = append(p.Hooks, h.Name)
		}
	}
	return p, nil
}

// refusals fills in why the deployment may not be destroyed now.
func (d *Destroyer) refusals(p *Plan) error {
	if p.Protected && !p.opts.ForceProtected {
		p.Refused = append(p.Refused, "protected (protect: true in kiln.yaml); destroy it with --force-protected")
	}
	if r := p.rec; r != nil && r.Lock != nil {
		p.Refused = append(p.Refused, fmt.Sprintf("locked by %s at %s: %s (kiln unlock %s)", r.Lock.By, r.Lock.At.Format(time.RFC3339), r.Lock.Reason, p.Deployment))
	}
	deps, err := d.dependents(p.Deployment)
	if err != nil {
		return err
	}
	for _, n := range deps {
		p.Refused = append(p.Refused, fmt.Sprintf("deployment %s depends on it (depends_on) and is deployed; destroy %s first", n, n))
	}
	return nil
}

// dependents returns the deployments (of kiln.yaml, and personal ones)
// that list name in depends_on and are deployed.
func (d *Destroyer) dependents(name string) ([]string, error) {
	names := []string{}
	for _, n := range d.Config.DeploymentNames() {
		if !d.Config.Deployments[n].Template {
			names = append(names, n)
		}
	}
	personal, err := record.List(d.Config.Dir)
	if err != nil {
		return nil, err
	}
	for _, n := range personal {
		if _, ok := d.Config.Deployments[n]; !ok {
			names = append(names, n)
		}
	}
	var out []string
	for _, n := range names {
		if n == name {
			continue
		}
		def, rec, err := d.Deployments.Definition(n)
		if err != nil || rec == nil || !slices.Contains(def.DependsOn, name) {
			continue // a personal deployment whose template is gone cannot be deployed either
		}
		if rec.State != record.StateNew && rec.State != record.StateDestroyed {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// classifier sorts what a teardown finds into actions and the retained
// set.
type classifier struct {
	d        *Destroyer
	p        *Plan
	recorded map[string]record.Retained // what the record says was kept
	seen     map[string]bool            // keys classified so far
	tops     map[string]string          // a unit's own resources' ids -> unit name
	stop     []Item
	empty    []Item
	keep     []Item
	destroy  []Item
	delete   []Item
}

// retainReason says why r is kept, or "".
func (c *classifier) retainReason(r deploy.Resource) string {
	t := kilnType(r.Type)
	if k, ok := c.recorded[t+"|"+r.ID]; ok && k.Reason != "" {
		return k.Reason
	}
	switch {
	case r.Retain && r.Parent != "":
		return "DeletionPolicy Retain in " + r.Parent
	case retainedTag(r.Tags):
		return cloud.TagRetain + "=true"
	case c.d.Config.Destroy.Retains(t):
		return "destroy.retain: " + t
	case r.Retain:
		return "kept by an earlier destroy"
	}
	return ""
}

func (c *classifier) retain(r deploy.Resource, why string) {
	c.p.Retained = append(c.p.Retained, record.Retained{Type: kilnType(r.Type), ID: r.ID, Region: cmp.Or(r.Region, c.p.Region), Reason: why})
}

// units finds the deployment's units, by tag and by name, and plans
// their stop, emptying, keeping and destruction.
func (c *classifier) units(ctx context.Context) error {
	d, p := c.d, c.p
	type foundUnit struct {
		kind string
		rs   []deploy.Resource
	}
	found := map[string]*foundUnit{}
	c.tops = map[string]string{}
	for _, kn := range slices.Sorted(maps.Keys(d.Kinds)) {
		rs, err := d.Kinds[kn].Resources(ctx, p.Region, p.scope)
		if err != nil {
			return fmt.Errorf("deployment %s: list its %s units: %w", p.Deployment, kn, err)
		}
		for _, r := range rs {
			if r.Parent == "" {
				c.tops[r.ID] = cmp.Or(r.Tags[cloud.TagUnit], r.ID)
			}
		}
		for _, r := range rs {
			n := c.tops[r.ID]
			if r.Parent != "" {
				n = c.tops[r.Parent]
			}
			if n == "" {
				continue // a child whose parent another listing has
			}
			if found[n] == nil {
				found[n] = &foundUnit{kind: kn}
			}
			found[n].rs = append(found[n].rs, r)
		}
	}
	var names []string
	if p.rec != nil {
		names = slices.Collect(maps.Keys(p.rec.Units))
	}
	names = append(names, slices.Collect(maps.Keys(p.def.Units))...)
	names = append(names, slices.Collect(maps.Keys(found))...)
	slices.Sort(names)
	names = slices.Compact(names)
	// Destroyed in reverse of the deploy order; units kiln.yaml no longer
	// has (nothing there depends on them) first.
	order := p.def.UnitOrder()
	slices.Reverse(order)
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(order, n) })
	names = append(names, order...)

	release := ""
	if p.rec != nil && p.rec.Release != nil {
		release = p.rec.Release.ID
	}
	for _, n := range names {
		f := found[n]
		kn := ""
		switch {
		case f != nil:
			kn = f.kind
		case p.rec != nil && p.rec.Units[n].Kind != "":
			kn = p.rec.Units[n].Kind
		case p.def.Units[n] != nil:
			kn = p.def.Units[n].Kind()
		}
		kind := d.Kinds[kn]
		if kind == nil {
			// No kind here for it: its resources, tagged, are found as
			// leftovers.
			continue
		}
		pu := &plannedUnit{kind: kind, kindName: kn, unit: deploy.Unit{
			Project: d.Config.Project, Deployment: p.Deployment, Name: n, Region: p.Region, Config: p.def.Units[n],
			Tags: deploy.UnitTags(d.Config.Project, p.Deployment, n, release, d.Config.CostTag.Key, p.def.CostTagValue()),
			Dir:  d.Config.Dir,
		}}
		if f != nil {
			pu.exists, pu.resources = true, f.rs
			for _, r := range f.rs {
				if r.Parent == "" && len(r.Tags) > 0 {
					pu.unit.Tags = maps.Clone(r.Tags)
					pu.retained = retainedTag(r.Tags) && !p.opts.PurgeRetained
				}
			}
		}
		if err := c.unit(ctx, pu); err != nil {
			return err
		}
		p.units = append(p.units, pu)
	}
	return nil
}

// unit classifies one unit's resources and parts, and plans its stop and
// destruction.
func (c *classifier) unit(ctx context.Context, pu *plannedUnit) error {
	p := c.p
	for _, r := range pu.resources {
		c.seen[key(r)] = true
	}
	if pu.retained {
		for _, r := range pu.resources {
			c.retain(r, "the unit is tagged "+cloud.TagRetain+"=true")
		}
		return nil
	}
	var parts []deploy.Resource
	if k, ok := pu.kind.(Keeper); ok && pu.exists {
		var err error
		if parts, err = k.Parts(ctx, pu.unit); err != nil {
			return fmt.Errorf("deployment %s unit %s: %w", p.Deployment, pu.unit.Name, err)
		}
	}
	var own, with []Item
	for _, r := range pu.resources {
		if r.Parent == "" {
			own = append(own, Item{Action: ActDestroy, Type: kilnType(r.Type), ID: r.ID, Unit: pu.unit.Name})
			continue
		}
		why := c.retainReason(r)
		switch {
		case why != "" && !p.opts.PurgeRetained:
			if !r.Retain {
				p.Refused = append(p.Refused, fmt.Sprintf("unit %s would delete %s %s, which is kept (%s): give it DeletionPolicy: Retain in the unit's template, or destroy with --purge-retained",
					pu.unit.Name, kilnType(r.Type), r.ID, why))
			}
			c.retain(r, why)
			continue
		case why != "" && r.Retain:
			// --purge-retained: its stack leaves it; delete it after.
			c.planDelete(r, "purge: "+why)
			continue
		}
		if emptied(kilnType(r.Type)) {
			c.empty = append(c.empty, Item{Action: ActEmpty, Type: kilnType(r.Type), ID: r.ID, Unit: pu.unit.Name, Note: emptyNote(kilnType(r.Type))})
		}
		note := "goes with " + r.Parent
		if why != "" {
			note = "purge: " + why + "; " + note
		}
		with = append(with, Item{Action: ActWithUnit, Type: kilnType(r.Type), ID: r.ID, Unit: pu.unit.Name, Note: note})
	}
	for _, part := range parts {
		c.seen[key(part)] = true
		if why := c.retainReason(part); why != "" && !p.opts.PurgeRetained {
			pu.keep = append(pu.keep, part)
			c.keep = append(c.keep, Item{Action: ActKeep, Type: part.Type, ID: part.ID, Unit: pu.unit.Name, Note: why})
			c.retain(part, why)
			continue
		}
		with = append(with, Item{Action: ActWithUnit, Type: part.Type, ID: part.ID, Unit: pu.unit.Name, Note: "goes with " + pu.unit.Name})
	}
	if pu.exists {
		c.stop = append(c.stop, Item{Action: ActStop, Type: pu.kindName, ID: pu.unit.Name, Unit: pu.unit.Name})
	}
	c.destroy = append(c.destroy, own...)
	c.destroy = append(c.destroy, with...)
	return nil
}

func emptyNote(t string) string {
	if t == TypeRepository {
		return "every image"
	}
	return "every object version and delete marker"
}

// planDelete plans the deletion of a leftover (emptied first).
func (c *classifier) planDelete(r deploy.Resource, note string) {
	t := kilnType(r.Type)
	c.delete = append(c.delete, Item{Action: ActDelete, Type: t, ID: r.ID, Note: note})
	if emptied(t) {
		c.empty = append(c.empty, Item{Action: ActEmpty, Type: t, ID: r.ID, Note: emptyNote(t)})
	}
}

// leftovers finds what no unit owns, by tag.
func (c *classifier) leftovers(ctx context.Context) error {
	rs, err := c.d.findLeftovers(ctx, c.p, c.tops)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if c.seen[key(r)] {
			continue
		}
		c.seen[key(r)] = true
		if why := c.retainReason(r); why != "" {
			if c.p.opts.PurgeRetained {
				c.planDelete(r, "purge: "+why)
			} else {
				c.retain(r, why)
			}
			continue
		}
		c.planDelete(r, "found by tag")
	}
	return nil
}

// recordedRetained carries over what earlier teardowns kept that no
// listing shows (a stack's resource the service does not tag): kept
// again, or with --purge-retained deleted by its id.
func (c *classifier) recordedRetained() {
	for _, k := range slices.Sorted(maps.Keys(c.recorded)) {
		r := c.recorded[k]
		if c.seen[k] {
			continue
		}
		c.seen[k] = true
		if c.p.opts.PurgeRetained {
			c.planDelete(deploy.Resource{Type: r.Type, ID: r.ID, Region: r.Region}, "purge: "+r.Reason)
		} else {
			c.p.Retained = append(c.p.Retained, r)
		}
	}
}

// findLeftovers lists, by tag, what the backend's inventory and the
// leftover listers find of the deployment, except the resources of its
// units (tops: a unit's own resources' ids).
func (d *Destroyer) findLeftovers(ctx context.Context, p *Plan, tops map[string]string) ([]deploy.Resource, error) {
	var out []deploy.Resource
	if d.Assets != nil {
		tags := maps.Clone(p.scope)
		tags[cloud.TagManaged] = "true"
		as, err := d.Assets.ListAssets(ctx, p.Region, cloud.Filter{Tags: tags})
		if err != nil {
			return nil, fmt.Errorf("deployment %s: list what is tagged for it: %w", p.Deployment, err)
		}
		for _, a := range as {
			if _, ok := tops[a.Parent]; ok && a.Parent != "" {
				continue // goes with its unit
			}
			if _, ok := tops[a.ID]; ok && a.Kind == cloud.KindStack {
				continue // the unit itself
			}
			out = append(out, deploy.Resource{Type: string(a.Kind), ID: a.ID, Region: a.Region, Tags: a.Tags,
				Parent: a.Parent, Retain: a.Retain, Created: a.Created})
		}
	}
	if d.Leftovers != nil {
		rs, err := d.Leftovers.Find(ctx, p.Region, p.scope)
		if err != nil {
			return nil, fmt.Errorf("deployment %s: list what is tagged for it: %w", p.Deployment, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// order puts the plan's items in the order a teardown takes them.
func (c *classifier) order() {
	p := c.p
	// Buckets before repositories, each in the order found.
	slices.SortStableFunc(c.empty, func(a, b Item) int { return cmp.Compare(leftoverOrder(a.Type), leftoverOrder(b.Type)) })
	slices.SortStableFunc(c.delete, func(a, b Item) int {
		return cmp.Or(cmp.Compare(leftoverOrder(a.Type), leftoverOrder(b.Type)), strings.Compare(a.ID, b.ID))
	})
	p.Items = slices.Concat(c.stop, c.empty, c.keep, c.destroy, c.delete)
	if p.Items == nil {
		p.Items = []Item{}
	}
	for _, it := range p.Items {
		if it.Action == ActDestroy || it.Action == ActWithUnit || it.Action == ActDelete {
			p.Deletes++
		}
	}
	slices.SortFunc(p.Retained, func(a, b record.Retained) int {
		return cmp.Or(strings.Compare(a.Type, b.Type), strings.Compare(a.ID, b.ID))
	})
}
