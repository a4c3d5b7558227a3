package journal

import (
	"context"
	"errors"
	"testing"
	"time"
)

// record writes a run of useCase/arch created at created with the given
// steps (phase, name, detail, failed), each ended at once.
func record(t *testing.T, j *Journal, useCase, arch string, created time.Time, state RunState, steps [][4]string) string {
	t.Helper()
	ctx := context.Background()
	id := NewAssetID(created)
	if err := j.StartRun(ctx, Run{ID: id, UseCase: useCase, Arch: arch, Created: created}); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		sid, err := j.Begin(ctx, id, s[0], s[1], "r1", s[2])
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if s[3] == "fail" {
			serr = errors.New("boom")
		}
		if err := j.End(ctx, sid, "", serr); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.SetRun(ctx, id, "", state); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestStats(t *testing.T) {
	ctx := context.Background()
	j := openTemp(t)
	stamp0, err := j.Stamp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	a := record(t, j, "web", "x86_64", t0, RunSucceeded, [][4]string{
		{"build", "build", "", ""}, {"test", "boot", "", ""}, {"publish", "document", "manifests/latest.json", ""},
	})
	b := record(t, j, "web", "x86_64", t0.Add(time.Hour), RunFailed, [][4]string{
		{"build", "build", "", ""}, {"test", "boot", "", "fail"},
	})
	c := record(t, j, "web", "arm64", t0.Add(2*time.Hour), RunSucceeded, [][4]string{
		{"publish", "document", "manifests/latest.json", ""}, {"publish", "document", "manifests/stable.json", ""},
	})
	// A run still in its build: its open phase has no span yet.
	d := record(t, j, "db", "x86_64", t0.Add(3*time.Hour), RunRunning, nil)
	if _, err := j.Begin(ctx, d, "build", "build", "r1", ""); err != nil {
		t.Fatal(err)
	}

	stamp1, _ := j.Stamp(ctx)
	if stamp1 == stamp0 {
		t.Error("stamp did not change with new runs")
	}

	counts, err := j.RunCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[RunSucceeded] != 2 || counts[RunFailed] != 1 || counts[RunRunning] != 1 {
		t.Errorf("counts %v", counts)
	}

	spans, err := j.PhaseSpans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ run, phase string }
	got := map[key]PhaseSpan{}
	for _, s := range spans {
		got[key{s.RunID, s.Phase}] = s
		if s.Ended.Before(s.Started) || s.Duration() < 0 {
			t.Errorf("span %+v ends before it starts", s)
		}
	}
	if len(spans) != 6 {
		t.Errorf("%d spans, want 6 (a: 3, b: 2, c: 1, d: none while its build runs): %+v", len(spans), spans)
	}
	if s, ok := got[key{b, "test"}]; !ok || !s.Failed || s.UseCase != "web" {
		t.Errorf("failed test phase of b: %+v %v", s, ok)
	}
	if s := got[key{a, "build"}]; s.Failed || s.Arch != "x86_64" {
		t.Errorf("build of a: %+v", s)
	}
	if _, ok := got[key{d, "build"}]; ok {
		t.Error("a phase with a step still open has a span")
	}

	last, err := j.LastSucceeded(ctx, "document")
	if err != nil {
		t.Fatal(err)
	}
	want := map[[3]string]string{
		{"web", "x86_64", "manifests/latest.json"}: a,
		{"web", "arm64", "manifests/latest.json"}:  c,
		{"web", "arm64", "manifests/stable.json"}:  c,
	}
	if len(last) != len(want) {
		t.Fatalf("last documents %+v", last)
	}
	for _, l := range last {
		if want[[3]string{l.UseCase, l.Arch, l.Detail}] != l.RunID || l.Ended.IsZero() {
			t.Errorf("last document %+v", l)
		}
	}

	page, total, err := j.RunsPage(ctx, "web", "", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if total != 3 || len(page) != 1 || page[0].ID != b {
		t.Errorf("page 2 of web runs: total %d %+v, want %s", total, page, b)
	}
	page, total, _ = j.RunsPage(ctx, "", RunFailed, 0, 10)
	if total != 1 || len(page) != 1 || page[0].ID != b {
		t.Errorf("failed runs: total %d %+v", total, page)
	}

	latest, err := j.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, r := range latest {
		ids[r.UseCase+"/"+r.Arch] = r.ID
	}
	if len(latest) != 3 || ids["web/x86_64"] != b || ids["web/arm64"] != c || ids["db/x86_64"] != d {
		t.Errorf("latest runs %v", ids)
	}
}
