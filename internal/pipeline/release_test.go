package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/journal"
)

// deferring is the test backend with the abilities of one that hands back
// the removal of temporary resources (as aws does). The build's cleanup
// cannot finish before the boot test has run: a release that waited for
// it before testing would hang.
type deferring struct {
	*backend
	cleanupErr error
	testRan    chan struct{} // closed by the boot test
	cleanedUp  atomic.Bool   // the build's cleanup has returned
	waited     atomic.Bool   // the test instance's wait has returned
	early      atomic.Int32  // launch permissions set before the cleanup returned
}

func newDeferring(b *backend) *deferring {
	return &deferring{backend: b, testRan: make(chan struct{})}
}

func (d *deferring) BuildDeferCleanup(ctx context.Context, in cloud.BuildInput) (cloud.Image, func(context.Context) error, error) {
	img, err := d.backend.Build(ctx, in)
	if err != nil {
		return img, nil, err
	}
	return img, func(ctx context.Context) error {
		select {
		case <-d.testRan:
		case <-ctx.Done():
			return ctx.Err()
		}
		d.cleanedUp.Store(true)
		return d.cleanupErr
	}, nil
}

func (d *deferring) TestImageDeferCleanup(ctx context.Context, in cloud.TestInput) (cloud.TestResult, func(context.Context) error, error) {
	res, err := d.backend.TestImage(ctx, in)
	close(d.testRan)
	return res, func(context.Context) error { d.waited.Store(true); return nil }, err
}

func (d *deferring) SetLaunchPermissions(ctx context.Context, region, id string, p cloud.LaunchPermissions) error {
	if !d.cleanedUp.Load() {
		d.early.Add(1)
	}
	return d.backend.SetLaunchPermissions(ctx, region, id, p)
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// Release tests while the build's temporary resources are being removed,
// makes nothing public before that is done, and does not return before
// the background work has.
func TestReleaseOverlapsCleanup(t *testing.T) {
	w := newWorld(t, "", "0s")
	d := newDeferring(w.b)
	w.p.Backend = d
	r := w.newRun(t)
	rep, err := w.p.Release(withTimeout(t, 30*time.Second), r, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if !d.cleanedUp.Load() || !d.waited.Load() {
		t.Errorf("Release returned before its background work: cleanup %v, test wait %v", d.cleanedUp.Load(), d.waited.Load())
	}
	if n := d.early.Load(); n != 0 {
		t.Errorf("%d images were made public before the build's resources were removed", n)
	}
	m, _ := channel.Load(w.cfg, "latest")
	if len(m["sandbox"]) != 3 || !rep.Publish.CandidateGone || len(rep.Replicate.Regions) != 3 || len(rep.Publish.Regions) != 3 {
		t.Errorf("manifest %v, report %+v %+v", m, rep.Replicate, rep.Publish)
	}
	_, steps, err := w.j.Run(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range steps {
		names[s.Phase+" "+s.Name] = true
		if s.State != journal.StepSucceeded {
			t.Errorf("step %s %s %s: %s", s.Phase, s.Name, s.Region, s.State)
		}
	}
	for _, want := range []string{"build remove temporary resources", "test remove instance"} {
		if !names[want] {
			t.Errorf("no journal step %q: %v", want, names)
		}
	}
}

// When removing the build's resources fails, nothing is made public, no
// manifest is written, and the release says why.
func TestReleaseCleanupFailureHoldsBackPublishing(t *testing.T) {
	w := newWorld(t, "", "0s")
	d := newDeferring(w.b)
	d.cleanupErr = errors.New("security group still in use")
	w.p.Backend = d
	r := w.newRun(t)
	_, err := w.p.Release(withTimeout(t, 30*time.Second), r, "latest")
	if err == nil || !strings.Contains(err.Error(), "security group still in use") || !strings.Contains(err.Error(), "nothing was made public") {
		t.Fatalf("Release with a failing cleanup: %v", err)
	}
	ctx := t.Context()
	assertNothingPublished(t, w, r)
	if _, err := w.p.Candidate(ctx, r); err != nil {
		t.Errorf("the candidate is gone after a failed release: %v", err)
	}
	if run, _, _ := w.j.Run(ctx, r.ID); run.State != journal.RunFailed {
		t.Errorf("journal run state %s, want failed", run.State)
	}
}

// Failed tests end the release as a finding, after the background work.
func TestReleaseFailedTestWaitsForCleanup(t *testing.T) {
	w := newWorld(t, "", "0s")
	w.b.testResult = cloud.TestResult{Passed: false, Reason: "FAIL tests/boot.sh 1"}
	d := newDeferring(w.b)
	w.p.Backend = d
	r := w.newRun(t)
	_, err := w.p.Release(withTimeout(t, 30*time.Second), r, "latest")
	var tf *TestFailedError
	if !errors.As(err, &tf) {
		t.Fatalf("Release with failing tests: %v", err)
	}
	if !d.cleanedUp.Load() {
		t.Error("Release returned before the build's resources were removed")
	}
	for _, region := range w.cfg.Regions {
		if copies, _ := w.p.Copies(t.Context(), r, region); len(copies) != 0 {
			t.Errorf("%s: %d copies of a run that failed its tests", region, len(copies))
		}
	}
}

// slowCopy holds one region's copy until another region's image has been
// made public.
type slowCopy struct {
	*backend
	slow, first string
	once        sync.Once
	public      chan struct{}
}

func (s *slowCopy) CopyImage(ctx context.Context, in cloud.CopyInput) (cloud.Image, error) {
	if in.Region == s.slow {
		select {
		case <-s.public:
		case <-ctx.Done():
			return cloud.Image{}, ctx.Err()
		}
	}
	return s.backend.CopyImage(ctx, in)
}

func (s *slowCopy) SetLaunchPermissions(ctx context.Context, region, id string, p cloud.LaunchPermissions) error {
	err := s.backend.SetLaunchPermissions(ctx, region, id, p)
	if region == s.first && err == nil {
		s.once.Do(func() { close(s.public) })
	}
	return err
}

// A region is published as soon as its copy is there, without waiting for
// the slowest region's copy; the manifest still waits for all of them.
func TestReleasePublishesRegionsAsTheirCopiesArrive(t *testing.T) {
	w := newWorld(t, "", "0s")
	w.p.Concurrency = 3
	s := &slowCopy{backend: w.b, slow: "local-c", first: "local-a", public: make(chan struct{})}
	w.p.Backend = s
	r := w.newRun(t)
	if _, err := w.p.Release(withTimeout(t, 30*time.Second), r, "latest"); err != nil {
		t.Fatalf("Release (local-c copies only after local-a is public): %v", err)
	}
	m, _ := channel.Load(w.cfg, "latest")
	for _, region := range w.cfg.Regions {
		if e, ok := m.Get("sandbox", region); !ok || !e.Public {
			t.Errorf("%s: manifest entry %+v, %v", region, e, ok)
		}
	}
}

// A region whose copy fails leaves the manifest unwritten and the
// candidate in place; the same release run again finishes the job.
func TestReleaseResumesAfterAFailedCopy(t *testing.T) {
	w := newWorld(t, "", "0s")
	w.b.failCopyTo["local-b"] = cloud.Mark(errors.New("snapshot quota"), cloud.ErrQuota)
	ctx := t.Context()
	r := w.newRun(t)
	_, err := w.p.Release(ctx, r, "latest")
	var re *RegionsError
	if !errors.As(err, &re) || re.Phase != cloud.PhaseReplicate || re.Errors["local-b"] == nil {
		t.Fatalf("Release with local-b failing: %v", err)
	}
	if m, _ := channel.Load(w.cfg, "latest"); len(m) != 0 {
		t.Fatalf("manifest written with a region missing: %v", m)
	}
	if _, err := w.p.Candidate(ctx, r); err != nil {
		t.Fatalf("candidate gone with a region missing: %v", err)
	}
	delete(w.b.failCopyTo, "local-b")
	if _, err := w.p.Release(ctx, r, "latest"); err != nil {
		t.Fatal(err)
	}
	m, _ := channel.Load(w.cfg, "latest")
	for _, region := range w.cfg.Regions {
		imgs, _ := w.b.ListImages(ctx, region, cloud.Filter{Tags: map[string]string{cloud.TagAssetID: r.ID}})
		e, ok := m.Get("sandbox", region)
		if len(imgs) != 1 || !ok || e.ID != imgs[0].ID {
			t.Errorf("%s: %d images of the run, manifest entry %+v", region, len(imgs), e)
		}
	}
	if w.b.tests != 1 {
		t.Errorf("the resumed release tested %d times, want once: the candidate had passed", w.b.tests)
	}
}

// lookCounter counts the look-ups of copies (images of phase replicate).
type lookCounter struct {
	*backend
	looks atomic.Int32
}

func (l *lookCounter) ListImages(ctx context.Context, region string, f cloud.Filter) ([]cloud.Image, error) {
	if f.Tags[cloud.TagPhase] == cloud.PhaseReplicate {
		l.looks.Add(1)
	}
	return l.backend.ListImages(ctx, region, f)
}

// A run NewRun has just made is released without looking for copies of
// it; once anything has been done for the run, release looks everywhere.
func TestReleaseLooksOnlyForRunsThatMayHaveSomething(t *testing.T) {
	w := newWorld(t, "", "0s")
	l := &lookCounter{backend: w.b}
	w.p.Backend = l
	ctx := t.Context()
	if _, err := w.p.Release(ctx, w.newRun(t), "latest"); err != nil {
		t.Fatal(err)
	}
	if n := l.looks.Load(); n != 0 {
		t.Errorf("a new run's release looked for copies %d times", n)
	}
	r := w.newRun(t)
	if _, err := w.p.Build(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := w.p.Release(ctx, r, "latest"); err != nil {
		t.Fatal(err)
	}
	if n, want := l.looks.Load(), int32(len(w.cfg.Regions)); n != want {
		t.Errorf("release of a built run looked for copies %d times, want once per region (%d)", n, want)
	}
}
