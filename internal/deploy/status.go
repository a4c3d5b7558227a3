package deploy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// StatusReport compares a deployment's record with its units as they are.
type StatusReport struct {
	Deployment string             `json:"deployment"`
	State      record.State       `json:"state"`
	Reason     string             `json:"reason,omitempty"`
	Release    *record.Release    `json:"release,omitempty"`
	DeployedAt time.Time          `json:"deployed_at,omitzero"`
	DeployedBy string             `json:"deployed_by,omitempty"`
	Units      []UnitStatusReport `json:"units"`
	Outputs    map[string]string  `json:"outputs"`
	URLs       []string           `json:"urls"`
	// LastVerification is the newest in the record's history.
	LastVerification *record.Verification `json:"last_verification,omitempty"`
	Lock             *record.Mark         `json:"lock,omitempty"`
	Hold             *record.Mark         `json:"hold,omitempty"`
	Expires          time.Time            `json:"expires,omitzero"`
	// Drift lists where the cloud differs from the record.
	Drift []string `json:"drift"`
}

// UnitStatusReport is one unit as it is.
type UnitStatusReport struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	State    UnitState `json:"state"`
	Want     UnitState `json:"want"`
	Token    string    `json:"token"`
	Recorded string    `json:"recorded_token"`
	Restarts int       `json:"restarts"`
	Problem  string    `json:"problem,omitempty"`
	Drift    []string  `json:"drift"`
}

// Status reads deployment name's units and compares them with its record.
func (d *Deployer) Status(ctx context.Context, name string) (*StatusReport, error) {
	def, rec, err := d.definition(name)
	if err != nil {
		return nil, err
	}
	rep := &StatusReport{Deployment: name, Units: []UnitStatusReport{}, Outputs: map[string]string{}, URLs: []string{}, Drift: []string{}}
	if rec == nil {
		rep.State = record.StateNew
		rep.Drift = append(rep.Drift, "never deployed (no record "+record.Path(d.Config.Dir, name)+")")
		return rep, nil
	}
	rep.State, rep.Reason, rep.Release, rep.DeployedAt, rep.DeployedBy = rec.State, rec.Reason, rec.Release, rec.DeployedAt, rec.DeployedBy
	rep.Outputs, rep.URLs, rep.Lock, rep.Hold, rep.Expires = rec.Outputs, rec.URLs, rec.Lock, rec.Hold, rec.Expires
	if v, ok := rec.LastVerification(); ok {
		rep.LastVerification = &v
	}
	switch rec.State {
	case record.StateDeploying:
		rep.Drift = append(rep.Drift, fmt.Sprintf("a deploy of %s did not finish (run %s); deploy again to finish it", rec.Release.ID, rec.Run))
	case record.StateFailed:
		rep.Drift = append(rep.Drift, "the last deploy failed: "+rec.Reason)
	case record.StateDestroying:
		rep.Drift = append(rep.Drift, fmt.Sprintf("a destroy did not finish (run %s); finish it: kiln destroy %s --apply", rec.Run, name))
	}
	if d.expired(rec) {
		rep.Drift = append(rep.Drift, "expired at "+formatTime(rec.Expires))
	}
	if rec.Release == nil || rec.State == record.StateNew || rec.State == record.StateDestroyed || rec.State == record.StateDestroying {
		return rep, nil
	}
	want := UnitRunning
	if rec.State == record.StateDisabled {
		want = UnitStopped
	}
	units, err := d.recordedUnits(ctx, def, rec, nil)
	if err != nil {
		return nil, err
	}
	for _, u := range units {
		st, err := d.Kinds[u.Config.Kind()].Status(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("deployment %s unit %s: %w", name, u.Name, err)
		}
		us := UnitStatusReport{
			Name: u.Name, Kind: u.Config.Kind(), State: st.State, Want: want, Token: st.Token,
			Recorded: rec.Units[u.Name].Token, Restarts: st.Restarts, Problem: st.Problem, Drift: st.Drift,
		}
		if us.Drift == nil {
			us.Drift = []string{}
		}
		switch {
		case st.State == UnitAbsent:
			rep.Drift = append(rep.Drift, fmt.Sprintf("unit %s does not exist", u.Name))
		case st.State != want:
			msg := fmt.Sprintf("unit %s is %s, want %s", u.Name, st.State, want)
			if st.Problem != "" {
				msg += ": " + st.Problem
			}
			rep.Drift = append(rep.Drift, msg)
		case us.Recorded != "" && st.Token != us.Recorded:
			rep.Drift = append(rep.Drift, fmt.Sprintf("unit %s runs token %s, the record says %s (changed outside this deploy)", u.Name, st.Token, us.Recorded))
		}
		if st.Restarts > 0 && st.State == UnitRunning {
			rep.Drift = append(rep.Drift, fmt.Sprintf("unit %s was restarted %d times: %s", u.Name, st.Restarts, st.Problem))
		}
		for _, dr := range st.Drift {
			rep.Drift = append(rep.Drift, "unit "+u.Name+": "+dr)
		}
		rep.Units = append(rep.Units, us)
	}
	for _, un := range sortedKeys(rec.Units) {
		if def.Units[un] == nil {
			rep.Drift = append(rep.Drift, fmt.Sprintf("unit %s is no longer in kiln.yaml; kiln destroy removes it", un))
		}
	}
	return rep, nil
}

// recordedUnits builds the deployment's units as its record's release
// has them; inputs may be nil where the kinds do not need them (status,
// stopping).
func (d *Deployer) recordedUnits(ctx context.Context, def *config.Deployment, rec *record.Record, inputs map[string]Value) ([]Unit, error) {
	img := Image{ID: rec.Release.Images[def.Region], Name: rec.Release.ImageName, Region: def.Region, Arch: rec.Release.Arch, Version: rec.Release.Version}
	var out []Unit
	prior := map[string]string{}
	for _, un := range def.UnitOrder() {
		u, err := d.unit(def, un, rec.Release, img, inputs, prior)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
		for k, v := range rec.Outputs {
			if len(k) > len(un) && k[:len(un)+1] == un+"." {
				prior[k] = v
			}
		}
	}
	return out, nil
}

// ListEntry is one deployment in a list.
type ListEntry struct {
	Name string `json:"name"`
	// Kind is "deployment", "template" or "personal".
	Kind       string       `json:"kind"`
	Region     string       `json:"region"`
	State      record.State `json:"state"`
	Release    string       `json:"release,omitempty"`
	Version    string       `json:"version,omitempty"`
	DeployedAt time.Time    `json:"deployed_at,omitzero"`
	// Verified is the outcome of the last verification: passed, failed
	// or "" (never).
	Verified   string    `json:"verified,omitempty"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	Locked     bool      `json:"locked"`
	Held       bool      `json:"held"`
	Template   string    `json:"template,omitempty"`
	Expires    time.Time `json:"expires,omitzero"`
	Expired    bool      `json:"expired"`
}

// List returns the project's deployments: kiln.yaml's (templates
// included) and the personal ones their records hold, by name.
func (d *Deployer) List() ([]ListEntry, error) {
	names := d.Config.DeploymentNames()
	recs, err := record.List(d.Config.Dir)
	if err != nil {
		return nil, err
	}
	for _, n := range recs {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := []ListEntry{}
	for _, n := range names {
		e, _, err := d.entry(n)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Entry returns deployment name's entry in List and its record (nil when
// it has none), reading that record only; ok is false when neither
// kiln.yaml nor the records know the name.
func (d *Deployer) Entry(name string) (e ListEntry, rec *record.Record, ok bool, err error) {
	if _, defined := d.Config.Deployments[name]; !defined {
		// Only names record.List finds are read: a name from a request
		// never becomes a path of its own.
		recs, err := record.List(d.Config.Dir)
		if err != nil || !slices.Contains(recs, name) {
			return ListEntry{}, nil, false, err
		}
	}
	e, rec, err = d.entry(name)
	return e, rec, err == nil, err
}

// entry is deployment n's list entry, from kiln.yaml and its record.
func (d *Deployer) entry(n string) (ListEntry, *record.Record, error) {
	e := ListEntry{Name: n, Kind: "deployment", State: record.StateNew}
	if def, ok := d.Config.Deployments[n]; ok {
		e.Region = def.Region
		if def.Template {
			e.Kind, e.State = "template", ""
		}
	}
	rec, ok, err := record.Load(d.Config.Dir, n)
	if err != nil || !ok {
		return e, nil, err
	}
	if rec.Template != "" {
		e.Kind, e.Template = "personal", rec.Template
	}
	e.Region, e.State, e.DeployedAt = rec.Region, rec.State, rec.DeployedAt
	if rec.Release != nil {
		e.Release, e.Version = rec.Release.ID, rec.Release.Version
	}
	if v, ok := rec.LastVerification(); ok {
		e.Verified, e.VerifiedAt = map[bool]string{true: "passed", false: "failed"}[v.Passed], v.At
	}
	e.Locked, e.Held, e.Expires, e.Expired = rec.Lock != nil, rec.Hold != nil, rec.Expires, d.expired(rec)
	return e, rec, nil
}
