package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/journal"
)

// Report is what a deploy, promotion or rollback did.
type Report struct {
	*Plan
	Applied bool `json:"applied"`
	// Run is the journal's id of the operation.
	Run     string            `json:"run,omitempty"`
	Outputs map[string]string `json:"outputs"`
	Hooks   []HookResult      `json:"hook_results"`
	// Verification is the verification that ended the deploy; null when
	// it was skipped or the deploy failed before it.
	Verification *record.Verification `json:"verification,omitempty"`
	State        record.State         `json:"state"`
	// Failed says what failed: a unit, a hook, the verification.
	Failed string `json:"failed,omitempty"`
}

// ApplyOptions change how a plan is applied.
type ApplyOptions struct {
	// NoVerify skips the verification at the end.
	NoVerify bool
}

// Apply carries out a plan made by Plan: it marks the record deploying,
// applies the units in order (each a journaled step, retried when the
// error says so), records their outputs, runs the post-deploy hooks and
// verifies. Rerun after a crash, the same plan converges: units at their
// token are left as they are, and hooks this machine's journal shows
// done for the interrupted run are not run again. A failed unit, hook or
// verification is a Report with Failed set and an error matching
// ErrRefused for a refusal, or the failure otherwise.
func (d *Deployer) Apply(ctx context.Context, p *Plan, o ApplyOptions) (*Report, error) {
	rep := &Report{Plan: p, Outputs: map[string]string{}, Hooks: []HookResult{}}
	if len(p.Refused) > 0 {
		return rep, fmt.Errorf("deployment %s: %w: %s", p.Deployment, ErrRefused, strings.Join(p.Refused, "; "))
	}
	unlock, err := d.lock(ctx, p.Deployment)
	if err != nil {
		return rep, err
	}
	defer unlock()
	rec := p.rec
	if !p.newRec {
		// Another process may have changed the record since the plan.
		if rec, _, err = record.Load(d.Config.Dir, p.Deployment); err != nil {
			return rep, err
		}
		if rec != nil && rec.Lock != nil {
			return rep, fmt.Errorf("deployment %s: %w: locked by %s meanwhile: %s", p.Deployment, ErrRefused, rec.Lock.By, rec.Lock.Reason)
		}
	}
	if rec == nil {
		rec = record.New(p.Deployment, d.Config.Project, p.def.Region, p.def.Account)
	}
	rep.Applied = true

	// The same release interrupted mid-deploy resumes its run.
	run := ""
	if rec.State == record.StateDeploying && rec.Release != nil && rec.Release.ID == p.Release.ID && rec.Run != "" {
		if _, _, err := d.Journal.Run(ctx, rec.Run); err == nil {
			run = rec.Run
		}
	}
	if run == "" {
		run = journal.NewAssetID(d.now())
	}
	rep.Run = run
	if err := d.Journal.StartRun(ctx, journal.Run{ID: run, UseCase: p.Release.UseCase, Arch: p.Release.Arch, Version: p.Release.Version, Phase: p.action}); err != nil {
		return rep, err
	}
	d.log().Info("deploying", "deployment", p.Deployment, "release", p.Release.ID, "run", run)

	if rec.Release != nil && rec.Release.ID != p.Release.ID && (rec.State == record.StateDeployed || rec.State == record.StateDisabled) {
		rec.Previous = rec.Release
	}
	sameRelease := rec.Release != nil && rec.Release.ID == p.Release.ID && !rec.DeployedAt.IsZero()
	// A deploy that changes nothing of a deployed deployment does not run
	// its hooks again; an interrupted one finishes them.
	nothingNew := !p.Changes() && rec.State == record.StateDeployed
	rec.Release, rec.State, rec.Reason, rec.Run = p.Release, record.StateDeploying, "", run
	if err := d.saveRecord(rec, "deploying"); err != nil {
		return rep, err
	}

	fail := func(what string, err error) (*Report, error) {
		rec.State, rec.Reason = record.StateFailed, what+": "+err.Error()
		rep.State, rep.Failed = rec.State, rec.Reason
		rec.AddEvent(record.Event{At: d.now(), Action: p.action, By: d.who(), Release: p.Release.ID, Detail: "failed: " + rec.Reason})
		if serr := d.saveRecord(rec, "failed"); serr != nil {
			err = errors.Join(err, serr)
		}
		d.Journal.SetRun(context.WithoutCancel(ctx), run, "", journal.RunFailed)
		return rep, fmt.Errorf("deployment %s: %s: %w", p.Deployment, what, err)
	}

	outputs := map[string]string{}
	for i, planned := range p.units {
		// Rebuilt with the outputs of the units applied before it.
		u, err := d.unit(p.def, planned.Name, p.Release, planned.Image, p.inputs, outputs)
		if err != nil {
			return fail("unit "+planned.Name, err)
		}
		kind := d.Kinds[u.Config.Kind()]
		done := d.step(fmt.Sprintf("unit %s (%s) %s", u.Name, u.Config.Kind(), p.Units[i].Action))
		var st UnitStatus
		err = d.journalStep(ctx, run, "deploy", "unit "+u.Name, u.Region, u.Config.Kind()+" token "+u.Token, func() (string, error) {
			err := d.retry(ctx, "apply unit "+u.Name, func() (err error) { st, err = kind.Apply(ctx, u); return err })
			return u.Deployment + "/" + u.Name, err
		})
		done(err)
		if err != nil {
			return fail("unit "+u.Name, err)
		}
		for k, v := range st.Outputs {
			outputs[u.Name+"."+k] = v
		}
		rec.Units[u.Name] = record.Unit{Kind: u.Config.Kind(), Token: st.Token}
	}
	// Units the deployment no longer has are left for kiln destroy;
	// the record forgets them only when they are gone.
	rec.Outputs = maps.Clone(outputs)
	rec.URLs = urls(outputs)
	rep.Outputs = outputs
	if err := d.saveRecord(rec, "units up"); err != nil {
		return rep, err
	}

	hookEnv := d.hookEnv(p.def, p.Release, p.inputs, outputs)
	for i, h := range p.def.Hooks.PostDeploy {
		name := fmt.Sprintf("post_deploy[%d] %s", i, h.Name)
		if nothingNew || d.stepDone(ctx, run, "hook", name) {
			rep.Hooks = append(rep.Hooks, HookResult{Name: h.Name, Skipped: true})
			continue
		}
		done := d.step("hook " + h.Name)
		var hr HookResult
		err := d.journalStep(ctx, run, "hook", name, p.def.Region, strings.Join(h.Command, " "), func() (string, error) {
			hr = d.runHook(ctx, h, hookEnv, secretTexts(p.inputs))
			if hr.Error != "" {
				return "", errors.New(hr.Error)
			}
			return "", nil
		})
		done(err)
		rep.Hooks = append(rep.Hooks, hr)
		if err != nil {
			return fail("post-deploy hook "+h.Name, fmt.Errorf("%w: %s", ErrRefused, hr.Error))
		}
	}

	rec.State = record.StateDeployed
	if !sameRelease || rec.DeployedAt.IsZero() {
		rec.DeployedAt = d.now()
	}
	rec.DeployedBy = d.who()
	switch {
	case p.hold != nil:
		rec.Hold = p.hold
	case p.liftHold && rec.Hold != nil:
		rec.AddEvent(record.Event{At: d.now(), Action: "hold-lifted", By: d.who(), Release: p.Release.ID, Detail: rec.Hold.Reason})
		rec.Hold = nil
	}
	rec.AddEvent(record.Event{At: d.now(), Action: p.action, By: d.who(), Release: p.Release.ID, Detail: p.message})
	if err := d.saveRecord(rec, "deployed"); err != nil {
		return rep, err
	}
	rep.State = rec.State
	d.Journal.SetRun(ctx, run, "", journal.RunSucceeded)
	if o.NoVerify || len(p.def.Checks) == 0 {
		return rep, nil
	}
	v, err := d.verifyLocked(ctx, p.def, rec, p.inputs)
	if err != nil {
		return rep, err
	}
	rep.Verification = &v
	if !v.Passed {
		rep.Failed = "verification"
		return rep, fmt.Errorf("deployment %s: %w: verification failed", p.Deployment, ErrRefused)
	}
	return rep, nil
}

func secretTexts(inputs map[string]Value) []string {
	var out []string
	for _, v := range inputs {
		if v.Secret && v.Text != "" {
			out = append(out, v.Text)
		}
	}
	return out
}
