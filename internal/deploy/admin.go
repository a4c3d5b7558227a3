package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// Change is a change of a deployment's record by lock, unlock, approve,
// disable or enable.
type Change struct {
	Deployment string       `json:"deployment"`
	Action     string       `json:"action"`
	Changed    bool         `json:"changed"`
	State      record.State `json:"state"`
	Detail     string       `json:"detail"`
}

// edit changes deployment name's record under its lock and saves it when
// f says it changed anything. A deployment never deployed gets a record
// in state new, so that it can be locked or approved ahead.
func (d *Deployer) edit(ctx context.Context, name, action string, f func(*record.Record) (changed bool, detail string, err error)) (*Change, error) {
	unlock, err := d.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	def, rec, err := d.definition(name)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		rec = record.New(name, d.Config.Project, def.Region, def.Account)
	}
	changed, detail, err := f(rec)
	if err != nil {
		return nil, err
	}
	if changed {
		rec.AddEvent(record.Event{At: d.now(), Action: action, By: d.who(), Detail: detail})
		if err := d.saveRecord(rec, action); err != nil {
			return nil, err
		}
	}
	return &Change{Deployment: name, Action: action, Changed: changed, State: rec.State, Detail: detail}, nil
}

// Lock locks a deployment: deploys, promotions and rollbacks into it are
// refused until Unlock, e.g. while someone uses a shared sandbox.
func (d *Deployer) Lock(ctx context.Context, name, reason string) (*Change, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, cloud.Mark(fmt.Errorf("lock %s: say why (--reason)", name), cloud.ErrInvalid)
	}
	return d.edit(ctx, name, "lock", func(r *record.Record) (bool, string, error) {
		if r.Lock != nil {
			return false, fmt.Sprintf("locked already by %s at %s: %s", r.Lock.By, formatTime(r.Lock.At), r.Lock.Reason), nil
		}
		r.Lock = &record.Mark{By: d.who(), At: d.now(), Reason: reason}
		return true, reason, nil
	})
}

// Unlock removes a deployment's lock.
func (d *Deployer) Unlock(ctx context.Context, name string) (*Change, error) {
	return d.edit(ctx, name, "unlock", func(r *record.Record) (bool, string, error) {
		if r.Lock == nil {
			return false, "not locked", nil
		}
		detail := fmt.Sprintf("was locked by %s: %s", r.Lock.By, r.Lock.Reason)
		r.Lock = nil
		return true, detail, nil
	})
}

// Approve records the approval of a release for deployment name, which
// its promotion gate "approval" asks for. release "" means the release
// the deployment would be promoted from now (its promote.from's).
func (d *Deployer) Approve(ctx context.Context, name, release, comment string) (*Change, error) {
	if release == "" {
		def, _, err := d.definition(name)
		if err != nil {
			return nil, err
		}
		if def.Promote.From == "" {
			return nil, cloud.Mark(fmt.Errorf("approve %s: it has no promote.from to take the release from; name the release with --release", name), cloud.ErrInvalid)
		}
		_, src, err := d.mustRecord(def.Promote.From)
		if err != nil {
			return nil, fmt.Errorf("approve %s: %w", name, err)
		}
		release = src.Release.ID
	}
	return d.edit(ctx, name, "approve", func(r *record.Record) (bool, string, error) {
		if a, ok := r.Approved(release); ok {
			return false, fmt.Sprintf("release %s approved already by %s at %s", release, a.By, formatTime(a.At)), nil
		}
		r.AddApproval(record.Approval{Release: release, By: d.who(), At: d.now(), Comment: comment})
		return true, "release " + release, nil
	})
}

// SetEnabled stops (enabled false) or starts a deployment's compute
// without deleting anything: the kill switch. Starting starts the units
// as they were deployed; a unit kiln.yaml changed since is refused, for
// a deploy to apply.
func (d *Deployer) SetEnabled(ctx context.Context, name string, enabled bool) (*Change, error) {
	action := map[bool]string{true: "enable", false: "disable"}[enabled]
	unlock, err := d.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	def, rec, err := d.mustRecord(name)
	if err != nil {
		return nil, err
	}
	if rec.State == record.StateDestroyed || rec.State == record.StateDestroying {
		return nil, fmt.Errorf("%s %s: %w: it is %s (kiln destroy)", action, name, ErrRefused, rec.State)
	}
	if (rec.State == record.StateDisabled) == !enabled {
		return &Change{Deployment: name, Action: action, State: rec.State, Detail: "already " + action + "d"}, nil
	}
	var inputs map[string]Value
	if enabled {
		if inputs, _, _, err = d.inputs(ctx, def); err != nil {
			return nil, err
		}
	}
	units, err := d.recordedUnits(ctx, def, rec, inputs)
	if err != nil {
		return nil, err
	}
	if enabled {
		for _, u := range units {
			p, err := d.Kinds[u.Config.Kind()].Plan(ctx, u)
			if err != nil {
				return nil, err
			}
			if p.Action == ActionUpdate || p.Action == ActionReplace || p.Action == ActionCreate {
				return nil, fmt.Errorf("enable %s: unit %s is not as deployed (%s: %s); deploy it instead: kiln deploy %s --apply",
					name, u.Name, p.Action, strings.Join(p.Changes, "; "), name)
			}
		}
	} else {
		// Stopped in reverse: what others use goes last.
		for i, j := 0, len(units)-1; i < j; i, j = i+1, j-1 {
			units[i], units[j] = units[j], units[i]
		}
	}
	for _, u := range units {
		done := d.step(fmt.Sprintf("%s unit %s", action, u.Name))
		err := d.retry(ctx, action+" unit "+u.Name, func() error { return d.Kinds[u.Config.Kind()].SetRunning(ctx, u, enabled) })
		done(err)
		if err != nil {
			return nil, fmt.Errorf("%s %s: unit %s: %w", action, name, u.Name, err)
		}
		d.hook(fmt.Sprintf("%s unit %s", action, u.Name))
	}
	rec.State = map[bool]record.State{true: record.StateDeployed, false: record.StateDisabled}[enabled]
	rec.AddEvent(record.Event{At: d.now(), Action: action, By: d.who(), Release: rec.Release.ID})
	if err := d.saveRecord(rec, action); err != nil {
		return nil, err
	}
	return &Change{Deployment: name, Action: action, Changed: true, State: rec.State, Detail: fmt.Sprintf("%d units %sd", len(units), action)}, nil
}
