package main

import (
	"github.com/kiln-images/kiln/internal/report"

	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/drift"
)

// orphanIDs returns the ids of the images a drift report calls orphans.
func orphanIDs(rep report.Drift) []string {
	var ids []string
	for _, f := range rep.Findings {
		if f.Kind == drift.Orphan {
			ids = append(ids, f.ImageID)
		}
	}
	slices.Sort(ids)
	return ids
}

// idsOf returns the sorted image ids of releases.
func idsOf(rels ...released) []string {
	var ids []string
	for _, r := range rels {
		for _, img := range r.images {
			ids = append(ids, img.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// planOf decodes a cleanup or prune report and maps asset id -> item.
func planOf(t *testing.T, out string) (report.Cleanup, map[string]assets.Item) {
	t.Helper()
	var rep report.Cleanup
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report does not decode: %v\n%s", err, out)
	}
	items := map[string]assets.Item{}
	for _, it := range rep.Plan {
		items[it.Asset.ID] = it
	}
	return rep, items
}

// TestGitRefsLocal: images that only manifests at git tags reference are
// orphans unless --git-refs names those tags; cleanup and prune keep them
// when it does.
func TestGitRefsLocal(t *testing.T) {
	w := newLocalWorld(t, 50)
	now := time.Now().UTC()
	git(t, w.dir, "init", "-q")
	tagged := map[string]released{}
	for i, tag := range []string{"v1.0.0", "v1.1.0", "v2.0.0"} {
		tagged[tag] = w.release(t, "sandbox", "", "latest", now.Add(time.Duration(i-6)*time.Hour))
		git(t, w.dir, "add", "-A")
		git(t, w.dir, "commit", "-qm", "release "+tag)
		git(t, w.dir, "tag", tag)
	}
	// The working tree moved on: a newer release, not tagged yet.
	current := w.release(t, "sandbox", "", "latest", now.Add(-2*time.Hour))
	v1 := idsOf(tagged["v1.0.0"], tagged["v1.1.0"])
	v2 := idsOf(tagged["v2.0.0"])

	for _, c := range []struct {
		refs string
		want []string
	}{
		{"", idsOf(tagged["v1.0.0"], tagged["v1.1.0"], tagged["v2.0.0"])},
		{"v1.*", v2},
		{"v*", nil},
	} {
		args := []string{}
		if c.refs != "" {
			args = append(args, "--git-refs", c.refs)
		}
		rep, code := driftJSON(t, w.kiln, args...)
		if code != 0 || !slices.Equal(orphanIDs(rep), c.want) {
			t.Errorf("drift --git-refs %q: exit %d, orphans %v, want %v", c.refs, code, orphanIDs(rep), c.want)
		}
	}
	// No tag matching is an empty set, as on a young project: no error.
	rep0, code := driftJSON(t, w.kiln, "--git-refs", "v9.*")
	if code != 0 || len(orphanIDs(rep0)) != 9 {
		t.Errorf("--git-refs matching nothing: exit %d, %d orphans, want 0 and 9", code, len(orphanIDs(rep0)))
	}

	// cleanup --orphans without --git-refs protects every tag's images...
	out, stderr, code := w.kiln(t, "cleanup", "--orphans", "-o", "json")
	rep, items := planOf(t, out)
	if code != 0 || rep.Unplanned != 0 {
		t.Fatalf("cleanup --orphans plan: exit %d, %d to delete, want 0 and 0\n%s%s", code, rep.Unplanned, out, stderr)
	}
	for _, id := range append(slices.Clone(v1), v2...) {
		if it := items[id]; it.Action != assets.Protect || !strings.HasPrefix(it.Reason, "referenced by v") {
			t.Errorf("cleanup --orphans (every tag by default): %s is %s (%s), want protected by its tag", id, it.Action, it.Reason)
		}
	}
	// ...unless told to ignore them: then the v1 images would go...
	out, stderr, code = w.kiln(t, "cleanup", "--orphans", "--ignore-git-tags", "-o", "json")
	_, items = planOf(t, out)
	if code != 0 || !strings.Contains(stderr, "nothing was changed; rerun with --apply") {
		t.Fatalf("cleanup --orphans --ignore-git-tags plan: exit %d\n%s%s", code, out, stderr)
	}
	for _, id := range v1 {
		if items[id].Action != assets.Delete {
			t.Errorf("cleanup --orphans --ignore-git-tags: %s is %s (%s), want delete", id, items[id].Action, items[id].Reason)
		}
	}
	// ...and with --git-refs v1.* they are protected, and only v2.0.0's go.
	out, stderr, code = w.kiln(t, "cleanup", "--orphans", "--git-refs", "v1.*", "--apply", "-o", "json")
	rep, items = planOf(t, out)
	if code != 0 || !rep.Applied {
		t.Fatalf("cleanup --orphans --git-refs v1.* --apply: exit %d\n%s%s", code, out, stderr)
	}
	for _, id := range v1 {
		if it := items[id]; it.Action != assets.Protect || !strings.Contains(it.Reason, ":manifests/latest.json") || !strings.HasPrefix(it.Reason, "referenced by v1.") {
			t.Errorf("%s: %s (%s), want protected by a v1 tag", id, it.Action, it.Reason)
		}
	}
	for _, id := range idsOf(current) {
		if it := items[id]; it.Action != assets.Protect || it.Reason != "referenced by manifests/latest.json" {
			t.Errorf("current %s: %s (%s)", id, it.Action, it.Reason)
		}
	}
	deleted := 0
	for _, r := range rep.Results {
		if r.Outcome == assets.Deleted {
			deleted++
			if !slices.Contains(v2, r.Asset.ID) {
				t.Errorf("deleted %s, which is not v2.0.0's", r.Asset.ID)
			}
		}
	}
	if deleted != len(v2) {
		t.Errorf("deleted %d, want %d", deleted, len(v2))
	}
	for _, rel := range []released{tagged["v1.0.0"], tagged["v1.1.0"], current} {
		for region, img := range rel.images {
			if !w.exists(t, region, img.ID) {
				t.Errorf("%s %s was deleted", region, img.ID)
			}
		}
	}
	for region, img := range tagged["v2.0.0"].images {
		if w.exists(t, region, img.ID) {
			t.Errorf("%s %s is still there", region, img.ID)
		}
	}

	// prune --keep 1: the current release is the newest; the v1 images are
	// kept only while --git-refs names their tags.
	out, _, code = w.kiln(t, "prune", "--keep", "1", "--git-refs", "v1.*", "--apply", "-o", "json")
	rep, items = planOf(t, out)
	if code != 0 || rep.Summary["delete"] != 0 {
		t.Fatalf("prune --keep 1 --git-refs v1.*: exit %d\n%s", code, out)
	}
	for _, id := range v1 {
		if !strings.HasPrefix(items[id].Reason, "referenced by v1.") {
			t.Errorf("prune: %s is %s (%s)", id, items[id].Action, items[id].Reason)
		}
	}
	out, _, code = w.kiln(t, "prune", "--keep", "1", "--apply", "-o", "json")
	rep, _ = planOf(t, out)
	if code != 0 || rep.Summary["delete"] != len(v1) {
		t.Fatalf("prune --keep 1: exit %d\n%s", code, out)
	}
	for _, rel := range []released{tagged["v1.0.0"], tagged["v1.1.0"]} {
		for region, img := range rel.images {
			if w.exists(t, region, img.ID) {
				t.Errorf("prune left %s %s", region, img.ID)
			}
		}
	}
	for region, img := range current.images {
		if !w.exists(t, region, img.ID) {
			t.Errorf("prune deleted the current image %s %s", region, img.ID)
		}
	}
}

func TestGitRefsAWS(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	if err := os.WriteFile(filepath.Join(w.dir, ".gitignore"), []byte(".kiln/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, w.dir, "init", "-q")
	tagged := map[string]released{}
	for _, tag := range []string{"v1.0.0", "v1.1.0", "v2.0.0"} {
		tagged[tag] = w.release(t, "latest")
		git(t, w.dir, "add", "-A")
		git(t, w.dir, "commit", "-qm", "release "+tag)
		git(t, w.dir, "tag", tag)
	}
	current := w.release(t, "latest")
	v1 := idsOf(tagged["v1.0.0"], tagged["v1.1.0"])
	v2 := idsOf(tagged["v2.0.0"])

	rep, code := driftJSON(t, w.kiln)
	if all := idsOf(tagged["v1.0.0"], tagged["v1.1.0"], tagged["v2.0.0"]); code != 0 || !slices.Equal(orphanIDs(rep), all) {
		t.Errorf("drift: exit %d, orphans %v, want %v", code, orphanIDs(rep), all)
	}
	rep, code = driftJSON(t, w.kiln, "--git-refs", "v1.*")
	if code != 0 || !slices.Equal(orphanIDs(rep), v2) {
		t.Errorf("drift --git-refs v1.*: exit %d, orphans %v, want %v", code, orphanIDs(rep), v2)
	}

	out, stderr, code := w.kiln(t, "cleanup", "--orphans", "--git-refs", "v1.*", "--apply", "-o", "json")
	crep, items := planOf(t, out)
	if code != 0 || !crep.Applied {
		t.Fatalf("cleanup --orphans --git-refs v1.*: exit %d\n%s%s", code, out, stderr)
	}
	for _, id := range v1 {
		if it := items[id]; it.Action != assets.Protect || !strings.HasPrefix(it.Reason, "referenced by v1.") {
			t.Errorf("%s: %s (%s)", id, it.Action, it.Reason)
		}
	}
	for tag, rel := range tagged {
		for region, img := range rel.images {
			if _, ok := w.image(t, region, img.ID); ok != (tag != "v2.0.0") {
				t.Errorf("%s image %s %s: present %v", tag, region, img.ID, ok)
			}
		}
	}

	out, _, code = w.kiln(t, "prune", "--keep", "1", "--git-refs", "v1.*", "-o", "json")
	if crep, _ := planOf(t, out); code != 0 || crep.Summary["delete"] != 0 {
		t.Fatalf("prune --git-refs v1.*: exit %d\n%s", code, out)
	}
	out, _, code = w.kiln(t, "prune", "--keep", "1", "--apply", "-o", "json")
	if crep, _ := planOf(t, out); code != 0 || crep.Summary["delete"] != 2*len(v1) {
		t.Fatalf("prune without --git-refs: exit %d (want %d images and snapshots deleted)\n%s", code, 2*len(v1), out)
	}
	for _, rel := range []released{tagged["v1.0.0"], tagged["v1.1.0"]} {
		for region, img := range rel.images {
			if _, ok := w.image(t, region, img.ID); ok {
				t.Errorf("prune left %s %s", region, img.ID)
			}
		}
	}
	for region, img := range current.images {
		if _, ok := w.image(t, region, img.ID); !ok {
			t.Errorf("prune deleted the current image %s %s", region, img.ID)
		}
	}
}

// TestGitRefsOptionsRefused: a --git-refs value git would read as an
// option is refused (exit 2), not handed to git.
func TestGitRefsOptionsRefused(t *testing.T) {
	w := newLocalWorld(t, 50)
	git(t, w.dir, "init", "-q")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "init")
	git(t, w.dir, "tag", "v1.0.0")
	for _, args := range [][]string{
		{"drift", "--git-refs=--contains=HEAD"},
		{"cleanup", "--orphans", "--git-refs=-d"},
		{"prune", "--git-refs=--delete", "--apply", "--yes"},
	} {
		_, stderr, code := w.kiln(t, args...)
		if code != 2 || !strings.Contains(stderr, "must not start with '-'") {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
	}
	if tags := git(t, w.dir, "tag", "--list"); tags != "v1.0.0" {
		t.Errorf("tags now %q", tags)
	}
}
