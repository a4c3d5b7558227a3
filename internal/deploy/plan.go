package deploy

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// Plan is what a deploy would do, and after Apply what it did.
type Plan struct {
	Deployment string `json:"deployment"`
	// Release is the release to deploy; Current what runs now (null for
	// a new deployment).
	Release *record.Release `json:"release"`
	Current *record.Release `json:"current_release,omitempty"`
	Units   []UnitReport    `json:"units"`
	// Hooks and Checks are what runs after the units are up.
	Hooks  []string `json:"hooks"`
	Checks []string `json:"checks"`
	// Refused says why the deployment may not be deployed now (locked,
	// disabled, expired); empty when it may.
	Refused []string `json:"refused"`
	// Personal describes a personal deployment being made.
	Template string `json:"template,omitempty"`

	def      *config.Deployment
	rec      *record.Record // nil: no record yet
	newRec   bool           // rec is a personal deployment's first record
	inputs   map[string]Value
	units    []Unit
	action   string       // deploy, promote, rollback
	message  string       // for the record's history
	hold     *record.Mark // put on the deployment (a rollback)
	liftHold bool         // the deployment's hold is lifted (a promotion past it)
}

// UnitReport is one unit of a plan.
type UnitReport struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Action  Action   `json:"action"`
	Changes []string `json:"changes"`
}

// Changes reports whether applying the plan would change any unit.
func (p *Plan) Changes() bool {
	for _, u := range p.Units {
		if u.Action != ActionNone {
			return true
		}
	}
	return p.Current == nil || p.Release.ID != p.Current.ID
}

// PlanOptions select what Plan deploys.
type PlanOptions struct {
	// New and From make a personal deployment New from template From.
	New, From string
	// Release, when set, is deployed instead of what the deployment's
	// image settings name (a promotion, a rollback).
	Release *record.Release
}

// Plan works out what deploying deployment name would do. It changes
// nothing, but reads the deployment's secrets, so that a missing one
// shows before --apply.
func (d *Deployer) Plan(ctx context.Context, name string, o PlanOptions) (*Plan, error) {
	var def *config.Deployment
	var rec *record.Record
	var err error
	p := &Plan{Deployment: name, Units: []UnitReport{}, Hooks: []string{}, Checks: []string{}, Refused: []string{}, action: "deploy"}
	if o.New != "" {
		def, rec, err = d.newPersonal(o.New, o.From)
		p.Deployment, p.Template, p.newRec = o.New, o.From, true
	} else {
		def, rec, err = d.definition(name)
	}
	if err != nil {
		return nil, err
	}
	p.def, p.rec = def, rec
	if rec != nil && !p.newRec {
		p.Current = rec.Release
		switch {
		case rec.Lock != nil:
			p.Refused = append(p.Refused, fmt.Sprintf("locked by %s at %s: %s (kiln unlock %s)", rec.Lock.By, formatTime(rec.Lock.At), rec.Lock.Reason, name))
		case rec.State == record.StateDisabled:
			p.Refused = append(p.Refused, fmt.Sprintf("disabled: its compute is stopped (kiln enable %s)", name))
		case rec.State == record.StateDestroyed:
			p.Refused = append(p.Refused, "destroyed")
		case rec.State == record.StateDestroying:
			p.Refused = append(p.Refused, fmt.Sprintf("a destroy is under way or was interrupted (run %s); finish it: kiln destroy %s --apply", rec.Run, name))
		}
		if d.expired(rec) {
			p.Refused = append(p.Refused, fmt.Sprintf("expired at %s; destroy it, or make a new one with --new", formatTime(rec.Expires)))
		}
	}
	if o.Release != nil {
		p.Release = copyRelease(o.Release)
	} else if p.Release, err = d.resolveRelease(ctx, def); err != nil {
		return nil, err
	}
	if p.Release.Templates, err = d.templateDigests(def); err != nil {
		return nil, err
	}
	var params, secrets map[string]string
	if p.inputs, params, secrets, err = d.inputs(ctx, def); err != nil {
		return nil, err
	}
	p.Release.Parameters, p.Release.Secrets = params, secrets
	img, _, err := d.image(ctx, p.Release, def.Region)
	if err != nil {
		return nil, err
	}
	// A unit sees the outputs of the units before it; those not applied
	// by this deploy yet are what the record says (ports and addresses
	// stay across deploys).
	prior := map[string]string{}
	for _, un := range def.UnitOrder() {
		u, err := d.unit(def, un, p.Release, img, p.inputs, prior)
		if err != nil {
			return nil, err
		}
		kind := d.Kinds[u.Config.Kind()]
		var up UnitPlan
		if err := d.retry(ctx, "plan unit "+un, func() (err error) { up, err = kind.Plan(ctx, u); return err }); err != nil {
			return nil, fmt.Errorf("deployment %s unit %s: plan: %w", def.Name, un, err)
		}
		if up.Changes == nil {
			up.Changes = []string{}
		}
		p.Units = append(p.Units, UnitReport{Name: un, Kind: u.Config.Kind(), Action: up.Action, Changes: up.Changes})
		p.units = append(p.units, u)
		if rec != nil {
			for k, v := range rec.Outputs {
				if strings.HasPrefix(k, un+".") {
					prior[k] = v
				}
			}
		}
	}
	for _, h := range def.Hooks.PostDeploy {
		p.Hooks = append(p.Hooks, h.Name)
	}
	for _, c := range def.Checks {
		p.Checks = append(p.Checks, c.Name)
	}
	return p, nil
}

// unit builds unit name of def for release, with the outputs known so far.
func (d *Deployer) unit(def *config.Deployment, name string, rel *record.Release, img Image, inputs map[string]Value, outputs map[string]string) (Unit, error) {
	cu := def.Units[name]
	if d.Kinds[cu.Kind()] == nil {
		return Unit{}, cloud.Mark(fmt.Errorf("deployment %s unit %s: %s units are not available on the %s backend", def.Name, name, cu.Kind(), d.Config.Backend.Type), cloud.ErrInvalid)
	}
	u := Unit{
		Project: d.Config.Project, Deployment: def.Name, Name: name, Region: def.Region,
		Config: cu, Image: img, Release: rel.ID, Inputs: inputs, Outputs: maps.Clone(outputs),
		Tags: UnitTags(d.Config.Project, def.Name, name, rel.ID, d.Config.CostTag.Key, def.CostTagValue()),
		Dir:  d.Config.Dir, Protect: def.Protect,
	}
	u.Token = unitToken(u)
	return u, nil
}
