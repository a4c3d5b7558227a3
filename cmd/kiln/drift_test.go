package main

import (
	"github.com/kiln-images/kiln/internal/report"

	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/drift"
)

// finding is what a test pins down of a drift finding: everything but the
// free-text message.
type finding struct {
	Severity, Kind, Channel, UseCase, Region, ImageID, Expected, Actual string
}

func (f finding) String() string {
	return fmt.Sprintf("%s/%s %s %s %s %s expected=%q actual=%q", f.Severity, f.Kind, f.Channel, f.UseCase, f.Region, f.ImageID, f.Expected, f.Actual)
}

func sortFindings(fs []finding) []finding {
	slices.SortFunc(fs, func(a, b finding) int { return strings.Compare(a.String(), b.String()) })
	return fs
}

func findingsOf(fs []drift.Finding) []finding {
	out := make([]finding, 0, len(fs))
	for _, f := range fs {
		out = append(out, finding{string(f.Severity), string(f.Kind), f.Channel, f.UseCase, f.Region, f.ImageID, f.Expected, f.Actual})
	}
	return sortFindings(out)
}

// tableFindings reads the findings back from drift's table output: every
// column but the last (the message) is one word, empty cells print as "-".
func tableFindings(t *testing.T, out string) []finding {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var fs []finding
	header := false
	for _, l := range lines {
		if strings.HasPrefix(l, "SEVERITY") {
			header = true
			continue
		}
		if !header || strings.TrimSpace(l) == "" {
			continue
		}
		c := strings.Fields(l)
		if len(c) < 9 {
			t.Fatalf("table row %q has %d columns", l, len(c))
		}
		for i := range 8 {
			if c[i] == "-" {
				c[i] = ""
			}
		}
		fs = append(fs, finding{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]})
	}
	if !header {
		t.Fatalf("no findings table in:\n%s", out)
	}
	return sortFindings(fs)
}

func diffFindings(t *testing.T, what string, got, want []finding) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var b strings.Builder
	for _, f := range got {
		if !slices.Contains(want, f) {
			fmt.Fprintf(&b, "  unexpected: %s\n", f)
		}
	}
	for _, f := range want {
		if !slices.Contains(got, f) {
			fmt.Fprintf(&b, "  missing:    %s\n", f)
		}
	}
	t.Errorf("%s: findings differ (%d, want %d):\n%s", what, len(got), len(want), b.String())
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// driftJSON runs kiln drift -o json with args and decodes the report.
func driftJSON(t *testing.T, run func(*testing.T, ...string) (string, string, int), args ...string) (report.Drift, int) {
	t.Helper()
	out, stderr, code := run(t, append([]string{"drift", "-o", "json"}, args...)...)
	var rep report.Drift
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("drift %v: exit %d, report does not decode: %v\n%s%s", args, code, err, out, stderr)
	}
	if rep.Schema != "kiln.drift/v1" {
		t.Fatalf("drift report schema %q", rep.Schema)
	}
	return rep, code
}

func TestDriftLocal(t *testing.T) {
	w := newLocalWorld(t, 50)
	ctx := t.Context()
	now := time.Now().UTC()
	sandbox := w.release(t, "sandbox", "", "latest", now.Add(-2*time.Hour))
	rx := w.release(t, "runner", "x86_64", "latest", now.Add(-2*time.Hour))
	// Released 91 days ago with deprecate_after 90d: deprecated yesterday.
	ra := w.release(t, "runner", "arm64", "latest", now.Add(-91*24*time.Hour))
	// Released 29 days ago with deprecate_after 30d: deprecated tomorrow.
	soon := w.release(t, "sandbox", "", "stable", now.Add(-29*24*time.Hour))

	// Warnings are not drift: exit 0, and the table says so in its summary.
	out, stderr, code := w.kiln(t, "drift", "--warn-before", "14d")
	if code != 0 || !strings.HasPrefix(out, "10 entries checked in 3 regions: 10 in sync (coverage 100.0%), 0 drift findings, 5 warnings, 0 orphans\n") {
		t.Fatalf("drift of a fresh release: exit %d\n%s%s", code, out, stderr)
	}
	var warnings []finding
	for _, region := range []string{"local-a", "local-b"} {
		img := ra.images[region]
		warnings = append(warnings, finding{"warning", "deprecated", "latest", "runner-arm64", region, img.ID, "", rfc3339(img.Deprecation)})
	}
	for _, region := range localRegions {
		img := soon.images[region]
		warnings = append(warnings, finding{"warning", "deprecating", "stable", "sandbox", region, img.ID, "", rfc3339(img.Deprecation)})
	}
	diffFindings(t, "fresh release, table", tableFindings(t, out), sortFindings(slices.Clone(warnings)))
	// A shorter warning window leaves only the image deprecated already.
	rep, code := driftJSON(t, w.kiln, "--warn-before", "12h")
	if code != 0 || rep.Summary.Warnings != 2 || rep.Summary.InSync != 10 || rep.Summary.Checked != 10 || rep.Summary.Coverage != 1 {
		t.Fatalf("drift --warn-before 12h: exit %d, summary %+v", code, rep.Summary)
	}

	// Behind kiln's back, as another tool or a person would.
	store := w.store(t, now)
	if err := store.DeleteImage(ctx, "local-b", sandbox.images["local-b"].ID); err != nil {
		t.Fatal(err)
	}
	if err := store.SetLaunchPermissions(ctx, "local-c", sandbox.images["local-c"].ID, cloud.LaunchPermissions{}); err != nil {
		t.Fatal(err)
	}
	moved := now.Add(100 * 24 * time.Hour).Truncate(time.Second)
	if err := store.SetDeprecation(ctx, "local-a", sandbox.images["local-a"].ID, moved); err != nil {
		t.Fatal(err)
	}
	if err := store.SetLaunchPermissions(ctx, "local-b", rx.images["local-b"].ID, cloud.LaunchPermissions{}); err != nil {
		t.Fatal(err)
	}
	// A kiln-managed image of a finished run (3h old, unknown here) that no
	// manifest references, and an image that is not kiln's at all.
	orphan := w.importImage(t, "local-c", "sandbox-x86_64-0.9", releaseTags("kiln-20260101T000000Z-abcdef", "sandbox", "x86_64"), now.Add(-3*time.Hour))
	w.importImage(t, "local-c", "somebody-elses", map[string]string{cloud.TagAssetID: "kiln-20260101T000000Z-abcdef"}, now.Add(-3*time.Hour))

	want := append(slices.Clone(warnings),
		finding{"drift", "missing", "latest", "sandbox", "local-b", sandbox.images["local-b"].ID, "available", "absent"},
		finding{"drift", "public", "latest", "sandbox", "local-c", sandbox.images["local-c"].ID, "true", "false"},
		finding{"drift", "deprecation", "latest", "sandbox", "local-a", sandbox.images["local-a"].ID, rfc3339(sandbox.images["local-a"].Deprecation), rfc3339(moved)},
		finding{"drift", "permissions", "latest", "runner-x86_64", "local-b", rx.images["local-b"].ID, "[111122223333]", "[]"},
		finding{"orphan", "orphan", "", "sandbox", "local-c", orphan.ID, "", orphan.Name},
	)
	sortFindings(want)

	rep, code = driftJSON(t, w.kiln)
	if code != 1 {
		t.Fatalf("drift after changes: exit %d, want 1", code)
	}
	diffFindings(t, "drift -o json", findingsOf(rep.Findings), want)
	s := rep.Summary
	if s.Checked != 10 || s.InSync != 6 || s.Warnings != 5 || s.Orphans != 1 || s.Regions != 3 ||
		len(s.Drifted) != 4 || s.Drifted[drift.Missing] != 1 || s.Drifted[drift.Public] != 1 ||
		s.Drifted[drift.Deprecation] != 1 || s.Drifted[drift.Permissions] != 1 || s.Coverage != 0.6 {
		t.Errorf("summary %+v", s)
	}
	if !slices.Equal(rep.Channels, []string{"latest", "stable"}) {
		t.Errorf("channels %v", rep.Channels)
	}
	out, _, code = w.kiln(t, "drift")
	if code != 1 || !strings.HasPrefix(out, "10 entries checked in 3 regions: 6 in sync (coverage 60.0%), 4 drift findings, 5 warnings, 1 orphans\n") {
		t.Fatalf("drift table: exit %d\n%s", code, out)
	}
	diffFindings(t, "drift table", tableFindings(t, out), want)

	// One channel: only its entries are checked; orphans are still judged
	// against every channel's manifest.
	rep, code = driftJSON(t, w.kiln, "--channel", "stable")
	if code != 0 || rep.Summary.Checked != 3 || rep.Summary.Warnings != 3 || rep.Summary.Orphans != 1 || !slices.Equal(rep.Channels, []string{"stable"}) {
		t.Fatalf("drift --channel stable: exit %d, %+v", code, rep.Summary)
	}

	// reconcile plans the fixes it can make and changes nothing.
	var rr report.Reconcile
	out, stderr, code = w.kiln(t, "reconcile", "-o", "json")
	if err := json.Unmarshal([]byte(out), &rr); err != nil || code != 1 {
		t.Fatalf("reconcile plan: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	type fixKey struct{ region, id, kinds string }
	fixesOf := func(fs []drift.Fix) []fixKey {
		var out []fixKey
		for _, fx := range fs {
			var kinds []string
			for _, f := range fx.Findings {
				kinds = append(kinds, string(f.Kind))
			}
			out = append(out, fixKey{fx.Region, fx.ImageID, strings.Join(kinds, ",")})
		}
		slices.SortFunc(out, func(a, b fixKey) int { return strings.Compare(a.region+a.id, b.region+b.id) })
		return out
	}
	wantFixes := []fixKey{
		{"local-a", sandbox.images["local-a"].ID, "deprecation"},
		{"local-b", rx.images["local-b"].ID, "permissions"},
		{"local-c", sandbox.images["local-c"].ID, "public"},
	}
	slices.SortFunc(wantFixes, func(a, b fixKey) int { return strings.Compare(a.region+a.id, b.region+b.id) })
	if rr.Schema != "kiln.reconcile/v1" || rr.Applied || !slices.Equal(fixesOf(rr.Fixes), wantFixes) ||
		len(rr.Unfixable) != 1 || rr.Unfixable[0].Kind != drift.Missing || rr.Unfixable[0].ImageID != sandbox.images["local-b"].ID {
		t.Fatalf("reconcile plan: %+v", rr)
	}
	if perms, _ := store.LaunchPermissions(ctx, "local-c", sandbox.images["local-c"].ID); perms.Public {
		t.Fatal("reconcile without --apply made the image public")
	}

	// The table says what it would fix and what it cannot.
	out, _, code = w.kiln(t, "reconcile")
	if code != 1 || strings.Count(out, "would fix") != 3 || !strings.Contains(out, "cannot fix") ||
		!strings.Contains(out, sandbox.images["local-b"].ID) {
		t.Fatalf("reconcile table: exit %d\n%s", code, out)
	}

	// --apply fixes them; the missing image still needs a release, so the
	// exit code stays 1 and says why.
	out, stderr, code = w.kiln(t, "reconcile", "--apply", "-o", "json")
	rr = report.Reconcile{}
	if err := json.Unmarshal([]byte(out), &rr); err != nil || code != 1 || !rr.Applied || rr.Failed != 0 ||
		!strings.Contains(stderr, "1 finding(s) need a new release or kiln rollback") {
		t.Fatalf("reconcile --apply: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	for _, fx := range rr.Fixes {
		if fx.Error != "" {
			t.Errorf("fix %s %s: %s", fx.Region, fx.ImageID, fx.Error)
		}
	}
	if perms, err := store.LaunchPermissions(ctx, "local-c", sandbox.images["local-c"].ID); err != nil || !perms.Public {
		t.Errorf("local-c after reconcile: %+v, %v", perms, err)
	}
	if perms, err := store.LaunchPermissions(ctx, "local-b", rx.images["local-b"].ID); err != nil || perms.Public || !slices.Equal(perms.Accounts, []string{"111122223333"}) {
		t.Errorf("runner in local-b after reconcile: %+v, %v", perms, err)
	}
	if img, err := store.Image(ctx, "local-a", sandbox.images["local-a"].ID); err != nil || !img.Deprecation.Equal(sandbox.images["local-a"].Deprecation) {
		t.Errorf("local-a deprecation after reconcile: %v (want %v), %v", img.Deprecation, sandbox.images["local-a"].Deprecation, err)
	}
	rep, code = driftJSON(t, w.kiln)
	var drifted []finding
	for _, f := range findingsOf(rep.Findings) {
		if f.Severity == "drift" {
			drifted = append(drifted, f)
		}
	}
	if code != 1 || len(drifted) != 1 || drifted[0].Kind != "missing" {
		t.Fatalf("drift after reconcile: exit %d, %v", code, drifted)
	}

	// A new release replaces the entries: in sync again, and reconcile has
	// nothing to do. The old release's surviving copies are now orphans,
	// which do not fail drift.
	again := w.release(t, "sandbox", "", "latest", now.Add(-time.Hour))
	rep, code = driftJSON(t, w.kiln)
	if code != 0 || rep.Summary.Orphans != 3 || rep.Summary.InSync != rep.Summary.Checked {
		t.Fatalf("drift after a new release: exit %d, %+v\n%v", code, rep.Summary, findingsOf(rep.Findings))
	}
	for _, f := range rep.Findings {
		if f.Kind == drift.Orphan && f.ImageID == again.images[f.Region].ID {
			t.Errorf("the new release's image %s is reported as an orphan", f.ImageID)
		}
	}
	out, _, code = w.kiln(t, "reconcile")
	if code != 0 || out != "in sync: nothing to reconcile\n" {
		t.Fatalf("reconcile in sync: exit %d\n%s", code, out)
	}
}

func TestDriftLocalErrors(t *testing.T) {
	w := newLocalWorld(t, 50)
	rel := w.release(t, "sandbox", "", "latest", time.Now().Add(-time.Hour))

	_, stderr, code := w.kiln(t, "drift", "--channel", "nope")
	if code != 2 || !strings.Contains(stderr, "nope") {
		t.Fatalf("unknown channel: exit %d: %s", code, stderr)
	}
	_, stderr, code = w.kiln(t, "drift", "--git-refs", "v*")
	if code != 2 || !strings.Contains(stderr, "--git-refs") {
		t.Fatalf("--git-refs outside a git repository: exit %d: %s", code, stderr)
	}

	// A record the store cannot read is a cloud error, not drift.
	cfg := w.config(t)
	record := filepath.Join(cfg.Backend.Local.Root, "local-b", "images", rel.images["local-b"].ID+".json")
	if _, err := os.Stat(record); err != nil {
		t.Fatalf("the local store keeps image records elsewhere: %v", err)
	}
	if err := os.WriteFile(record, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := w.kiln(t, "drift", "-o", "json")
	if code != 2 || !strings.Contains(stderr, "local-b") || out != "" {
		t.Fatalf("unreadable record: exit %d\n%s%s", code, out, stderr)
	}

	// So is a manifest that does not decode; the error names the file.
	if err := os.WriteFile(filepath.Join(w.dir, "manifests", "latest.json"), []byte(`{"sandbox": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = w.kiln(t, "drift")
	if code != 2 || !strings.Contains(stderr, "latest.json") {
		t.Fatalf("broken manifest: exit %d: %s", code, stderr)
	}
}
