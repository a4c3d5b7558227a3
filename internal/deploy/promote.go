package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// PromoteReport is a promotion of one deployment's release to another.
type PromoteReport struct {
	From    string          `json:"from"`
	To      string          `json:"to"`
	Release *record.Release `json:"release,omitempty"`
	Gates   []Gate          `json:"gates"`
	// Deploy is the deploy into the target: its plan, and with --apply
	// what it did. Null when a gate failed.
	Deploy *Report `json:"deploy,omitempty"`
}

// Passed reports whether every gate passed.
func (r *PromoteReport) Passed() bool {
	for _, g := range r.Gates {
		if !g.Passed {
			return false
		}
	}
	return true
}

// PromoteOptions change a promotion.
type PromoteOptions struct {
	Apply bool
	// LiftHold lets the promotion past the target's hold (left by a
	// manual rollback) and removes it.
	LiftHold bool
	NoVerify bool
}

// Promote moves deployment from's release, as its record has it, to
// deployment to: the same images, never rebuilt, deployed with to's own
// units and inputs. Every gate is checked and reported; when one fails
// nothing is changed and the error matches ErrRefused. Without Apply it
// plans the target's deploy and stops.
func (d *Deployer) Promote(ctx context.Context, from, to string, o PromoteOptions) (*PromoteReport, error) {
	if from == to {
		return nil, cloud.Mark(fmt.Errorf("promote from %s to itself", from), cloud.ErrInvalid)
	}
	_, src, err := d.mustRecord(from)
	if err != nil {
		return nil, err
	}
	target, targetRec, err := d.definition(to)
	if err != nil {
		return nil, err
	}
	rep := &PromoteReport{From: from, To: to, Release: src.Release}
	in := gateInput{from: from, to: to, src: src, target: target, targetRec: targetRec, liftHold: o.LiftHold, now: d.now()}
	if id, ok := src.Release.Images[target.Region]; ok {
		img, err := d.Images.Image(ctx, target.Region, id)
		if err != nil {
			in.imageErr = err
		} else {
			in.image = &img
		}
	}
	if in.templates, err = d.templateDigests(target); err != nil {
		return nil, err
	}
	rep.Gates = gates(in)
	if src.State != record.StateDeployed {
		rep.Gates = append([]Gate{{Name: GateSourceDeployed, Detail: fmt.Sprintf("%s is %s, not deployed %s", from, src.State, src.Reason)}}, rep.Gates...)
	}
	if !rep.Passed() {
		var failed []string
		for _, g := range rep.Gates {
			if !g.Passed {
				failed = append(failed, g.Name)
			}
		}
		return rep, fmt.Errorf("promotion of %s from %s to %s: %w: gates failed: %s", src.Release.ID, from, to, ErrRefused, strings.Join(failed, ", "))
	}
	rel := copyRelease(src.Release)
	rel.PromotedFrom = from
	p, err := d.Plan(ctx, to, PlanOptions{Release: rel})
	if err != nil {
		return rep, err
	}
	p.Release.PromotedFrom = from
	p.action, p.message = "promote", "from "+from
	if o.LiftHold && targetRec != nil && targetRec.Hold != nil {
		p.message += "; lifted the hold by " + targetRec.Hold.By + " (" + targetRec.Hold.Reason + ")"
		p.liftHold = true
	}
	rep.Deploy = &Report{Plan: p, Outputs: map[string]string{}, Hooks: []HookResult{}}
	if !o.Apply {
		return rep, nil
	}
	rep.Deploy, err = d.Apply(ctx, p, ApplyOptions{NoVerify: o.NoVerify})
	return rep, err
}

// Rollback redeploys the release deployment name's record had at git
// ref, and puts a hold on the deployment: promotions into it are refused
// until one lifts the hold (--lift-hold), so that automatic promotion
// does not undo a person's rollback.
func (d *Deployer) Rollback(ctx context.Context, name, ref string, apply, noVerify bool) (*Report, error) {
	old, err := record.AtRef(ctx, d.Config.Dir, name, ref)
	if err != nil {
		return nil, err
	}
	if old.Release == nil {
		return nil, cloud.Mark(fmt.Errorf("deployment %s had no release at %s (state %s)", name, ref, old.State), cloud.ErrNotFound)
	}
	p, err := d.Plan(ctx, name, PlanOptions{Release: old.Release})
	if err != nil {
		return nil, err
	}
	// Whatever promoted it then, it is now a person's rollback.
	p.Release.PromotedFrom = ""
	p.action = "rollback"
	p.message = fmt.Sprintf("to %s (release %s)", ref, old.Release.ID)
	p.hold = &record.Mark{By: d.who(), At: d.now(), Reason: fmt.Sprintf("rolled back to %s (release %s)", ref, old.Release.ID)}
	if !apply {
		return &Report{Plan: p, Outputs: map[string]string{}, Hooks: []HookResult{}}, nil
	}
	return d.Apply(ctx, p, ApplyOptions{NoVerify: noVerify})
}
