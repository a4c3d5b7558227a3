package deploy

import (
	"context"
	"fmt"
	"regexp"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/deploy/verify"
)

// VerifyReport is a verification of a deployment.
type VerifyReport struct {
	Deployment   string              `json:"deployment"`
	Release      string              `json:"release"`
	Verification record.Verification `json:"verification"`
}

// Verify runs deployment name's checks against what its record says runs
// there, and records the outcome in its history. A failed check is a
// report with Passed false and a nil error.
func (d *Deployer) Verify(ctx context.Context, name string) (*VerifyReport, error) {
	unlock, err := d.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	def, rec, err := d.mustRecord(name)
	if err != nil {
		return nil, err
	}
	if len(def.Checks) == 0 {
		return nil, cloud.Mark(fmt.Errorf("deployment %s has no checks to run; add checks to it in kiln.yaml", name), cloud.ErrInvalid)
	}
	inputs, _, _, err := d.inputs(ctx, def)
	if err != nil {
		return nil, err
	}
	v, err := d.verifyLocked(ctx, def, rec, inputs)
	if err != nil {
		return nil, err
	}
	return &VerifyReport{Deployment: name, Release: rec.Release.ID, Verification: v}, nil
}

// verifyLocked runs the checks and records the outcome; the caller holds
// the deployment's lock.
func (d *Deployer) verifyLocked(ctx context.Context, def *config.Deployment, rec *record.Record, inputs map[string]Value) (record.Verification, error) {
	img := Image{ID: rec.Release.Images[def.Region], Name: rec.Release.ImageName, Region: def.Region, Arch: rec.Release.Arch, Version: rec.Release.Version}
	ctxUnit := Unit{Project: d.Config.Project, Deployment: def.Name, Region: def.Region, Image: img, Inputs: inputs, Outputs: rec.Outputs}
	env := d.hookEnv(def, rec.Release, inputs, rec.Outputs)
	var checks []verify.Check
	for _, c := range def.Checks {
		vc := verify.Check{
			Name: c.Name, InitialDelay: c.InitialDelay.Std(), Interval: c.Interval.Std(), Count: c.Count,
			FailureLimit: c.FailureLimit, ConsecutiveErrorLimit: *c.ConsecutiveErrorLimit, Timeout: c.Timeout.Std(),
		}
		expand := func(s string) (string, error) {
			v, _, err := ctxUnit.Expand(s, nil)
			if err != nil {
				return "", fmt.Errorf("deployment %s check %s: %w", def.Name, c.Name, err)
			}
			return v, nil
		}
		var err error
		if h := c.HTTP; h != nil {
			vc.HTTP = &verify.HTTP{Status: h.Status, JSONField: h.JSONField, Headers: map[string]string{}}
			if vc.HTTP.URL, err = expand(h.URL); err != nil {
				return record.Verification{}, err
			}
			if vc.HTTP.Equals, err = expand(h.Equals); err != nil {
				return record.Verification{}, err
			}
			for k, v := range h.Headers {
				if vc.HTTP.Headers[k], err = expand(v); err != nil {
					return record.Verification{}, err
				}
			}
			if h.Body != "" {
				vc.HTTP.Body = regexp.MustCompile(h.Body) // validated with the config
			}
		} else {
			for _, a := range c.Command {
				v, err := expand(a)
				if err != nil {
					return record.Verification{}, err
				}
				vc.Command = append(vc.Command, v)
			}
			vc.Command = d.command(vc.Command)
			vc.Env, vc.Dir = env, d.Config.Dir
		}
		checks = append(checks, vc)
	}
	done := d.step("verify " + def.Name)
	r := verify.Runner{Client: d.HTTP, Clock: d.clock(), Secrets: secretTexts(inputs)}
	results, err := r.Run(ctx, checks)
	done(err)
	if err != nil {
		return record.Verification{}, err
	}
	v := record.Verification{At: d.now(), Release: rec.Release.ID, Passed: true, Checks: []record.CheckResult{}}
	for _, res := range results {
		v.Passed = v.Passed && res.Passed
		v.Checks = append(v.Checks, record.CheckResult{
			Name: res.Name, Passed: res.Passed, Measurements: res.Measurements,
			Failures: res.Failures, Errors: res.Errors, Detail: res.Detail,
		})
	}
	rec.AddVerification(v)
	outcome := "passed"
	if !v.Passed {
		outcome = "failed"
	}
	rec.AddEvent(record.Event{At: v.At, Action: "verify", By: d.who(), Release: rec.Release.ID, Detail: outcome})
	if err := d.saveRecord(rec, "verified"); err != nil {
		return v, err
	}
	return v, nil
}
