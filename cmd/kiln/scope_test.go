package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/journal"
)

// TestDeletionIsScopedToTheProjectLocal: project demo shares its store
// with project team-b, with another checkout's use case and with images an
// older kiln made (no kiln:project tag). cleanup --orphans --force, prune
// and drift act on demo's own images only; adopt makes the legacy ones
// demo's, with a journal record, after which cleanup takes them.
func TestDeletionIsScopedToTheProjectLocal(t *testing.T) {
	w := newLocalWorld(t, 50)
	old := time.Now().Add(-3 * time.Hour)
	rel := w.release(t, "sandbox", "", "latest", old)
	for region, img := range rel.images {
		if img.Tags[cloud.TagProject] != "demo" {
			t.Fatalf("a released copy in %s is not tagged %s=demo: %v", region, cloud.TagProject, img.Tags)
		}
	}
	ours := w.leftovers(t, "kiln-20260101T000000Z-0c0c0c", 3, old, nil)
	teamB := w.leftovers(t, "kiln-20260101T000000Z-0d0d0d", 3, old, map[string]string{cloud.TagProject: "team-b"})
	otherUC := w.leftovers(t, "kiln-20260101T000000Z-0e0e0e", 3, old, map[string]string{cloud.TagUseCase: "web"})
	legacyTags := withTags(releaseTags("kiln-20260101T000000Z-0f0f0f", "sandbox", "x86_64"), nil)
	delete(legacyTags, cloud.TagProject)
	var legacy []cloud.Image
	for _, r := range localRegions {
		legacy = append(legacy, w.importImage(t, r, "sandbox-x86_64-legacy", legacyTags, old))
	}
	noRun := withTags(releaseTags("x", "sandbox", "x86_64"), nil)
	delete(noRun, cloud.TagAssetID)
	unidentified := []cloud.Image{w.importImage(t, "local-b", "sandbox-by-hand", noRun, old)}
	retained := w.leftovers(t, "kiln-20260101T000000Z-1c1c1c", 1, old, map[string]string{cloud.TagRetain: "TRUE"})
	kept := [][]cloud.Image{teamB, otherUC, legacy, unidentified, retained}

	// drift calls only demo's unreferenced images orphans.
	rep, _ := driftJSON(t, w.kiln)
	var want []string
	for _, img := range slices.Concat(ours, unidentified, retained) {
		want = append(want, img.ID)
	}
	slices.Sort(want)
	if got := orphanIDs(rep); !slices.Equal(got, want) {
		t.Errorf("drift orphans %v, want demo's %v", got, want)
	}

	out, stderr, code := w.kiln(t, "cleanup", "--orphans", "--apply", "--force-recent", "--yes", "-o", "json")
	_, items := planOf(t, out)
	if code != 0 || w.present(t, ours) != 0 {
		t.Fatalf("cleanup --orphans: exit %d, %d of demo's orphans left\n%s%s", code, w.present(t, ours), out, stderr)
	}
	for i, imgs := range kept {
		if n := w.present(t, imgs); n != len(imgs) {
			t.Errorf("group %d: cleanup deleted %d of %d images that are not demo's to delete", i, len(imgs)-n, len(imgs))
		}
	}
	for _, c := range []struct {
		img    cloud.Image
		action assets.Action
		reason string
	}{
		{teamB[0], assets.Foreign, "another project's (kiln:project=team-b)"},
		{otherUC[0], assets.Foreign, `use case "web" is not in this kiln.yaml`},
		{legacy[0], assets.Foreign, "no kiln:project tag"},
		{unidentified[0], assets.Protect, "without kiln:asset-id"},
		{retained[0], assets.Retain, "kiln:retain=TRUE"},
	} {
		if it := items[c.img.ID]; it.Action != c.action || !strings.Contains(it.Reason, c.reason) {
			t.Errorf("%s: %s (%s), want %s (%s)", c.img.Name, it.Action, it.Reason, c.action, c.reason)
		}
	}

	// prune ranks and deletes demo's released images only.
	out, stderr, code = w.kiln(t, "prune", "--keep", "1", "--apply", "--yes")
	if code != 0 {
		t.Fatalf("prune: exit %d\n%s%s", code, out, stderr)
	}
	for i, imgs := range kept {
		if n := w.present(t, imgs); n != len(imgs) {
			t.Errorf("group %d: prune deleted %d of %d images that are not demo's", i, len(imgs)-n, len(imgs))
		}
	}

	// adopt: a plan first, then the legacy images become demo's.
	out, stderr, code = w.kiln(t, "adopt")
	if code != 0 || strings.Count(out, "adopt ") != len(legacy) || !strings.Contains(stderr, "rerun with --apply") {
		t.Fatalf("adopt plan: exit %d\n%s%s", code, out, stderr)
	}
	for _, img := range legacy {
		if w.tagsOf(t, img)[cloud.TagProject] != "" {
			t.Fatal("the adopt plan tagged an image")
		}
	}
	out, stderr, code = w.kiln(t, "adopt", "--apply")
	if code != 0 {
		t.Fatalf("adopt --apply: exit %d\n%s%s", code, out, stderr)
	}
	for _, img := range legacy {
		if got := w.tagsOf(t, img)[cloud.TagProject]; got != "demo" {
			t.Errorf("adopted image %s: %s=%q", img.ID, cloud.TagProject, got)
		}
	}
	for _, img := range teamB {
		if got := w.tagsOf(t, img)[cloud.TagProject]; got != "team-b" {
			t.Errorf("adopt changed team-b's image %s: %s=%q", img.ID, cloud.TagProject, got)
		}
	}
	j, err := journal.Open(journalPath(w.config(t)))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := j.Events(t.Context(), "adopt")
	j.Close()
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Detail, legacy[0].ID) {
		t.Errorf("journal adopt events %+v: %v", evs, err)
	}
	if _, _, code := w.kiln(t, "cleanup", "--orphans", "--apply", "--yes"); code != 0 || w.present(t, legacy) != 0 {
		t.Errorf("cleanup after adoption: exit %d, %d of the adopted orphans left", code, w.present(t, legacy))
	}
	if n := w.present(t, teamB); n != len(teamB) {
		t.Errorf("team-b lost %d images", len(teamB)-n)
	}
}

// tagsOf reads an image's tags from the store directly.
func (w *localWorld) tagsOf(t *testing.T, img cloud.Image) map[string]string {
	t.Helper()
	got, err := w.store(t, time.Now()).Image(t.Context(), img.Region, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got.Tags
}
