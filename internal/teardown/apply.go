package teardown

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/fanout"
	"github.com/kiln-images/kiln/internal/journal"
)

// Report is what a teardown did: its plan, each item's outcome, the hooks,
// the verification and the deployment's state after it.
type Report struct {
	*Plan
	Applied bool `json:"applied"`
	// Run is the journal's id of the teardown.
	Run         string              `json:"run,omitempty"`
	HookResults []deploy.HookResult `json:"hook_results"`
	// Verification is the listing after the deletions; null for a plan.
	Verification *Verification `json:"verification"`
	// After is the deployment's state after the teardown.
	After  record.State `json:"state_after"`
	Failed string       `json:"failed,omitempty"`
}

// NewReport returns the report of a plan that was not applied.
func NewReport(p *Plan) *Report {
	return &Report{Plan: p, HookResults: []deploy.HookResult{}, After: p.State}
}

// Apply carries out a plan made by Plan: it marks the record destroying
// with the retained set, runs the pre-destroy hooks, stops the units,
// empties what goes, keeps what stays, destroys the units and deletes
// what is still found by tag, then verifies and marks the record
// destroyed. Rerun after a crash, a new plan of the same deployment
// converges to the same end. A refusal or a failed hook is an error
// matching ErrRefused; resources left after it all, one matching ErrLeft.
func (d *Destroyer) Apply(ctx context.Context, p *Plan) (*Report, error) {
	rep := NewReport(p)
	if len(p.Refused) > 0 {
		return rep, fmt.Errorf("deployment %s: %w: %s", p.Deployment, ErrRefused, strings.Join(p.Refused, "; "))
	}
	unlock, err := d.Deployments.LockDeployment(ctx, p.Deployment)
	if err != nil {
		return rep, err
	}
	defer unlock()
	// Another process may have changed the record since the plan.
	_, rec, err := d.Deployments.Definition(p.Deployment)
	if err != nil {
		return rep, err
	}
	if rec != nil && rec.Lock != nil {
		return rep, fmt.Errorf("deployment %s: %w: locked by %s meanwhile: %s", p.Deployment, ErrRefused, rec.Lock.By, rec.Lock.Reason)
	}
	if len(p.Items) == 0 && (rec == nil || rec.State == record.StateDestroyed) {
		return rep, nil // nothing there, nothing recorded
	}
	if rec == nil {
		// Found by its tags only (a deploy from another checkout, a
		// record lost): the teardown gets a record of its own.
		rec = record.New(p.Deployment, d.Config.Project, p.Region, p.Account)
	}
	rep.Applied = true

	run := ""
	if rec.State == record.StateDestroying && rec.Run != "" {
		if _, _, err := d.Journal.Run(ctx, rec.Run); err == nil {
			run = rec.Run // an interrupted teardown resumes its run
		}
	}
	if run == "" {
		run = journal.NewAssetID(d.now())
	}
	rep.Run = run
	jr := journal.Run{ID: run, Phase: "destroy"}
	if rel := rec.Release; rel != nil {
		jr.UseCase, jr.Arch, jr.Version = rel.UseCase, rel.Arch, rel.Version
	}
	if err := d.Journal.StartRun(ctx, jr); err != nil {
		return rep, err
	}
	d.log().Info("destroying", "deployment", p.Deployment, "run", run, "resources", p.Deletes, "retained", len(p.Retained))
	before := rec.State
	rec.State, rec.Run, rec.Reason = record.StateDestroying, run, ""
	// A part a unit kind moves out of the unit (keep) enters the record
	// only where it ends up: recorded at its old place, a crash between
	// the move and the record would leave the record naming a place that
	// is gone. Until then the part is in its unit, and a rerun plans its
	// keep again or finds it, moved, by its kiln:retain tag.
	rec.Retained = mergeRetained(rec.Retained, slices.DeleteFunc(slices.Clone(p.Retained), p.moving))
	if err := d.saveRecord(rec, "destroying"); err != nil {
		return rep, err
	}
	a := &applier{d: d, p: p, rep: rep, rec: rec, run: run, index: map[string]int{}}
	for i, it := range p.Items {
		a.index[string(it.Action)+"|"+it.Type+"|"+it.ID] = i
	}

	if err := a.hooks(ctx, before); err != nil {
		return rep, err
	}
	a.stop(ctx)
	a.empty(ctx)
	if err := a.keep(ctx); err != nil {
		return rep, err
	}
	a.units(ctx)
	if err := a.leftovers(ctx); err != nil {
		return rep, a.fail(ctx, "list what is left", err)
	}

	v, err := d.verify(ctx, p, keptKeys(rec.Retained))
	if err != nil {
		return rep, a.fail(ctx, "verify", err)
	}
	rep.Verification = v
	if !v.Passed {
		var names []string
		for _, l := range v.Left {
			names = append(names, l.Type+" "+l.ID)
		}
		err := fmt.Errorf("%w: %s", ErrLeft, strings.Join(names, ", "))
		return rep, a.fail(ctx, fmt.Sprintf("%d resource(s) left", len(v.Left)), err)
	}
	deleted := 0
	for _, it := range rep.Items {
		if (it.Action == ActDestroy || it.Action == ActWithUnit || it.Action == ActDelete) && it.Outcome != "failed" {
			deleted++
		}
	}
	rec.State, rec.Reason = record.StateDestroyed, ""
	rec.Units, rec.Outputs, rec.URLs = map[string]record.Unit{}, map[string]string{}, []string{}
	rec.AddEvent(record.Event{At: d.now(), Action: "destroy", By: d.Who,
		Detail: fmt.Sprintf("%d resources deleted, %d kept", deleted, len(rec.Retained))})
	if err := d.saveRecord(rec, "destroyed"); err != nil {
		return rep, err
	}
	rep.After = rec.State
	d.Journal.SetRun(ctx, run, "", journal.RunSucceeded)
	return rep, nil
}

// saveRecord writes a record as a step boundary.
func (d *Destroyer) saveRecord(r *record.Record, why string) error {
	if err := record.Save(d.Config.Dir, r); err != nil {
		return fmt.Errorf("deployment %s: write its record: %w", r.Name, err)
	}
	d.hook("record " + r.Name + " " + why)
	return nil
}

// mergeRetained adds what a plan keeps to what the record kept before.
func mergeRetained(had, add []record.Retained) []record.Retained {
	out := slices.Clone(had)
	for _, r := range add {
		if !slices.ContainsFunc(out, func(h record.Retained) bool { return h.Type == r.Type && h.ID == r.ID }) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b record.Retained) int {
		return cmp.Or(strings.Compare(a.Type, b.Type), strings.Compare(a.ID, b.ID))
	})
	if out == nil {
		out = []record.Retained{}
	}
	return out
}

// moving reports whether r is a part that a unit kind is yet to move out
// of its unit to keep it.
func (p *Plan) moving(r record.Retained) bool {
	for _, pu := range p.units {
		for _, part := range pu.keep {
			if kilnType(part.Type) == r.Type && part.ID == r.ID {
				return true
			}
		}
	}
	return false
}

func keptKeys(rs []record.Retained) map[string]bool {
	out := map[string]bool{}
	for _, r := range rs {
		out[kilnType(r.Type)+"|"+r.ID] = true
	}
	return out
}

// applier carries one Apply's state.
type applier struct {
	d   *Destroyer
	p   *Plan
	run string

	mu    sync.Mutex // guards rep and rec while steps run concurrently
	rep   *Report
	rec   *record.Record
	index map[string]int // action|type|id -> index in rep.Items
}

// outcome records what became of an item, adding it when the plan did
// not have it (found after the units went).
func (a *applier) outcome(it Item, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	it.Outcome = "done"
	switch {
	case errors.Is(err, cloud.ErrNotFound):
		it.Outcome = "gone"
	case err != nil:
		it.Outcome, it.Error = "failed", err.Error()
	}
	k := string(it.Action) + "|" + it.Type + "|" + it.ID
	if i, ok := a.index[k]; ok {
		note := cmp.Or(it.Note, a.rep.Items[i].Note)
		a.rep.Items[i] = it
		a.rep.Items[i].Note = note
		return
	}
	a.index[k] = len(a.rep.Items)
	a.rep.Items = append(a.rep.Items, it)
}

// fail records why the teardown stopped; the record stays destroying,
// for a rerun to finish.
func (a *applier) fail(ctx context.Context, what string, err error) error {
	a.rec.Reason = what + ": " + err.Error()
	a.rep.Failed, a.rep.After = a.rec.Reason, a.rec.State
	if serr := a.d.saveRecord(a.rec, "failed"); serr != nil {
		err = errors.Join(err, serr)
	}
	a.d.Journal.SetRun(context.WithoutCancel(ctx), a.run, "", journal.RunFailed)
	return fmt.Errorf("deployment %s: %s: %w", a.p.Deployment, what, err)
}

// stepDone reports whether the run has a succeeded step name.
func (a *applier) stepDone(ctx context.Context, name string) bool {
	_, steps, err := a.d.Journal.Run(ctx, a.run)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(steps, func(s journal.Step) bool {
		return s.Phase == "destroy" && s.Name == name && s.State == journal.StepSucceeded
	})
}

// hooks runs the pre-destroy hooks, each once per teardown. A failed hook
// stops it; a teardown that had not begun before gives the deployment its
// state back (nothing was deleted).
func (a *applier) hooks(ctx context.Context, before record.State) error {
	if len(a.p.Hooks) == 0 {
		return nil
	}
	var runHook func(context.Context, config.Hook) deploy.HookResult
	for i, h := range a.p.def.Hooks.PreDestroy {
		name := fmt.Sprintf("hook pre_destroy[%d] %s", i, h.Name)
		if a.stepDone(ctx, name) {
			a.rep.HookResults = append(a.rep.HookResults, deploy.HookResult{Name: h.Name, Skipped: true})
			continue
		}
		if runHook == nil {
			r, err := a.d.Deployments.HookRunner(ctx, a.p.def, a.rec)
			if err != nil {
				return a.fail(ctx, "pre-destroy hooks", err)
			}
			runHook = r
		}
		var hr deploy.HookResult
		err := a.d.journalStep(ctx, a.run, name, a.p.Region, strings.Join(h.Command, " "), func() (string, error) {
			hr = runHook(ctx, h)
			if hr.Error != "" {
				return "", errors.New(hr.Error)
			}
			return "", nil
		})
		a.rep.HookResults = append(a.rep.HookResults, hr)
		if err != nil {
			if before != record.StateDestroying {
				a.rec.State = before
			}
			return a.fail(ctx, "pre-destroy hook "+h.Name, fmt.Errorf("%w: %s", ErrRefused, hr.Error))
		}
	}
	return nil
}

// stop stops every unit's compute, last used first. A unit that cannot
// be stopped is destroyed all the same.
func (a *applier) stop(ctx context.Context) {
	for _, pu := range a.p.units {
		if !pu.exists || pu.retained {
			continue
		}
		err := a.d.journalStep(ctx, a.run, "stop unit "+pu.unit.Name, a.p.Region, pu.kindName, func() (string, error) {
			err := retry(ctx, func(ctx context.Context) error { return pu.kind.SetRunning(ctx, pu.unit, false) })
			return pu.unit.Name, err
		})
		if errors.Is(err, cloud.ErrNotFound) {
			err = nil
		}
		a.outcome(Item{Action: ActStop, Type: pu.kindName, ID: pu.unit.Name, Unit: pu.unit.Name}, err)
	}
}

// empty empties the buckets and repositories that go.
func (a *applier) empty(ctx context.Context) {
	var items []Item
	for _, it := range a.p.Items {
		if it.Action == ActEmpty {
			items = append(items, it)
		}
	}
	each(ctx, items, a.d.Concurrency, func(ctx context.Context, it Item) {
		a.outcome(it, a.emptyOne(ctx, it.Type, it.ID))
	})
}

func (a *applier) emptyOne(ctx context.Context, typ, id string) error {
	if a.d.Leftovers == nil {
		return nil
	}
	return a.d.journalStep(ctx, a.run, "empty "+typ+" "+id, a.p.Region, "", func() (string, error) {
		err := retry(ctx, func(ctx context.Context) error {
			return a.d.Leftovers.Empty(ctx, deploy.Resource{Type: typ, ID: id, Region: a.p.Region})
		})
		return id, err
	})
}

// keep moves the parts the project keeps out of their units and records
// where they are now.
func (a *applier) keep(ctx context.Context) error {
	for _, pu := range a.p.units {
		k, ok := pu.kind.(Keeper)
		if !ok {
			continue
		}
		for _, part := range pu.keep {
			var kept deploy.Resource
			err := a.d.journalStep(ctx, a.run, "keep "+part.Type+" "+part.ID, a.p.Region, pu.unit.Name, func() (string, error) {
				var err error
				kept, err = k.Keep(ctx, pu.unit, part)
				return kept.ID, err
			})
			a.outcome(Item{Action: ActKeep, Type: part.Type, ID: part.ID, Unit: pu.unit.Name, Note: "kept at " + kept.ID}, err)
			if err != nil {
				// Destroying the unit now would delete what must be kept.
				return a.fail(ctx, "keep "+part.Type+" of unit "+pu.unit.Name, err)
			}
			for i, r := range a.p.Retained {
				if r.Type == part.Type && r.ID == part.ID {
					a.p.Retained[i].ID = kept.ID
					a.rec.Retained = mergeRetained(a.rec.Retained, a.p.Retained[i:i+1])
				}
			}
			if err := a.d.saveRecord(a.rec, "kept "+part.Type); err != nil {
				return err
			}
		}
	}
	return nil
}

// units destroys the units in reverse dependency order. A unit whose
// Destroy fails (a stack in DELETE_FAILED: a bucket written to after it
// was emptied) gets its buckets and repositories emptied again and one
// more try; the failure is reported either way.
func (a *applier) units(ctx context.Context) {
	for _, pu := range a.p.units {
		if !pu.exists || pu.retained {
			continue
		}
		destroy := func() error {
			return a.d.journalStep(ctx, a.run, "destroy unit "+pu.unit.Name, a.p.Region, pu.kindName, func() (string, error) {
				// No retry with backoff: a kind's Destroy waits for its
				// unit to be gone, and one that fails (DELETE_FAILED)
				// fails again until its storage is emptied again.
				return pu.unit.Name, pu.kind.Destroy(ctx, pu.unit)
			})
		}
		err := destroy()
		note := ""
		if errors.Is(err, deploy.ErrProtected) {
			// The cloud guards the unit (a stack's termination
			// protection, set at deploy for protect: true): lifted only
			// when the destroy of a protected deployment was forced.
			err = a.unprotect(ctx, pu, err)
			if err == nil {
				note = "protection against deletion lifted (--force-protected)"
				err = destroy()
			}
		}
		if err != nil && !errors.Is(err, cloud.ErrInvalid) && !errors.Is(err, deploy.ErrProtected) {
			a.d.log().Warn("destroy failed; emptying the unit's storage again and retrying once", "unit", pu.unit.Name, "err", err)
			if note != "" {
				note += "; "
			}
			note += "first attempt failed: " + err.Error() + "; emptied again and retried"
			if eerr := a.emptyUnit(ctx, pu); eerr != nil {
				note += " (emptying: " + eerr.Error() + ")"
			}
			err = destroy()
		}
		for _, r := range pu.resources {
			if r.Parent == "" {
				a.outcome(Item{Action: ActDestroy, Type: kilnType(r.Type), ID: r.ID, Unit: pu.unit.Name, Note: note}, err)
			}
		}
		for _, it := range a.p.Items {
			if it.Action == ActWithUnit && it.Unit == pu.unit.Name {
				a.outcome(it, err)
			}
		}
	}
}

// unprotect lifts the cloud's protection of a unit against deletion, as a
// journaled step, when the teardown was forced (--force-protected) and
// the unit's kind can (deploy.Protector); otherwise it returns why not,
// wrapping cause.
func (a *applier) unprotect(ctx context.Context, pu *plannedUnit, cause error) error {
	p, ok := pu.kind.(deploy.Protector)
	switch {
	case !a.p.opts.ForceProtected:
		return fmt.Errorf("%w; destroy it with --force-protected", cause)
	case !ok:
		return fmt.Errorf("%w; its kind (%s) cannot lift that", cause, pu.kindName)
	}
	return a.d.journalStep(ctx, a.run, "unprotect unit "+pu.unit.Name, a.p.Region, pu.kindName, func() (string, error) {
		return pu.unit.Name, retry(ctx, func(ctx context.Context) error { return p.SetProtected(ctx, pu.unit, false) })
	})
}

// emptyUnit lists the unit's resources again and empties its buckets and
// repositories that go.
func (a *applier) emptyUnit(ctx context.Context, pu *plannedUnit) error {
	rs, err := pu.kind.Resources(ctx, a.p.Region, a.p.scope)
	if err != nil {
		return err
	}
	kept := keptKeys(a.rec.Retained)
	tops := map[string]bool{}
	for _, r := range rs {
		if r.Parent == "" && cmp.Or(r.Tags[cloud.TagUnit], r.ID) == pu.unit.Name {
			tops[r.ID] = true
		}
	}
	var errs []error
	for _, r := range rs {
		if !tops[r.Parent] || !emptied(kilnType(r.Type)) || kept[key(r)] || r.Retain && !a.p.opts.PurgeRetained {
			continue
		}
		errs = append(errs, a.emptyOne(ctx, kilnType(r.Type), r.ID))
	}
	return errors.Join(errs...)
}

// leftovers deletes what is still found by tag once the units are gone
// (and, with --purge-retained, what was kept), in dependency order.
func (a *applier) leftovers(ctx context.Context) error {
	rs, err := a.d.findLeftovers(ctx, a.p, nil)
	if err != nil {
		return err
	}
	kept := keptKeys(a.rec.Retained)
	purge := a.p.opts.PurgeRetained
	var todo []deploy.Resource
	seen := map[string]bool{}
	for _, r := range rs {
		k := key(r)
		if seen[k] {
			continue
		}
		seen[k] = true
		if !purge && (kept[k] || r.Retain || retainedTag(r.Tags) || a.d.Config.Destroy.Retains(kilnType(r.Type))) {
			if !kept[k] {
				a.rec.Retained = mergeRetained(a.rec.Retained, []record.Retained{{Type: kilnType(r.Type), ID: r.ID, Region: a.p.Region, Reason: "found after its unit was destroyed, and kept"}})
			}
			continue
		}
		todo = append(todo, r)
	}
	// What the plan deletes that no listing shows now: a kept resource
	// of a stack the service does not tag, purged by its id.
	for _, it := range a.p.Items {
		k := it.Type + "|" + it.ID
		if it.Action == ActDelete && !seen[k] {
			seen[k] = true
			todo = append(todo, deploy.Resource{Type: it.Type, ID: it.ID, Region: a.p.Region})
		}
	}
	slices.SortStableFunc(todo, func(x, y deploy.Resource) int {
		return cmp.Or(cmp.Compare(leftoverOrder(kilnType(x.Type)), leftoverOrder(kilnType(y.Type))), strings.Compare(x.ID, y.ID))
	})
	// One type after another, in dependency order; the resources of a
	// type at once.
	for len(todo) > 0 {
		n := 1
		for n < len(todo) && leftoverOrder(kilnType(todo[n].Type)) == leftoverOrder(kilnType(todo[0].Type)) {
			n++
		}
		group := todo[:n]
		todo = todo[n:]
		each(ctx, group, a.d.Concurrency, func(ctx context.Context, r deploy.Resource) {
			t := kilnType(r.Type)
			err := a.d.journalStep(ctx, a.run, "delete "+t+" "+r.ID, a.p.Region, "", func() (string, error) {
				return r.ID, retry(ctx, func(ctx context.Context) error { return a.deleteOne(ctx, r) })
			})
			if errors.Is(err, cloud.ErrNotFound) {
				err = nil
			}
			a.outcome(Item{Action: ActDelete, Type: t, ID: r.ID, Note: "found by tag"}, err)
			if err == nil && purge {
				a.mu.Lock()
				a.rec.Retained = slices.DeleteFunc(a.rec.Retained, func(k record.Retained) bool { return kilnType(k.Type) == t && k.ID == r.ID })
				a.mu.Unlock()
			}
		})
	}
	return nil
}

// each calls fn for every item, limit at a time; with a limit below 2
// one after another in the caller's goroutine.
func each[T any](ctx context.Context, items []T, limit int, fn func(context.Context, T)) {
	if limit < 2 {
		for _, it := range items {
			fn(ctx, it)
		}
		return
	}
	fanout.Each(ctx, items, limit, func(ctx context.Context, it T) error {
		fn(ctx, it)
		return nil
	})
}

// deleteOne deletes a leftover with the lister that knows its type; a
// container is emptied first.
func (a *applier) deleteOne(ctx context.Context, r deploy.Resource) error {
	t := kilnType(r.Type)
	if slices.Contains(cloud.DeleteOrder, cloud.Kind(t)) && a.d.Assets != nil {
		return a.d.Assets.DeleteAsset(ctx, cloud.Asset{Kind: cloud.Kind(t), ID: r.ID, Region: a.p.Region, Tags: r.Tags})
	}
	if a.d.Leftovers == nil {
		return cloud.Mark(fmt.Errorf("no lister deletes %s %s here", t, r.ID), cloud.ErrInvalid)
	}
	r.Type, r.Region = t, a.p.Region
	if emptied(t) {
		if err := a.d.Leftovers.Empty(ctx, r); err != nil {
			return err
		}
	}
	return a.d.Leftovers.Delete(ctx, r)
}
