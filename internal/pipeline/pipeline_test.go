package pipeline

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
)

// backend is the real local store with the builder and tester replaced:
// Build imports a small random disk (the real builder is tested in
// local/debimage), TestImage answers what the test says. Everything else —
// copies, tags, permissions, deprecation, the manifest — is the real thing.
type backend struct {
	*local.Backend
	mu         sync.Mutex
	builds     int
	tests      int
	testResult cloud.TestResult
	failCopyTo map[string]error // region -> error CopyImage returns
}

func (b *backend) Build(ctx context.Context, in cloud.BuildInput) (cloud.Image, error) {
	b.mu.Lock()
	b.builds++
	b.mu.Unlock()
	disk := filepath.Join(in.StateDir, "disk-"+in.Token)
	data := make([]byte, 256<<10)
	rand.Read(data)
	if err := os.MkdirAll(in.StateDir, 0o755); err != nil {
		return cloud.Image{}, err
	}
	if err := os.WriteFile(disk, data, 0o644); err != nil {
		return cloud.Image{}, err
	}
	return b.ImportImage(ctx, local.ImportInput{Region: in.Region, Name: in.Name, Arch: in.Arch, Token: in.Token, Tags: in.Tags, Disk: disk})
}

func (b *backend) TestImage(ctx context.Context, in cloud.TestInput) (cloud.TestResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tests++
	return b.testResult, nil
}

func (b *backend) CopyImage(ctx context.Context, in cloud.CopyInput) (cloud.Image, error) {
	b.mu.Lock()
	err := b.failCopyTo[in.Region]
	b.mu.Unlock()
	if err != nil {
		return cloud.Image{}, err
	}
	return b.Backend.CopyImage(ctx, in)
}

const testYAML = `project: demo
regions: [local-a, local-b, local-c]
cost_tag: {key: deployment_name, value: demo}
backend:
  local:
    block_public_access: [%s]
channels:
  latest: {}
  stable: {min_interval: %s}
use_cases:
  sandbox:
    architectures: [x86_64]
    tests: [tests/boot.sh]
    publish: {public: true, accounts: ["111122223333"], deprecate_after: 30d}
`

type world struct {
	p   *Pipeline
	b   *backend
	cfg *config.Config
	j   *journal.Journal
}

func newWorld(t *testing.T, blocked, minInterval string) *world {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tests"), 0o755)
	os.WriteFile(filepath.Join(dir, "tests/boot.sh"), []byte("#!/bin/sh\n"), 0o755)
	cfg, err := config.Parse(filepath.Join(dir, "kiln.yaml"), []byte(fmt.Sprintf(testYAML, blocked, minInterval)), dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := local.New(cfg.Backend.Local, cfg.Backend.Local.Root, cfg.Regions)
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(cfg.StateDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	b := &backend{Backend: store, testResult: cloud.TestResult{Passed: true}, failCopyTo: map[string]error{}}
	return &world{cfg: cfg, b: b, j: j, p: &Pipeline{Config: cfg, Backend: b, Journal: j, Concurrency: 2}}
}

func (w *world) newRun(t *testing.T) Run {
	t.Helper()
	r, err := w.p.NewRun(t.Context(), "sandbox", "", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReleaseEndToEnd(t *testing.T) {
	w := newWorld(t, "", "0s")
	ctx := t.Context()
	r := w.newRun(t)
	rep, err := w.p.Release(ctx, r, "latest")
	if err != nil {
		t.Fatal(err)
	}
	m, err := channel.Load(w.cfg, "latest")
	if err != nil {
		t.Fatal(err)
	}
	wantDep := r.Created.UTC().Add(30 * 24 * time.Hour).Truncate(time.Second)
	var digest string
	for _, region := range w.cfg.Regions {
		copies, err := w.p.Copies(ctx, r, region)
		if err != nil || len(copies) != 1 {
			t.Fatalf("%s: %d copies, %v", region, len(copies), err)
		}
		img := copies[0]
		e, ok := m.Get("sandbox", region)
		if !ok || e.ID != img.ID || e.Name != "sandbox-x86_64-1.0" || !e.Public || e.Architecture != "x86_64" {
			t.Errorf("%s: manifest entry %+v, image %+v", region, e, img)
		}
		if e.DeprecationTime != wantDep.Format(time.RFC3339) || !img.Deprecation.Equal(wantDep) {
			t.Errorf("%s: deprecation %q / %s, want %s", region, e.DeprecationTime, img.Deprecation, wantDep)
		}
		if img.Tags["deployment_name"] != "demo" || img.Tags[cloud.TagAssetID] != r.ID || img.Tags[cloud.TagTest] != cloud.TestPassed ||
			img.Tags["kiln:channel:latest"] != "true" {
			t.Errorf("%s: tags %v", region, img.Tags)
		}
		perms, err := w.b.LaunchPermissions(ctx, region, img.ID)
		if err != nil || !perms.Public || len(perms.Accounts) != 1 || perms.Accounts[0] != "111122223333" {
			t.Errorf("%s: launch permissions %+v, %v", region, perms, err)
		}
		if digest == "" {
			digest = img.SHA256
		} else if img.SHA256 != digest {
			t.Errorf("%s: sha256 %s differs from %s", region, img.SHA256, digest)
		}
	}
	if _, err := w.p.Candidate(ctx, r); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("candidate still there after publish: %v", err)
	}
	if len(rep.Publish.Changes) != 3 {
		t.Errorf("publish changes: %+v", rep.Publish.Changes)
	}
	// The journal has every step, each ended.
	run, steps, err := w.j.Run(ctx, r.ID)
	if err != nil || run.State != journal.RunSucceeded {
		t.Fatalf("journal run %+v: %v", run, err)
	}
	for _, s := range steps {
		if s.State != journal.StepSucceeded {
			t.Errorf("step %s %s %s: %s", s.Phase, s.Name, s.Region, s.State)
		}
	}

	// Running the whole release again changes nothing and makes nothing.
	again, err := w.p.Release(ctx, r, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Publish.Changes) != 0 || w.b.builds != 1 || w.b.tests != 1 {
		t.Errorf("second release: changes %v, builds %d, tests %d", again.Publish.Changes, w.b.builds, w.b.tests)
	}
	for _, region := range w.cfg.Regions {
		imgs, _ := w.b.ListImages(ctx, region, cloud.Filter{Tags: map[string]string{cloud.TagAssetID: r.ID}})
		if len(imgs) != 1 {
			t.Errorf("%s: %d images after a second release, want 1", region, len(imgs))
		}
	}
}

func TestPhasesFromAFreshMachine(t *testing.T) {
	w := newWorld(t, "", "0s")
	ctx := t.Context()
	r := w.newRun(t)
	if _, err := w.p.Build(ctx, r); err != nil {
		t.Fatal(err)
	}
	// Another machine: a new journal, nothing but the run id.
	j2, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	p2 := *w.p
	p2.Journal = j2
	got, err := p2.FindRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.UseCase != r.UseCase || got.Arch != r.Arch || got.Version != r.Version || !got.Created.Equal(r.Created.Truncate(time.Second)) {
		t.Fatalf("FindRun = %+v, want %+v", got, r)
	}
	// FindRun recorded the run in the second machine's journal.
	if jr, _, err := j2.Run(ctx, r.ID); err != nil || jr.UseCase != r.UseCase {
		t.Fatalf("second journal: %+v, %v", jr, err)
	}
	if _, err := p2.Test(ctx, got, false); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Replicate(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Publish(ctx, got, "latest"); err != nil {
		t.Fatal(err)
	}
	unknown := journal.NewAssetID(time.Now())
	var ur *UnknownRunError
	if _, err := p2.FindRun(ctx, unknown); !errors.As(err, &ur) {
		t.Fatalf("FindRun(unknown) = %v", err)
	}
}

func TestNothingUntestedIsReplicatedOrPublished(t *testing.T) {
	w := newWorld(t, "", "0s")
	ctx := t.Context()
	r := w.newRun(t)
	if _, err := w.p.Build(ctx, r); err != nil {
		t.Fatal(err)
	}
	var nt *NotTestedError
	if _, err := w.p.Replicate(ctx, r, nil); !errors.As(err, &nt) {
		t.Fatalf("replicate before test: %v", err)
	}
	w.b.testResult = cloud.TestResult{Passed: false, Reason: "FAIL tests/boot.sh 3"}
	_, err := w.p.Test(ctx, r, false)
	var tf *TestFailedError
	if !errors.As(err, &tf) || !strings.Contains(err.Error(), "FAIL tests/boot.sh 3") {
		t.Fatalf("failing test: %v", err)
	}
	cand, _ := w.p.Candidate(ctx, r)
	if cand.Tags[cloud.TagTest] != cloud.TestFailed {
		t.Fatalf("candidate tag %s = %q", cloud.TagTest, cand.Tags[cloud.TagTest])
	}
	if _, err := w.p.Replicate(ctx, r, nil); !errors.As(err, &nt) || !strings.Contains(err.Error(), "failed its tests") {
		t.Fatalf("replicate after failed test: %v", err)
	}
	if _, err := w.p.Publish(ctx, r, "latest"); err == nil {
		t.Fatal("publish of an untested run succeeded")
	}
	if m, _ := channel.Load(w.cfg, "latest"); len(m) != 0 {
		t.Fatalf("manifest written: %v", m)
	}
}

func TestReplicateReportsEveryRegionAndResumes(t *testing.T) {
	w := newWorld(t, "", "0s")
	ctx := t.Context()
	r := w.newRun(t)
	w.p.Build(ctx, r)
	if _, err := w.p.Test(ctx, r, false); err != nil {
		t.Fatal(err)
	}
	w.b.failCopyTo["local-c"] = cloud.Mark(errors.New("disk full"), cloud.ErrQuota)
	rep, err := w.p.Replicate(ctx, r, nil)
	var re *RegionsError
	if !errors.As(err, &re) || len(re.Errors) != 1 || re.Errors["local-c"] == nil || !strings.Contains(err.Error(), "--region local-c") {
		t.Fatalf("replicate with local-c failing: %v", err)
	}
	states := map[string]string{}
	for _, rr := range rep.Regions {
		states[rr.Region] = rr.State
	}
	if states["local-a"] != "done" || states["local-b"] != "done" || states["local-c"] != "failed" {
		t.Fatalf("region results %v", states)
	}
	if _, err := w.p.Publish(ctx, r, "latest"); err == nil || !strings.Contains(err.Error(), "local-c") {
		t.Fatalf("publish with a region missing: %v", err)
	}
	delete(w.b.failCopyTo, "local-c")
	rep, err = w.p.Replicate(ctx, r, []string{"local-c"})
	if err != nil || len(rep.Regions) != 1 || rep.Regions[0].State != "done" {
		t.Fatalf("replicate --region local-c: %+v, %v", rep.Regions, err)
	}
	rep, err = w.p.Replicate(ctx, r, nil)
	for _, rr := range rep.Regions {
		if rr.State != "existing" {
			t.Errorf("third replicate: %s %s, want existing", rr.Region, rr.State)
		}
	}
	if _, err := w.p.Replicate(ctx, r, []string{"local-x"}); err == nil {
		t.Fatal("replicate to a region that is not a target succeeded")
	}
}

func TestPublishRefusesWhereBlockPublicAccessIsOn(t *testing.T) {
	w := newWorld(t, "local-b", "0s")
	ctx := t.Context()
	r := w.newRun(t)
	_, err := w.p.Release(ctx, r, "latest")
	if !errors.Is(err, cloud.ErrPublicAccessBlocked) || !strings.Contains(err.Error(), "local-b") {
		t.Fatalf("release with block public access in local-b: %v", err)
	}
	assertNothingPublished(t, w, r)
}

// released makes a published run and returns it.
func (w *world) released(t *testing.T) Run {
	t.Helper()
	r := w.newRun(t)
	if _, err := w.p.Release(t.Context(), r, "latest"); err != nil {
		t.Fatal(err)
	}
	return r
}

func gateFailures(rep PromoteReport) []string {
	var out []string
	for _, g := range rep.Gates {
		if !g.Passed {
			out = append(out, g.Name)
		}
	}
	return out
}

func TestPromoteGates(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(t *testing.T, w *world, m manifest.Manifest) time.Time
		gate   string
	}{
		{"complete", func(t *testing.T, w *world, m manifest.Manifest) time.Time {
			channel.Update(t.Context(), w.cfg, "latest", func(m manifest.Manifest) error { delete(m["sandbox"], "local-c"); return nil })
			return time.Time{}
		}, GateComplete},
		{"available", func(t *testing.T, w *world, m manifest.Manifest) time.Time {
			w.b.DeleteImage(t.Context(), "local-b", m["sandbox"]["local-b"].ID)
			return time.Time{}
		}, GateAvailable},
		{"tested", func(t *testing.T, w *world, m manifest.Manifest) time.Time {
			w.b.TagImage(t.Context(), "local-a", m["sandbox"]["local-a"].ID, map[string]string{cloud.TagTest: "failed"})
			return time.Time{}
		}, GateTested},
		{"published", func(t *testing.T, w *world, m manifest.Manifest) time.Time {
			w.b.SetLaunchPermissions(t.Context(), "local-a", m["sandbox"]["local-a"].ID, cloud.LaunchPermissions{Public: true})
			return time.Time{}
		}, GatePublished},
		{"not deprecated", func(t *testing.T, w *world, m manifest.Manifest) time.Time {
			w.b.SetDeprecation(t.Context(), "local-c", m["sandbox"]["local-c"].ID, time.Now().Add(-time.Hour))
			return time.Time{}
		}, GateNotDeprecated},
		{"interval", func(t *testing.T, w *world, m manifest.Manifest) time.Time {
			return time.Now().Add(-time.Hour)
		}, GateInterval},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, "", "1d")
			w.released(t)
			m, _ := channel.Load(w.cfg, "latest")
			last := c.break_(t, w, m)
			rep, err := w.p.Promote(t.Context(), "sandbox", "latest", "stable", last, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := gateFailures(rep); len(got) != 1 || got[0] != c.gate {
				t.Fatalf("failed gates %v, want exactly [%s]: %+v", got, c.gate, rep.Gates)
			}
			if rep.Applied {
				t.Fatal("promotion applied with a failed gate")
			}
			if s, _ := channel.Load(w.cfg, "stable"); len(s) != 0 {
				t.Fatalf("stable written: %v", s)
			}
		})
	}
	t.Run("all pass", func(t *testing.T) {
		w := newWorld(t, "", "1d")
		w.released(t)
		plan, err := w.p.Promote(t.Context(), "sandbox", "latest", "stable", time.Time{}, false, nil)
		if err != nil || !plan.Passed() || plan.Applied || len(plan.Changes) != 3 {
			t.Fatalf("plan: %+v, %v", plan, err)
		}
		if s, _ := channel.Load(w.cfg, "stable"); len(s) != 0 {
			t.Fatal("stable written without apply")
		}
		rep, err := w.p.Promote(t.Context(), "sandbox", "latest", "stable", time.Time{}, true, nil)
		if err != nil || !rep.Applied {
			t.Fatalf("promote: %+v, %v", rep, err)
		}
		latest, _ := channel.Load(w.cfg, "latest")
		stable, _ := channel.Load(w.cfg, "stable")
		if !latest.Equal(stable) {
			t.Fatalf("stable %v != latest %v", stable, latest)
		}
	})
}

func TestRollback(t *testing.T) {
	w := newWorld(t, "", "0s")
	ctx := t.Context()
	w.released(t)
	first, _ := channel.Load(w.cfg, "latest")
	w.released(t)
	second, _ := channel.Load(w.cfg, "latest")
	if first.Equal(second) {
		t.Fatal("two releases wrote the same manifest")
	}
	// The old images went private behind kiln's back; rollback restores
	// their launch permissions and the manifest.
	for region, e := range first["sandbox"] {
		w.b.SetLaunchPermissions(ctx, region, e.ID, cloud.LaunchPermissions{})
	}
	plan, err := w.p.Rollback(ctx, "latest", "v1", first, nil, false)
	if err != nil || plan.Applied || len(plan.Changes) != 3 {
		t.Fatalf("rollback plan: %+v, %v", plan, err)
	}
	if now, _ := channel.Load(w.cfg, "latest"); !now.Equal(second) {
		t.Fatal("rollback without --apply changed the manifest")
	}
	rep, err := w.p.Rollback(ctx, "latest", "v1", first, nil, true)
	if err != nil || !rep.Applied || rep.Reconciled != 3 {
		t.Fatalf("rollback: %+v, %v", rep, err)
	}
	if now, _ := channel.Load(w.cfg, "latest"); !now.Equal(first) {
		t.Fatal("manifest not restored")
	}
	for region, e := range first["sandbox"] {
		if p, _ := w.b.LaunchPermissions(ctx, region, e.ID); !p.Public {
			t.Errorf("%s: %s not public again", region, e.ID)
		}
	}
	// An image the old manifest needs is gone: refused, naming it.
	gone := second["sandbox"]["local-b"].ID
	w.b.DeleteImage(ctx, "local-b", gone)
	_, err = w.p.Rollback(ctx, "latest", "v2", second, nil, true)
	if err == nil || !strings.Contains(err.Error(), gone) {
		t.Fatalf("rollback to a manifest with a deleted image: %v", err)
	}
	if now, _ := channel.Load(w.cfg, "latest"); !now.Equal(first) {
		t.Fatal("refused rollback changed the manifest")
	}
}

// assertNothingPublished fails t if any copy of r is public or the latest
// manifest has entries.
func assertNothingPublished(t *testing.T, w *world, r Run) {
	t.Helper()
	for _, region := range w.cfg.Regions {
		copies, _ := w.p.Copies(t.Context(), r, region)
		for _, c := range copies {
			if c.Public {
				t.Errorf("%s: %s was made public", region, c.ID)
			}
		}
	}
	if m, _ := channel.Load(w.cfg, "latest"); len(m) != 0 {
		t.Fatalf("manifest written: %v", m)
	}
}

// Two runs of a use case in the same second get versions of their own, so
// the second does not collide with the first's image names.
func TestNewRunVersionsInOneSecond(t *testing.T) {
	w := newWorld(t, "", "0s")
	now := time.Date(2026, 12, 4, 22, 15, 0, 0, time.UTC)
	w.p.Now = func() time.Time { return now }
	var versions []string
	for range 3 {
		r, err := w.p.NewRun(t.Context(), "sandbox", "", "")
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, r.Version)
		if jr, _, err := w.j.Run(t.Context(), r.ID); err != nil || jr.Version != r.Version {
			t.Errorf("journal has %q, %v; run has %q", jr.Version, err, r.Version)
		}
	}
	if want := []string{"20261204.221500", "20261204.221500-2", "20261204.221500-3"}; !slices.Equal(versions, want) {
		t.Errorf("versions %v, want %v", versions, want)
	}
	// A version given is the caller's to repeat.
	for range 2 {
		if r, err := w.p.NewRun(t.Context(), "sandbox", "", "1.0"); err != nil || r.Version != "1.0" {
			t.Errorf("--version 1.0: %q, %v", r.Version, err)
		}
	}
}
