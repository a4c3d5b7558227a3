package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/distribute"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/pipeline"
)

// prepare builds, tests and replicates a run of sandbox in-process (the
// builder replaced, as in distWorld), leaving it for `kiln publish`.
func (w *distWorld) prepare(t *testing.T, version string, at time.Time) string {
	t.Helper()
	ctx := t.Context()
	cfg := w.config(t)
	j, err := journal.Open(journalPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	b, err := local.New(cfg.Backend.Local, cfg.Backend.Local.Root, cfg.Regions, local.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline.Pipeline{Config: cfg, Backend: &exportingBuilder{Backend: b}, Journal: j, Concurrency: 2, Now: func() time.Time { return at }}
	r, err := p.NewRun(ctx, "sandbox", "", version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Build(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Test(ctx, r, false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Replicate(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// checkTree checks a tree as a reader and the next publisher find it:
// the index verifies with the project's key, every file it names is
// there, and (when settled) nothing else is.
func (w *distWorld) checkTree(t *testing.T, settled bool) []string {
	t.Helper()
	dir := filepath.Join(w.dir, ".kiln", "dist")
	pub := w.key.Public()
	cat, err := distribute.LoadCatalog(context.Background(), distribute.DirFetcher{Dir: dir}, &pub)
	if err != nil {
		t.Fatalf("the index does not verify: %v", err)
	}
	named := map[string]bool{}
	var versions []string
	for _, e := range cat.Entries() {
		named[e.Path] = true
		if fi, err := os.Stat(filepath.Join(dir, e.Path)); err != nil || fi.Size() != e.Size {
			t.Errorf("%s: the index names it with %d bytes: %v", e.Path, e.Size, err)
		}
		if !slices.Contains(versions, e.Label) {
			versions = append(versions, e.Label)
		}
	}
	if settled {
		store := &distribute.LocalStore{Dir: dir}
		files, _ := store.List(context.Background())
		for _, f := range files {
			if !named[f] {
				t.Errorf("%s is in the tree and in no index", f)
			}
		}
	}
	slices.Sort(versions)
	return versions
}

// The crash harness on the index step: `kiln publish` is killed
// (SIGKILL) at every boundary of indexing its run; the tree a reader sees
// then still verifies, and publishing again finishes with the new
// version indexed and nothing left over.
func TestLocalCrashIndex(t *testing.T) {
	tally := crashTally{backend: "local", variant: "kill in the index step, then publish --run ID"}
	defer tally.report(t)
	t1, t2 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	world := func(t *testing.T) (*distWorld, string) {
		w := newDistWorld(t)
		w.release(t, "1.0", t1)
		return w, w.prepare(t, "1.1", t2)
	}
	// Which boundaries the index step has.
	w, run := world(t)
	trace := filepath.Join(t.TempDir(), "trace")
	if p, code := runKiln(t, []string{"KILN_FAILPOINT_LOG=" + trace}, "publish", "--run", run, "-c", w.cfg); code != 0 {
		t.Fatalf("publish: exit %d\n%s", code, p.stderr.String())
	}
	var points []int
	var names []string
	in := false
	for _, line := range events(t, trace) {
		n, event, _ := strings.Cut(line, " ")
		if strings.HasPrefix(event, "begin publish index") {
			in = true
		}
		if in {
			var i int
			fmt.Sscan(n, &i)
			points = append(points, i)
			names = append(names, event)
		}
		if strings.HasPrefix(event, "end publish index") {
			break
		}
	}
	if len(points) < 6 {
		t.Fatalf("the index step has %d boundaries: %v", len(points), names)
	}
	for i, n := range points {
		t.Run(names[i], func(t *testing.T) {
			w, run := world(t)
			p, code := runKiln(t, []string{fmt.Sprintf("KILN_FAILPOINT=%d", n)}, "publish", "--run", run, "-c", w.cfg)
			if code != -1 {
				t.Fatalf("not killed at %d (%s): exit %d\n%s", n, names[i], code, p.stderr.String())
			}
			tally.points++
			tally.names = append(tally.names, names[i])
			if got := w.checkTree(t, false); !slices.Equal(got, []string{"1.0"}) && !slices.Equal(got, []string{"1.0", "1.1"}) {
				t.Errorf("after the kill, the index has versions %v", got)
			}
			if p, code := runKiln(t, nil, "publish", "--run", run, "-c", w.cfg); code != 0 {
				t.Fatalf("publish again: exit %d\n%s", code, p.stderr.String())
			}
			if got := w.checkTree(t, true); !slices.Equal(got, []string{"1.0", "1.1"}) {
				tally.leaked++
				t.Errorf("after publishing again: versions %v", got)
			}
		})
	}
}
