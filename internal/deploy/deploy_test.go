package deploy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// Deploy plans, applies, runs the hook and verifies; a second deploy of
// the same release changes nothing and starts no second process.
func TestDeployConverges(t *testing.T) {
	w := newWorld(t)
	ids := w.release(t, "1.0")
	p, err := w.d.Plan(t.Context(), "dev", deploy.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Units) != 1 || p.Units[0].Action != deploy.ActionCreate || !p.Changes() || p.Current != nil {
		t.Fatalf("plan %+v", p.Units)
	}
	if strings.Contains(strings.Join(p.Units[0].Changes, " "), secret) {
		t.Error("the plan shows the secret")
	}
	if _, ok, _ := record.Load(w.dir, "dev"); ok {
		t.Fatal("a plan wrote a record")
	}
	rep, err := w.d.Apply(t.Context(), p, deploy.ApplyOptions{})
	if err != nil {
		t.Fatalf("apply: %v (%+v)", err, rep)
	}
	if rep.State != record.StateDeployed || rep.Verification == nil || !rep.Verification.Passed || len(rep.Hooks) != 1 || rep.Hooks[0].Error != "" {
		t.Fatalf("report: state %s verification %+v hooks %+v", rep.State, rep.Verification, rep.Hooks)
	}
	r := w.record(t, "dev")
	if r.Release.Version != "1.0" || r.Release.Images["local-a"] != ids["local-a"] || r.Release.Images["local-b"] != ids["local-b"] ||
		r.Release.Channel != "latest" || r.Release.Manifest != "manifests/latest.json" {
		t.Errorf("release %+v", r.Release)
	}
	if r.Release.Parameters["greeting"] != "hello" || r.Release.Secrets["token"] != "env:KILN_TEST_TOKEN" {
		t.Errorf("parameters %v, secrets %v", r.Release.Parameters, r.Release.Secrets)
	}
	if len(r.URLs) != 1 || r.Outputs["web.url.http"] != r.URLs[0] || len(r.Verifications) != 1 || r.DeployedBy != "tester" {
		t.Errorf("record: urls %v outputs %v verifications %d", r.URLs, r.Outputs, len(r.Verifications))
	}
	if got := w.version(t, "dev"); got != "1.0" {
		t.Errorf("the unit answers version %q", got)
	}
	hookLog, _ := os.ReadFile(filepath.Join(w.dir, "hook.log"))
	if want := "dev 1.0 " + r.URLs[0] + " " + secret + "\n"; string(hookLog) != want {
		t.Errorf("the hook saw %q, want %q", hookLog, want)
	}
	// The units carry the deployment's tags.
	rs, err := w.kinds["process"].Resources(t.Context(), "local-a", map[string]string{cloud.TagDeployment: "dev"})
	if err != nil || len(rs) != 1 {
		t.Fatalf("resources %v %v", rs, err)
	}
	for k, v := range map[string]string{cloud.TagManaged: "true", cloud.TagProject: "demo", cloud.TagUnit: "web", cloud.TagRelease: r.Release.ID, "team": "dev"} {
		if rs[0].Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, rs[0].Tags[k], v)
		}
	}

	// Again: nothing to do, the same process.
	before := w.record(t, "dev").Units["web"].Token
	p, err = w.d.Plan(t.Context(), "dev", deploy.PlanOptions{})
	if err != nil || p.Changes() || p.Units[0].Action != deploy.ActionNone {
		t.Fatalf("second plan: %+v %v", p, err)
	}
	rep2, err := w.d.Apply(t.Context(), p, deploy.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep2.Hooks) != 1 || !rep2.Hooks[0].Skipped {
		t.Errorf("a deploy that changed nothing ran the hook again: %+v", rep2.Hooks)
	}
	if log, _ := os.ReadFile(filepath.Join(w.dir, "hook.log")); strings.Count(string(log), "\n") != 1 {
		t.Errorf("hook ran %d times", strings.Count(string(log), "\n"))
	}
	rs, _ = w.kinds["process"].Resources(t.Context(), "local-a", map[string]string{cloud.TagDeployment: "dev"})
	if len(rs) != 1 || w.record(t, "dev").Units["web"].Token != before {
		t.Errorf("the second apply made %d units / changed the token", len(rs))
	}
	w.noSecret(t)
}

// A new release is deployed over the old one; the record keeps the old
// one as previous.
func TestDeployNewRelease(t *testing.T) {
	w := newWorld(t)
	w.release(t, "1.0")
	if _, err := w.deploy(t, "dev", deploy.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	w.release(t, "2.0")
	p, err := w.d.Plan(t.Context(), "dev", deploy.PlanOptions{})
	if err != nil || p.Units[0].Action != deploy.ActionUpdate || p.Current.Version != "1.0" || p.Release.Version != "2.0" {
		t.Fatalf("plan %+v %v", p, err)
	}
	if _, err := w.d.Apply(t.Context(), p, deploy.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	r := w.record(t, "dev")
	if r.Release.Version != "2.0" || r.Previous == nil || r.Previous.Version != "1.0" || w.version(t, "dev") != "2.0" {
		t.Errorf("release %s previous %+v, answering %s", r.Release.Version, r.Previous, w.version(t, "dev"))
	}
}

// A failing hook fails the deploy (a finding), recorded; a failing
// verification too; fixed, the next deploy finishes.
func TestDeployFailures(t *testing.T) {
	w := newWorld(t)
	w.release(t, "1.0")
	os.WriteFile(filepath.Join(w.dir, "hook-fails"), nil, 0o644)
	rep, err := w.deploy(t, "dev", deploy.PlanOptions{})
	if !errors.Is(err, deploy.ErrRefused) || rep.State != record.StateFailed || !strings.Contains(rep.Failed, "post-deploy hook smoke") {
		t.Fatalf("failing hook: %v, %+v", err, rep)
	}
	if strings.Contains(rep.Hooks[0].Error, secret) || !strings.Contains(rep.Hooks[0].Error, "token is [secret]") {
		t.Errorf("hook error %q: the output, with the secret hidden", rep.Hooks[0].Error)
	}
	if r := w.record(t, "dev"); r.State != record.StateFailed || !strings.Contains(r.Reason, "smoke") {
		t.Errorf("record state %s reason %q", r.State, r.Reason)
	}
	os.Remove(filepath.Join(w.dir, "hook-fails"))
	os.WriteFile(filepath.Join(w.dir, "broken"), nil, 0o644)
	rep, err = w.deploy(t, "dev", deploy.PlanOptions{})
	if !errors.Is(err, deploy.ErrRefused) || rep.Verification == nil || rep.Verification.Passed {
		t.Fatalf("wrong version: %v, %+v", err, rep)
	}
	if c := rep.Verification.Checks[1]; c.Name != "version" || c.Passed || !strings.Contains(c.Detail, `version is "not-1.0", want "1.0"`) {
		t.Errorf("version check %+v", c)
	}
	os.Remove(filepath.Join(w.dir, "broken"))
	v, err := w.d.Verify(t.Context(), "dev")
	if err != nil || !v.Verification.Passed {
		t.Fatalf("verify after the fix: %+v %v", v, err)
	}
	if n := len(w.record(t, "dev").Verifications); n != 2 {
		t.Errorf("%d verifications in the history, want 2", n)
	}
	w.noSecret(t)
}

// A missing secret stops the plan before anything is done, naming it.
func TestMissingSecret(t *testing.T) {
	w := newWorld(t)
	w.release(t, "1.0")
	os.Unsetenv("KILN_TEST_TOKEN")
	_, err := w.d.Plan(t.Context(), "dev", deploy.PlanOptions{})
	if !errors.Is(err, cloud.ErrNotFound) || !strings.Contains(err.Error(), "input token: secret env:KILN_TEST_TOKEN: the environment variable KILN_TEST_TOKEN is not set") {
		t.Fatalf("plan: %v", err)
	}
}

// Promotion: gates first (soak), then the same release, verified, in
// staging; never rebuilt, never re-read from the channel.
func TestPromote(t *testing.T) {
	w := newWorld(t)
	ids := w.release(t, "1.0")
	if _, err := w.deploy(t, "dev", deploy.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	w.release(t, "2.0") // the channel moves on; the promotion takes dev's release
	rep, err := w.d.Promote(t.Context(), "dev", "staging", deploy.PromoteOptions{Apply: true})
	if !errors.Is(err, deploy.ErrRefused) || rep.Passed() || rep.Deploy != nil {
		t.Fatalf("promotion before the soak: %v %+v", err, rep)
	}
	if g := gate(rep, deploy.GateSoak); g.Passed || !strings.Contains(g.Detail, "of the 1h soak") {
		t.Errorf("soak gate %+v", g)
	}
	if _, ok, _ := record.Load(w.dir, "staging"); ok {
		t.Error("a refused promotion wrote staging's record")
	}
	w.clock.advance(61 * time.Minute)
	rep, err = w.d.Promote(t.Context(), "dev", "staging", deploy.PromoteOptions{})
	if err != nil || !rep.Passed() || rep.Deploy == nil || rep.Deploy.Applied {
		t.Fatalf("plan of the promotion: %v %+v", err, rep)
	}
	rep, err = w.d.Promote(t.Context(), "dev", "staging", deploy.PromoteOptions{Apply: true})
	if err != nil || !rep.Deploy.Applied || !rep.Deploy.Verification.Passed {
		t.Fatalf("promotion: %v %+v", err, rep)
	}
	s := w.record(t, "staging")
	if s.Release.ID != w.record(t, "dev").Release.ID || s.Release.Version != "1.0" || s.Release.PromotedFrom != "dev" || s.Region != "local-b" {
		t.Errorf("staging runs %+v in %s", s.Release, s.Region)
	}
	if w.version(t, "staging") != "1.0" {
		t.Errorf("staging answers %q", w.version(t, "staging"))
	}
	st, err := w.d.Status(t.Context(), "staging")
	if err != nil || len(st.Drift) != 0 || st.Units[0].State != deploy.UnitRunning {
		t.Errorf("status %+v %v", st, err)
	}
	_ = ids
}

func gate(rep *deploy.PromoteReport, name string) deploy.Gate {
	for _, g := range rep.Gates {
		if g.Name == name {
			return g
		}
	}
	return deploy.Gate{Name: name, Detail: "not reported"}
}

// A manual rollback redeploys the release a git ref recorded and holds
// the deployment: promotion into it waits for --lift-hold.
func TestRollbackHolds(t *testing.T) {
	w := newWorld(t)
	git(t, w.dir, "init", "-q")
	w.release(t, "1.0")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "release 1.0")
	if _, err := w.deploy(t, "dev", deploy.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "dev 1.0")
	git(t, w.dir, "tag", "good")
	if w.record(t, "dev").Release.ManifestCommit == "" {
		t.Error("no manifest commit in the record")
	}
	w.release(t, "2.0")
	if _, err := w.deploy(t, "dev", deploy.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := w.d.Rollback(t.Context(), "dev", "good", false, false)
	if err != nil || rep.Applied || rep.Release.Version != "1.0" || rep.Units[0].Action != deploy.ActionUpdate {
		t.Fatalf("rollback plan: %v %+v", err, rep)
	}
	if rep, err = w.d.Rollback(t.Context(), "dev", "good", true, false); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	r := w.record(t, "dev")
	if r.Release.Version != "1.0" || r.Hold == nil || !strings.Contains(r.Hold.Reason, "rolled back to good") || w.version(t, "dev") != "1.0" {
		t.Fatalf("after rollback: release %s hold %+v answering %s", r.Release.Version, r.Hold, w.version(t, "dev"))
	}
	// staging, promoted to once, is held the same way when rolled back;
	// here dev is the target of nothing, so hold staging by a rollback of
	// its own and see promotion respect it.
	w.clock.advance(2 * time.Hour)
	if _, err := w.d.Promote(t.Context(), "dev", "staging", deploy.PromoteOptions{Apply: true}); err != nil {
		t.Fatal(err)
	}
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "staging 1.0")
	git(t, w.dir, "tag", "staging-good")
	if _, err := w.d.Rollback(t.Context(), "staging", "staging-good", true, false); err != nil {
		t.Fatal(err)
	}
	rep2, err := w.d.Promote(t.Context(), "dev", "staging", deploy.PromoteOptions{Apply: true})
	if !errors.Is(err, deploy.ErrRefused) || gate(rep2, deploy.GateNotHeld).Passed {
		t.Fatalf("promotion into a held deployment: %v %+v", err, gate(rep2, deploy.GateNotHeld))
	}
	if _, err := w.d.Promote(t.Context(), "dev", "staging", deploy.PromoteOptions{Apply: true, LiftHold: true}); err != nil {
		t.Fatalf("promotion with --lift-hold: %v", err)
	}
	s := w.record(t, "staging")
	lifted := false
	for _, e := range s.History {
		lifted = lifted || e.Action == "hold-lifted" && e.By == "tester"
	}
	if s.Hold != nil || !lifted {
		t.Errorf("staging's hold %+v, history %+v", s.Hold, s.History)
	}
}

// Locks, approvals and windows gate prod.
func TestPromoteToProdGates(t *testing.T) {
	w := newWorld(t)
	w.release(t, "1.0")
	if _, err := w.deploy(t, "dev", deploy.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	w.clock.advance(2 * time.Hour) // Monday 12:00
	if _, err := w.d.Promote(t.Context(), "dev", "staging", deploy.PromoteOptions{Apply: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.d.Lock(t.Context(), "prod", "release freeze"); err != nil {
		t.Fatal(err)
	}
	rep, err := w.d.Promote(t.Context(), "staging", "prod", deploy.PromoteOptions{Apply: true})
	if !errors.Is(err, deploy.ErrRefused) {
		t.Fatalf("promotion to a locked, unapproved prod: %v", err)
	}
	for _, g := range []string{deploy.GateNotLocked, deploy.GateApproval} {
		if gate(rep, g).Passed {
			t.Errorf("gate %s passed", g)
		}
	}
	if !gate(rep, deploy.GateWindow).Passed || !gate(rep, deploy.GateVerified).Passed {
		t.Errorf("window %+v, verified %+v", gate(rep, deploy.GateWindow), gate(rep, deploy.GateVerified))
	}
	if _, err := w.d.Unlock(t.Context(), "prod"); err != nil {
		t.Fatal(err)
	}
	if c, err := w.d.Approve(t.Context(), "prod", "", "looks good"); err != nil || !c.Changed {
		t.Fatalf("approve: %+v %v", c, err)
	}
	w.clock.advance(8 * time.Hour) // Monday 20:00: outside the window
	rep, err = w.d.Promote(t.Context(), "staging", "prod", deploy.PromoteOptions{Apply: true})
	if !errors.Is(err, deploy.ErrRefused) || gate(rep, deploy.GateWindow).Passed || !gate(rep, deploy.GateApproval).Passed {
		t.Fatalf("promotion outside the window: %v %+v", err, rep.Gates)
	}
	w.clock.advance(14 * time.Hour) // Tuesday 10:00
	if _, err := w.d.Promote(t.Context(), "staging", "prod", deploy.PromoteOptions{Apply: true}); err != nil {
		t.Fatalf("promotion to prod: %v", err)
	}
	p := w.record(t, "prod")
	if a, ok := p.Approved(p.Release.ID); !ok || a.By != "tester" || a.Comment != "looks good" {
		t.Errorf("approval %+v %v", a, ok)
	}
	// dev is not where prod comes from.
	rep, _ = w.d.Promote(t.Context(), "dev", "prod", deploy.PromoteOptions{})
	if gate(rep, deploy.GatePath).Passed {
		t.Error("prod may be promoted from dev")
	}
}

// The kill switch stops and starts the units; a locked deployment
// refuses deploys; status sees a unit that died.
func TestDisableEnableLockStatus(t *testing.T) {
	w := newWorld(t)
	w.release(t, "1.0")
	if _, err := w.deploy(t, "dev", deploy.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	if c, err := w.d.SetEnabled(t.Context(), "dev", false); err != nil || c.State != record.StateDisabled {
		t.Fatalf("disable: %+v %v", c, err)
	}
	if v := w.version(t, "dev"); !strings.HasPrefix(v, "unreachable") {
		t.Errorf("a disabled deployment answers %q", v)
	}
	st, err := w.d.Status(t.Context(), "dev")
	if err != nil || len(st.Drift) != 0 || st.Units[0].State != deploy.UnitStopped {
		t.Errorf("status of a disabled deployment %+v %v", st, err)
	}
	if p, _ := w.d.Plan(t.Context(), "dev", deploy.PlanOptions{}); len(p.Refused) == 0 {
		t.Error("a disabled deployment may be deployed")
	}
	if _, err := w.d.SetEnabled(t.Context(), "dev", true); err != nil {
		t.Fatal(err)
	}
	if v := w.version(t, "dev"); v != "1.0" {
		t.Errorf("an enabled deployment answers %q", v)
	}
	w.d.Lock(t.Context(), "dev", "demo in progress")
	p, err := w.d.Plan(t.Context(), "dev", deploy.PlanOptions{})
	if err != nil || len(p.Refused) != 1 || !strings.Contains(p.Refused[0], "locked by tester") {
		t.Fatalf("plan of a locked deployment %+v %v", p.Refused, err)
	}
	if _, err := w.d.Apply(t.Context(), p, deploy.ApplyOptions{}); !errors.Is(err, deploy.ErrRefused) {
		t.Errorf("apply to a locked deployment: %v", err)
	}
	w.d.Unlock(t.Context(), "dev")

	// Its process dies behind kiln's back and stays dead: status says so.
	dir := filepath.Join(w.cfg.StateDir(), "deployments", "dev", "web")
	killSupervised(t, dir)
	st, err = w.d.Status(t.Context(), "dev")
	if err != nil || len(st.Drift) == 0 || st.Units[0].State == deploy.UnitRunning {
		t.Fatalf("status after the unit died: %+v %v", st, err)
	}
	// Deploying again brings it back.
	if p, _ := w.d.Plan(t.Context(), "dev", deploy.PlanOptions{}); p.Units[0].Action != deploy.ActionStart {
		t.Errorf("plan after the unit died: %+v", p.Units[0])
	}
	if _, err := w.deploy(t, "dev", deploy.PlanOptions{}); err != nil || w.version(t, "dev") != "1.0" {
		t.Errorf("redeploy: %v, answering %s", err, w.version(t, "dev"))
	}
}

// Personal deployments come from a template, are recorded with owner and
// expiry, and are refused once expired.
func TestPersonalDeployment(t *testing.T) {
	w := newWorld(t)
	w.release(t, "1.0")
	if _, err := w.deploy(t, "sandbox", deploy.PlanOptions{}); err == nil || !strings.Contains(err.Error(), "is a template") {
		t.Errorf("deploying the template: %v", err)
	}
	if _, err := w.d.Plan(t.Context(), "", deploy.PlanOptions{New: "dev", From: "sandbox"}); err == nil {
		t.Error("a personal deployment may take a name kiln.yaml uses")
	}
	if _, err := w.d.Plan(t.Context(), "", deploy.PlanOptions{New: "alice", From: "dev"}); err == nil {
		t.Error("a personal deployment may come from a non-template")
	}
	if _, err := w.deploy(t, "", deploy.PlanOptions{New: "alice", From: "sandbox"}); err != nil {
		t.Fatal(err)
	}
	r := w.record(t, "alice")
	if r.Template != "sandbox" || r.Owner != "tester" || !r.Expires.Equal(monday10.Add(48*time.Hour)) || w.version(t, "alice") != "1.0" {
		t.Errorf("alice: template %q owner %q expires %v", r.Template, r.Owner, r.Expires)
	}
	list, err := w.d.List()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, e := range list {
		kinds[e.Name] = e.Kind
	}
	if kinds["alice"] != "personal" || kinds["sandbox"] != "template" || kinds["dev"] != "deployment" {
		t.Errorf("list kinds %v", kinds)
	}
	w.clock.advance(49 * time.Hour)
	if p, err := w.d.Plan(t.Context(), "alice", deploy.PlanOptions{}); err != nil || len(p.Refused) == 0 || !strings.Contains(p.Refused[0], "expired") {
		t.Errorf("plan of an expired deployment: %+v %v", p, err)
	}
}

// A deploy interrupted after its hook ran resumes its run: the units are
// left as they are and the hook, done by the journal's account, is not
// run again.
func TestResumeSkipsDoneHooks(t *testing.T) {
	w := newWorld(t)
	w.release(t, "1.0")
	crashed := false
	w.d.Hook = func(event string) {
		if strings.HasPrefix(event, "end hook post_deploy[0] smoke") && !crashed {
			crashed = true
			panic("crash")
		}
	}
	func() {
		defer func() { recover() }()
		w.deploy(t, "dev", deploy.PlanOptions{})
	}()
	if !crashed {
		t.Fatal("the deploy never reached the hook")
	}
	r := w.record(t, "dev")
	if r.State != record.StateDeploying || r.Run == "" {
		t.Fatalf("record after the crash: %s run %q", r.State, r.Run)
	}
	rep, err := w.deploy(t, "dev", deploy.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Run != r.Run || len(rep.Hooks) != 1 || !rep.Hooks[0].Skipped || rep.Units[0].Action != deploy.ActionNone {
		t.Errorf("resumed: run %s (was %s), hooks %+v, units %+v", rep.Run, r.Run, rep.Hooks, rep.Units)
	}
	if log, _ := os.ReadFile(filepath.Join(w.dir, "hook.log")); strings.Count(string(log), "\n") != 1 {
		t.Errorf("the hook ran %d times", strings.Count(string(log), "\n"))
	}
	if w.record(t, "dev").State != record.StateDeployed {
		t.Error("not deployed after the resume")
	}
}
