package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/lockfile"
	"github.com/kiln-images/kiln/internal/pipeline"
)

// leftovers makes n kiln-managed images of a run this machine's journal
// does not know, one per region in turn, as made at at, and returns them.
func (w *localWorld) leftovers(t *testing.T, run string, n int, at time.Time, extra map[string]string) []cloud.Image {
	t.Helper()
	var imgs []cloud.Image
	for i := range n {
		region := localRegions[i%len(localRegions)]
		imgs = append(imgs, w.importImage(t, region, "sandbox-x86_64-"+run, withTags(releaseTags(run, "sandbox", "x86_64"), extra), at))
	}
	return imgs
}

// present returns how many of imgs are still in the store.
func (w *localWorld) present(t *testing.T, imgs []cloud.Image) int {
	t.Helper()
	n := 0
	for _, img := range imgs {
		if w.exists(t, img.Region, img.ID) {
			n++
		}
	}
	return n
}

// snapshot lists every image of every region, for checking that a command
// changed nothing at all.
func (w *localWorld) snapshot(t *testing.T) []cloud.Image {
	t.Helper()
	store := w.store(t, time.Now())
	var all []cloud.Image
	for _, r := range localRegions {
		imgs, err := store.ListImages(t.Context(), r, cloud.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, imgs...)
	}
	return all
}

func sameImages(a, b []cloud.Image) bool {
	return slices.EqualFunc(a, b, func(x, y cloud.Image) bool {
		return x.ID == y.ID && x.Region == y.Region && x.Public == y.Public && x.Deprecation.Equal(y.Deprecation) &&
			x.SHA256 == y.SHA256 && len(x.Tags) == len(y.Tags)
	})
}

func TestCleanupTouchesOnlyManagedLocal(t *testing.T) {
	w := newLocalWorld(t, 50)
	old := time.Now().Add(-3 * time.Hour)
	run := "kiln-20260101T000000Z-0a0b0c"
	// Someone else's images that happen to carry a kiln:asset-id tag.
	foreign := []cloud.Image{
		w.importImage(t, "local-a", "theirs-1", map[string]string{cloud.TagAssetID: run, cloud.TagPhase: cloud.PhaseReplicate}, old),
		w.importImage(t, "local-b", "theirs-2", map[string]string{cloud.TagAssetID: run, cloud.TagManaged: "false"}, old),
	}
	for _, args := range [][]string{
		{"cleanup", "--run", run, "--apply", "--force-recent", "--yes"},
		{"cleanup", "--orphans", "--apply", "--force-recent", "--yes"},
		{"prune", "--keep", "1", "--apply", "--yes"},
	} {
		out, stderr, code := w.kiln(t, args...)
		if code != 0 || !strings.HasPrefix(out, "nothing to clean up") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, stderr)
		}
	}
	if n := w.present(t, foreign); n != len(foreign) {
		t.Fatalf("%d of %d unmanaged images left", n, len(foreign))
	}
	out, _, code := w.kiln(t, "assets", "--run", run, "-o", "json")
	if code != 0 || !strings.Contains(out, `"assets": []`) {
		t.Fatalf("assets lists unmanaged images: exit %d\n%s", code, out)
	}
}

func TestCleanupKeepsReferencedAndRetainedLocal(t *testing.T) {
	w := newLocalWorld(t, 50)
	now := time.Now().UTC()
	latest := w.release(t, "sandbox", "", "latest", now.Add(-3*time.Hour))
	stable := w.release(t, "runner", "arm64", "stable", now.Add(-3*time.Hour))
	for _, c := range []struct {
		rel   released
		where string
	}{{latest, "manifests/latest.json"}, {stable, "manifests/stable.json"}} {
		out, stderr, code := w.kiln(t, "cleanup", "--run", c.rel.run, "--apply", "--force-recent", "-o", "json")
		rep, items := planOf(t, out)
		if code != 0 || rep.Summary["protect"] != len(c.rel.images) || rep.Summary["delete"] != 0 {
			t.Fatalf("cleanup of a published run: exit %d\n%s%s", code, out, stderr)
		}
		for region, img := range c.rel.images {
			if it := items[img.ID]; it.Action != assets.Protect || it.Reason != "referenced by "+c.where {
				t.Errorf("%s %s: %s (%s)", region, img.ID, it.Action, it.Reason)
			}
			if !w.exists(t, region, img.ID) {
				t.Errorf("cleanup deleted the published image %s %s", region, img.ID)
			}
		}
	}

	// kiln:retain=true keeps an image of an otherwise deletable run.
	run := "kiln-20260101T000000Z-1a1b1c"
	keep := w.leftovers(t, run, 1, now.Add(-3*time.Hour), map[string]string{cloud.TagRetain: "true"})
	gone := w.leftovers(t, run, 2, now.Add(-3*time.Hour), nil)
	out, stderr, code := w.kiln(t, "cleanup", "--run", run, "--apply", "-o", "json")
	rep, items := planOf(t, out)
	if code != 0 || !rep.Applied {
		t.Fatalf("cleanup with a retained image: exit %d\n%s%s", code, out, stderr)
	}
	if it := items[keep[0].ID]; it.Action != assets.Retain || it.Reason != "kiln:retain=true" {
		t.Errorf("retained image: %s (%s)", it.Action, it.Reason)
	}
	if w.present(t, keep) != 1 || w.present(t, gone) != 0 {
		t.Errorf("after cleanup: retained %d/1, others %d/0", w.present(t, keep), w.present(t, gone))
	}
	for _, r := range rep.Results {
		want := assets.Deleted
		if r.Asset.ID == keep[0].ID {
			want = assets.Retained
		}
		if r.Outcome != want {
			t.Errorf("result for %s: %s, want %s", r.Asset.ID, r.Outcome, want)
		}
	}
}

func TestCleanupSkipsRunsInProgressLocal(t *testing.T) {
	w := newLocalWorld(t, 50)
	now := time.Now().UTC()
	cfg := w.config(t)
	pl := &pipeline.Pipeline{Config: cfg}

	// A run a kiln process on this machine is working on: even --force
	// leaves it alone while the lock is held.
	busy := "kiln-20260101T000000Z-2a2b2c"
	imgs := w.leftovers(t, busy, 2, now.Add(-5*time.Hour), nil)
	unlock, ok, err := lockfile.TryLock(pl.RunLockPath(busy))
	if err != nil || !ok {
		t.Fatalf("take the run lock: %v %v", ok, err)
	}
	out, _, code := w.kiln(t, "cleanup", "--run", busy, "--apply", "--force-recent", "-o", "json")
	_, items := planOf(t, out)
	for _, img := range imgs {
		if it := items[img.ID]; it.Action != assets.Skip || it.Reason != "a kiln process on this machine is working on it" {
			t.Errorf("locked run: %s %s (%s)", img.ID, it.Action, it.Reason)
		}
	}
	// The run's images remain: leftovers, exit 1 (README), not success.
	if code != 1 || w.present(t, imgs) != 2 {
		t.Fatalf("cleanup of a locked run: exit %d, %d of 2 left\n%s", code, w.present(t, imgs), out)
	}
	// Nor does drift call its images orphans.
	if rep, _ := driftJSON(t, w.kiln); rep.Summary.Orphans != 0 {
		t.Errorf("drift reports a locked run's images as orphans: %v", orphanIDs(rep))
	}
	unlock()
	if _, _, code := w.kiln(t, "cleanup", "--run", busy, "--apply"); code != 0 || w.present(t, imgs) != 0 {
		t.Fatalf("cleanup after the lock was released: exit %d, %d left", code, w.present(t, imgs))
	}

	// A run this machine does not know and that was active minutes ago may
	// be in progress elsewhere: skipped, unless --force.
	young := "kiln-20260101T000000Z-3a3b3c"
	imgs = w.leftovers(t, young, 2, now.Add(-10*time.Minute), nil)
	out, _, code = w.kiln(t, "cleanup", "--run", young, "--apply", "-o", "json")
	_, items = planOf(t, out)
	for _, img := range imgs {
		if it := items[img.ID]; it.Action != assets.Skip || !strings.Contains(it.Reason, "may be in progress elsewhere (--force-recent)") {
			t.Errorf("young unknown run: %s %s (%s)", img.ID, it.Action, it.Reason)
		}
	}
	if code != 1 || w.present(t, imgs) != 2 {
		t.Fatalf("cleanup of a young unknown run: exit %d, %d of 2 left", code, w.present(t, imgs))
	}
	if _, _, code := w.kiln(t, "cleanup", "--run", young, "--apply", "--force-recent"); code != 0 || w.present(t, imgs) != 0 {
		t.Fatalf("cleanup --force-recent: exit %d, %d left", code, w.present(t, imgs))
	}

	// An unknown run quiet for over an hour is abandoned; a young run this
	// machine's journal knows, and no process holds, is finished.
	stale := w.leftovers(t, "kiln-20260101T000000Z-4a4b4c", 2, now.Add(-61*time.Minute), nil)
	j, err := journal.Open(journalPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	known := "kiln-20260101T000000Z-5a5b5c"
	if err := j.StartRun(t.Context(), journal.Run{ID: known, UseCase: "sandbox", Arch: "x86_64", Version: "1.0",
		Created: now, Updated: now, State: journal.RunFailed, Phase: cloud.PhaseReplicate}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	finished := w.leftovers(t, known, 2, now.Add(-time.Minute), nil)
	out, stderr, code := w.kiln(t, "cleanup", "--orphans", "--apply", "-o", "json")
	if code != 0 || w.present(t, stale) != 0 || w.present(t, finished) != 0 {
		t.Fatalf("cleanup --orphans: exit %d, stale %d, finished %d left\n%s%s", code, w.present(t, stale), w.present(t, finished), out, stderr)
	}
}

func TestCleanupConfirmAboveLocal(t *testing.T) {
	w := newLocalWorld(t, 2)
	id := "kiln-20260101T000000Z-6a6b6c"
	imgs := w.leftovers(t, id, 3, time.Now().Add(-2*time.Hour), nil)

	// No terminal: a plan above cleanup.confirm_above needs --yes, and
	// nothing is deleted without it, whatever the input says.
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	args := []string{"cleanup", "--run", id, "--apply", "-c", w.cfg}
	for name, stdin := range map[string]io.Reader{"reader": strings.NewReader("yes\n"), "file": devnull} {
		var out, errb bytes.Buffer
		code := run(args, stdin, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "refusing to delete 3 resources (more than cleanup.confirm_above = 2) without confirmation: rerun with --yes") {
			t.Fatalf("%s stdin: exit %d\n%s%s", name, code, out.String(), errb.String())
		}
		if w.present(t, imgs) != 3 {
			t.Fatalf("%s stdin: deleted without confirmation", name)
		}
	}
	// prune goes through the same gate.
	for i := range 4 {
		id := fmt.Sprintf("kiln-20260101T00000%dZ-7a7b7c", i)
		w.importImage(t, "local-a", "sandbox-x86_64-"+id, releaseTags(id, "sandbox", "x86_64"), time.Now().Add(-time.Duration(3+i)*time.Hour))
	}
	before := w.snapshot(t)
	_, stderr, code := w.kiln(t, "prune", "--keep", "1", "--apply")
	if code != 2 || !strings.Contains(stderr, "rerun with --yes") || !sameImages(before, w.snapshot(t)) {
		t.Fatalf("prune above confirm_above: exit %d: %s", code, stderr)
	}
	if _, stderr, code := w.kiln(t, "cleanup", "--run", id, "--apply", "--yes"); code != 0 || w.present(t, imgs) != 0 {
		t.Fatalf("cleanup --yes: exit %d, %d left: %s", code, w.present(t, imgs), stderr)
	}
}

func TestCleanupPlanAndOlderThanLocal(t *testing.T) {
	w := newLocalWorld(t, 50)
	now := time.Now().UTC()
	w.release(t, "sandbox", "", "latest", now.Add(-2*time.Hour))
	run := "kiln-20260101T000000Z-8a8b8c"
	imgs := w.leftovers(t, run, 3, now.Add(-2*time.Hour), nil)
	// A build work directory the run left, recorded in the store.
	work := filepath.Join(t.TempDir(), "build-work")
	if err := os.MkdirAll(filepath.Join(work, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	store := w.store(t, now.Add(-2*time.Hour))
	build := cloud.Asset{Kind: cloud.KindBuild, ID: "build-8a8b8c", Region: "local-a", Tags: releaseTags(run, "sandbox", "x86_64")}
	if err := store.PutAsset(t.Context(), build, work); err != nil {
		t.Fatal(err)
	}

	// Without --apply: a plan, exit 0, nothing changed.
	before := w.snapshot(t)
	out, stderr, code := w.kiln(t, "cleanup", "--orphans")
	if code != 0 || strings.Count(out, "delete ") != 4 || !strings.Contains(stderr, "nothing was changed; rerun with --apply to delete the 4 resource(s)") {
		t.Fatalf("plan: exit %d\n%s%s", code, out, stderr)
	}
	if !sameImages(before, w.snapshot(t)) {
		t.Fatal("a plan changed the store")
	}
	if _, err := os.Stat(work); err != nil {
		t.Fatalf("a plan removed the build directory: %v", err)
	}

	// --older-than: two hours old is younger than 3h.
	out, _, code = w.kiln(t, "cleanup", "--orphans", "--older-than", "3h", "--apply", "-o", "json")
	rep, items := planOf(t, out)
	if code != 0 || rep.Summary["delete"] != 0 || w.present(t, imgs) != 3 {
		t.Fatalf("--older-than 3h: exit %d\n%s", code, out)
	}
	for _, img := range imgs {
		if it := items[img.ID]; it.Action != assets.Skip || it.Reason != "younger than --older-than 3h0m0s" {
			t.Errorf("%s: %s (%s)", img.ID, it.Action, it.Reason)
		}
	}
	out, stderr, code = w.kiln(t, "cleanup", "--orphans", "--older-than", "1h", "--apply", "-o", "json")
	rep, _ = planOf(t, out)
	if code != 0 || !rep.Applied || rep.Unplanned != 0 || w.present(t, imgs) != 0 {
		t.Fatalf("--older-than 1h: exit %d, %d left\n%s%s", code, w.present(t, imgs), out, stderr)
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("build directory still there: %v", err)
	}
	var outcomes []string
	for _, r := range rep.Results {
		outcomes = append(outcomes, string(r.Asset.Kind)+":"+string(r.Outcome))
	}
	slices.Sort(outcomes)
	want := []string{"build:deleted", "image:deleted", "image:deleted", "image:deleted", "image:retained", "image:retained", "image:retained"}
	if !slices.Equal(outcomes, want) {
		t.Errorf("outcomes %v, want %v", outcomes, want)
	}

	// Nothing left to delete: exit 0.
	if out, _, code := w.kiln(t, "cleanup", "--orphans"); code != 0 || strings.Contains(out, "delete ") {
		t.Fatalf("second plan: exit %d\n%s", code, out)
	}
}
