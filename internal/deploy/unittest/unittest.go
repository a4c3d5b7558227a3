// Package unittest is the conformance suite of deploy.UnitKind: every unit
// kind (local VMs and processes, aws stacks and instances) runs it against
// the real thing — qemu, processes, moto or the wire-format stub — with
// no fakes. A kind's test supplies a Harness and calls Run.
//
// What it checks, in order, on one unit and one neighbour in another
// deployment:
//
//   - a unit never applied: Status is absent with no error, Plan is a
//     create, Destroy succeeds, SetRunning fails with cloud.ErrNotFound,
//     Resources finds nothing;
//   - Apply brings it up: running, at the unit's token, with outputs; the
//     harness's own reads (not the kind) see it running; Resources lists
//     what it made, each with every tag of Unit.Tags;
//   - Apply again, and two Applies at once, make nothing new (Resources
//     unchanged) and Plan is then none;
//   - a changed unit (Harness.Unit with variant 1) plans update or
//     replace, and Apply takes it to the new token without leaving the old
//     one behind;
//   - SetRunning false stops it (the harness sees it stopped), twice
//     without error; Plan is then start; SetRunning true runs it again;
//   - when the harness can kill the unit's compute behind kiln's back,
//     Status reports it failed or restarted, never plainly running as if
//     nothing happened;
//   - Destroy removes it, Resources is empty, the harness sees nothing,
//     Destroy again succeeds; the neighbour is untouched throughout.
package unittest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
)

// Harness is what a kind's test gives the suite.
type Harness struct {
	Kind deploy.UnitKind
	// Unit returns the unit to test in deployment dep. variant 0 and 1
	// differ in a setting that needs an update or a replacement (and so
	// in Token); otherwise they are the same unit.
	Unit func(t *testing.T, dep string, variant int) deploy.Unit
	// Observe reads the unit's compute directly, without the kind (a pid
	// and a process table, a describe call): whether anything of it
	// exists, and whether it runs.
	Observe func(t *testing.T, u deploy.Unit) (exists, running bool)
	// Kill, when set, stops the unit's compute behind kiln's back (kills
	// the VM or process, terminates the instance) to check that Status
	// reports it.
	Kill func(t *testing.T, u deploy.Unit)
	// Timeout bounds each call; default 5 minutes.
	Timeout time.Duration
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	if h.Timeout == 0 {
		h.Timeout = 5 * time.Minute
	}
	s := &suite{h: h}
	u := h.Unit(t, "conform", 0)
	neighbour := h.Unit(t, "neighbour", 0)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
		defer cancel()
		for _, x := range []deploy.Unit{u, neighbour} {
			if err := h.Kind.Destroy(ctx, x); err != nil {
				t.Errorf("cleanup: destroy %s/%s: %v", x.Deployment, x.Name, err)
			}
		}
	})

	steps := []struct {
		name string
		f    func(*testing.T, deploy.Unit, deploy.Unit)
	}{
		{"absent", s.absent},
		{"apply", s.apply},
		{"apply again", s.applyAgain},
		{"apply at once", s.applyConcurrently},
		{"change", s.change},
		{"stop and start", s.stopStart},
		{"killed", s.killed},
		{"destroy", s.destroy},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) { st.f(t, u, neighbour) }) {
			return // later steps build on this one
		}
	}
}

type suite struct {
	h Harness
	// count is how many resources the unit had after its first Apply.
	count int
	// current is the unit as last applied (variant 0 or 1).
	current deploy.Unit
}

func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), s.h.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// scope is the tag filter of one deployment's unit.
func scope(u deploy.Unit) map[string]string {
	return map[string]string{
		cloud.TagProject:    u.Tags[cloud.TagProject],
		cloud.TagDeployment: u.Deployment,
		cloud.TagUnit:       u.Name,
	}
}

func (s *suite) resources(t *testing.T, u deploy.Unit) []deploy.Resource {
	t.Helper()
	rs, err := s.h.Kind.Resources(s.ctx(t), u.Region, scope(u))
	if err != nil {
		t.Fatalf("Resources: %v", err)
	}
	for _, r := range rs {
		if !cloud.Match(r.Tags, scope(u)) {
			t.Errorf("Resources returned %s %s with tags %v, outside the filter %v", r.Type, r.ID, r.Tags, scope(u))
		}
	}
	return rs
}

func (s *suite) status(t *testing.T, u deploy.Unit) deploy.UnitStatus {
	t.Helper()
	st, err := s.h.Kind.Status(s.ctx(t), u)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

func (s *suite) plan(t *testing.T, u deploy.Unit) deploy.UnitPlan {
	t.Helper()
	p, err := s.h.Kind.Plan(s.ctx(t), u)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func (s *suite) absent(t *testing.T, u, _ deploy.Unit) {
	if st := s.status(t, u); st.State != deploy.UnitAbsent {
		t.Errorf("Status of a unit never applied = %+v, want absent", st)
	}
	if p := s.plan(t, u); p.Action != deploy.ActionCreate {
		t.Errorf("Plan of a unit never applied = %+v, want create", p)
	}
	if err := s.h.Kind.Destroy(s.ctx(t), u); err != nil {
		t.Errorf("Destroy of an absent unit: %v, want success", err)
	}
	if err := s.h.Kind.SetRunning(s.ctx(t), u, false); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("SetRunning of an absent unit: %v, want an error matching cloud.ErrNotFound", err)
	}
	if rs := s.resources(t, u); len(rs) != 0 {
		t.Errorf("Resources before any Apply: %+v", rs)
	}
}

func (s *suite) apply(t *testing.T, u, neighbour deploy.Unit) {
	for _, x := range []deploy.Unit{u, neighbour} {
		st, err := s.h.Kind.Apply(s.ctx(t), x)
		if err != nil {
			t.Fatalf("Apply %s: %v", x.Deployment, err)
		}
		if st.State != deploy.UnitRunning || st.Token != x.Token || st.Outputs == nil {
			t.Fatalf("Apply %s returned %+v, want running at token %s with outputs", x.Deployment, st, x.Token)
		}
	}
	st := s.status(t, u)
	if st.State != deploy.UnitRunning || st.Token != u.Token {
		t.Errorf("Status after Apply = %+v, want running at %s", st, u.Token)
	}
	if exists, running := s.h.Observe(t, u); !exists || !running {
		t.Errorf("after Apply the harness sees exists=%v running=%v", exists, running)
	}
	rs := s.resources(t, u)
	if len(rs) == 0 {
		t.Fatal("Resources lists nothing after Apply")
	}
	for _, r := range rs {
		if r.Region != u.Region || r.ID == "" || r.Type == "" {
			t.Errorf("resource %+v: want type, id and region %s", r, u.Region)
		}
		for k, v := range u.Tags {
			if r.Tags[k] != v {
				t.Errorf("resource %s %s: tag %s = %q, want %q", r.Type, r.ID, k, r.Tags[k], v)
			}
		}
	}
	s.count = len(rs)
	s.current = u
}

func (s *suite) applyAgain(t *testing.T, u, _ deploy.Unit) {
	if p := s.plan(t, u); p.Action != deploy.ActionNone {
		t.Errorf("Plan of an applied, running unit = %+v, want none", p)
	}
	if _, err := s.h.Kind.Apply(s.ctx(t), u); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if n := len(s.resources(t, u)); n != s.count {
		t.Errorf("after a second Apply %d resources, want %d", n, s.count)
	}
}

// Two kiln processes deploying at once (or a rerun racing a process
// that is not quite dead) still make one unit.
func (s *suite) applyConcurrently(t *testing.T, u, _ deploy.Unit) {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.h.Kind.Apply(s.ctx(t), u)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !cloud.Retryable(err) {
			t.Errorf("concurrent Apply: %v", err)
		}
	}
	if n := len(s.resources(t, u)); n != s.count {
		t.Errorf("after concurrent Applies %d resources, want %d", n, s.count)
	}
}

func (s *suite) change(t *testing.T, u, _ deploy.Unit) {
	v1 := s.h.Unit(t, u.Deployment, 1)
	if v1.Token == u.Token {
		t.Fatal("the harness's variant 1 has the same token as variant 0")
	}
	if p := s.plan(t, v1); p.Action != deploy.ActionUpdate && p.Action != deploy.ActionReplace {
		t.Errorf("Plan of a changed unit = %+v, want update or replace", p)
	} else if len(p.Changes) == 0 {
		t.Errorf("Plan of a changed unit says %s but lists no changes", p.Action)
	}
	st, err := s.h.Kind.Apply(s.ctx(t), v1)
	if err != nil {
		t.Fatalf("Apply of the changed unit: %v", err)
	}
	if st.State != deploy.UnitRunning || st.Token != v1.Token {
		t.Errorf("Apply of the changed unit returned %+v, want running at %s", st, v1.Token)
	}
	if n := len(s.resources(t, v1)); n != s.count {
		t.Errorf("after the change %d resources, want %d (the old one left behind?)", n, s.count)
	}
	if p := s.plan(t, u); p.Action == deploy.ActionNone {
		t.Error("Plan of variant 0 after applying variant 1 is none")
	}
	s.current = v1
}

func (s *suite) stopStart(t *testing.T, _, _ deploy.Unit) {
	u := s.current
	for range 2 {
		if err := s.h.Kind.SetRunning(s.ctx(t), u, false); err != nil {
			t.Fatalf("SetRunning false: %v", err)
		}
	}
	if st := s.status(t, u); st.State != deploy.UnitStopped {
		t.Errorf("Status after SetRunning false = %+v, want stopped", st)
	}
	if exists, running := s.h.Observe(t, u); !exists || running {
		t.Errorf("after SetRunning false the harness sees exists=%v running=%v, want a stopped unit", exists, running)
	}
	if p := s.plan(t, u); p.Action != deploy.ActionStart {
		t.Errorf("Plan of a stopped unit = %+v, want start", p)
	}
	if err := s.h.Kind.SetRunning(s.ctx(t), u, true); err != nil {
		t.Fatalf("SetRunning true: %v", err)
	}
	if st := s.status(t, u); st.State != deploy.UnitRunning {
		t.Errorf("Status after SetRunning true = %+v, want running", st)
	}
	if _, running := s.h.Observe(t, u); !running {
		t.Error("after SetRunning true the harness sees it not running")
	}
}

func (s *suite) killed(t *testing.T, _, _ deploy.Unit) {
	if s.h.Kill == nil {
		t.Skip("the harness cannot kill the unit's compute")
	}
	u := s.current
	before := s.status(t, u)
	s.h.Kill(t, u)
	deadline := time.Now().Add(s.h.Timeout)
	for {
		st := s.status(t, u)
		if st.State == deploy.UnitFailed || st.Restarts > before.Restarts {
			if st.Problem == "" {
				t.Errorf("Status after a kill = %+v: failed or restarted, but no Problem says what happened", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Status after a kill is still %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Apply brings it back, however it is now.
	if st, err := s.h.Kind.Apply(s.ctx(t), u); err != nil || st.State != deploy.UnitRunning {
		t.Fatalf("Apply after a kill: %+v, %v", st, err)
	}
	if n := len(s.resources(t, u)); n != s.count {
		t.Errorf("after the kill and Apply %d resources, want %d", n, s.count)
	}
}

func (s *suite) destroy(t *testing.T, _, neighbour deploy.Unit) {
	u := s.current
	before := s.resources(t, neighbour)
	if err := s.h.Kind.Destroy(s.ctx(t), u); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if st := s.status(t, u); st.State != deploy.UnitAbsent {
		t.Errorf("Status after Destroy = %+v, want absent", st)
	}
	if rs := s.resources(t, u); len(rs) != 0 {
		t.Errorf("Resources after Destroy: %+v", rs)
	}
	if exists, _ := s.h.Observe(t, u); exists {
		t.Error("after Destroy the harness still sees the unit")
	}
	if err := s.h.Kind.Destroy(s.ctx(t), u); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	// The neighbour in another deployment is untouched.
	after := s.resources(t, neighbour)
	ids := func(rs []deploy.Resource) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Type+"/"+r.ID)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(ids(before), ids(after)) {
		t.Errorf("the neighbour's resources changed: %v -> %v", ids(before), ids(after))
	}
	if st := s.status(t, neighbour); st.State != deploy.UnitRunning {
		t.Errorf("the neighbour is %+v after the unit's Destroy", st)
	}
	if exists, running := s.h.Observe(t, neighbour); !exists || !running {
		t.Errorf("the harness sees the neighbour exists=%v running=%v", exists, running)
	}
}
