package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
)

func TestPruneLocal(t *testing.T) {
	w := newLocalWorld(t, 50)
	now := time.Now().UTC()
	ago := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }
	// sandbox: r1 is still stable's, r5 is latest's; r2..r4 are old.
	r1 := w.release(t, "sandbox", "", "stable", ago(10))
	r2 := w.release(t, "sandbox", "", "latest", ago(9))
	r3 := w.release(t, "sandbox", "", "latest", ago(8))
	r4 := w.release(t, "sandbox", "", "latest", ago(7))
	r5 := w.release(t, "sandbox", "", "latest", ago(6))
	// runner: three x86_64 releases and one arm64, counted apart.
	x1 := w.release(t, "runner", "x86_64", "latest", ago(9))
	x2 := w.release(t, "runner", "x86_64", "latest", ago(8))
	x3 := w.release(t, "runner", "x86_64", "latest", ago(7))
	a1 := w.release(t, "runner", "arm64", "latest", ago(12))
	// r3 is kept in local-c by a tag.
	if err := w.store(t, now).TagImage(t.Context(), "local-c", r3.images["local-c"].ID, map[string]string{cloud.TagRetain: "true"}); err != nil {
		t.Fatal(err)
	}
	// A build candidate of an unpublished run is cleanup's business, not
	// prune's.
	cand := w.importImage(t, "local-a", "sandbox-x86_64-candidate", withTags(releaseTags("kiln-20260101T000000Z-9a9b9c", "sandbox", "x86_64"),
		map[string]string{cloud.TagPhase: cloud.PhaseBuild}), ago(20))

	if _, stderr, code := w.kiln(t, "prune", "--keep", "0"); code != 2 || !strings.Contains(stderr, "--keep 0") {
		t.Fatalf("--keep 0: exit %d: %s", code, stderr)
	}

	// The plan: per use case, architecture and region the newest two, what
	// a manifest references and what is tagged to be retained stay.
	out, stderr, code := w.kiln(t, "prune", "--keep", "2", "-o", "json")
	rep, items := planOf(t, out)
	if code != 0 || rep.Schema != "kiln.prune/v1" || rep.Applied || !strings.Contains(stderr, "nothing was changed") {
		t.Fatalf("prune plan: exit %d\n%s%s", code, out, stderr)
	}
	check := func(what string, rel released, action assets.Action, reason string) {
		t.Helper()
		for region, img := range rel.images {
			it, ok := items[img.ID]
			if what == "r3" && region == "local-c" {
				if it.Action != assets.Retain {
					t.Errorf("r3 in local-c: %s (%s), want retain", it.Action, it.Reason)
				}
				continue
			}
			if !ok || it.Action != action || !strings.HasPrefix(it.Reason, reason) {
				t.Errorf("%s in %s (%s): %s (%s), want %s (%s...)", what, region, img.ID, it.Action, it.Reason, action, reason)
			}
		}
	}
	check("r5", r5, assets.Protect, "retention (newest 1 of 2)")
	check("r4", r4, assets.Protect, "retention (newest 2 of 2)")
	check("r3", r3, assets.Delete, "")
	check("r2", r2, assets.Delete, "")
	check("r1", r1, assets.Protect, "referenced by manifests/stable.json")
	check("x3", x3, assets.Protect, "retention (newest 1 of 2)")
	check("x2", x2, assets.Protect, "retention (newest 2 of 2)")
	check("x1", x1, assets.Delete, "")
	check("a1", a1, assets.Protect, "retention (newest 1 of 2)")
	if _, ok := items[cand.ID]; ok {
		t.Errorf("prune plans for a build candidate")
	}
	if rep.Summary["delete"] != 2+3+2 {
		t.Errorf("plan deletes %d, want 7", rep.Summary["delete"])
	}

	// --older-than 8h30m: r2 and x1 (9h old) go, r3 (8h old) stays.
	out, stderr, code = w.kiln(t, "prune", "--keep", "2", "--older-than", "8h30m", "--apply", "-o", "json")
	rep, items = planOf(t, out)
	if code != 0 || !rep.Applied {
		t.Fatalf("prune --older-than: exit %d\n%s%s", code, out, stderr)
	}
	for _, img := range r3.images {
		if img.Region == "local-c" {
			continue
		}
		if it := items[img.ID]; it.Action != assets.Skip || it.Reason != "younger than --older-than 8h30m0s" {
			t.Errorf("r3 %s: %s (%s)", img.Region, it.Action, it.Reason)
		}
	}
	var deleted []string
	for _, r := range rep.Results {
		if r.Outcome == assets.Deleted {
			deleted = append(deleted, r.Asset.ID)
		}
	}
	slices.Sort(deleted)
	if want := idsOf(r2, x1); !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	for _, rel := range []released{r2, x1} {
		for region, img := range rel.images {
			if w.exists(t, region, img.ID) {
				t.Errorf("prune reported %s %s deleted, but it is there", region, img.ID)
			}
		}
	}

	// Without the age limit the rest goes; what stays is exactly the kept.
	if out, stderr, code := w.kiln(t, "prune", "--keep", "2", "--apply"); code != 0 {
		t.Fatalf("prune --apply: exit %d\n%s%s", code, out, stderr)
	}
	for _, c := range []struct {
		rel  released
		kept int
	}{{r1, 3}, {r2, 0}, {r3, 1}, {r4, 3}, {r5, 3}, {x1, 0}, {x2, 2}, {x3, 2}, {a1, 2}} {
		n := 0
		for region, img := range c.rel.images {
			if w.exists(t, region, img.ID) {
				n++
			}
		}
		if n != c.kept {
			t.Errorf("run %s: %d images left, want %d", c.rel.run, n, c.kept)
		}
	}
	if !w.exists(t, "local-a", cand.ID) {
		t.Error("prune deleted a build candidate")
	}
	out, _, code = w.kiln(t, "prune", "--keep", "2")
	if code != 0 || strings.Contains(out, "delete ") {
		t.Fatalf("prune after prune: exit %d\n%s", code, out)
	}
	// drift agrees: nothing referenced went missing.
	if rep, code := driftJSON(t, w.kiln); code != 0 || rep.Summary.Drifted["missing"] != 0 {
		t.Fatalf("drift after prune: exit %d %+v", code, rep.Summary)
	}
}
