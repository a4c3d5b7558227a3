package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/journal"
)

// TestChannelGatesForEveryWriterAWS: the interval gate holds for release as
// it does for promote, publishing an older run than the channel holds is
// refused, and --override-gate NAME --reason TEXT lets a gate pass on the
// record (journal and commit message). A rerun of finished work succeeds.
func TestChannelGatesForEveryWriterAWS(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	w.editConfig(t, func(s string) string {
		return strings.Replace(s, "use_cases:\n", "channels:\n  latest: {}\n  stable: {min_interval: 7d}\nuse_cases:\n", 1)
	})
	w.gitProject(t)

	// Two runs replicated, the newer one published first.
	// Each run has a version of its own: two builds in the same second
	// would otherwise name their images alike, which EC2 refuses.
	builds := 0
	build := func() string {
		t.Helper()
		builds++
		out, stderr, code := w.kiln(t, "build", "ci-runner", "--version", fmt.Sprintf("1.%d", builds))
		if code != 0 {
			t.Fatalf("build: exit %d\n%s", code, stderr)
		}
		run := strings.TrimSpace(out)
		for _, phase := range []string{"test", "replicate"} {
			if _, stderr, code := w.kiln(t, phase, "--run", run); code != 0 {
				t.Fatalf("%s: exit %d\n%s", phase, code, stderr)
			}
		}
		return run
	}
	older := build()
	// Run ids tell time to the second, and the newer gate compares them.
	time.Sleep(1100 * time.Millisecond)
	newer := build()
	if _, stderr, code := w.kiln(t, "publish", "--run", newer, "--commit"); code != 0 {
		t.Fatalf("publish newer: exit %d\n%s", code, stderr)
	}
	head := git(t, w.dir, "rev-parse", "HEAD")
	_, stderr, code := w.kiln(t, "publish", "--run", older, "--commit")
	if code != 1 || !strings.Contains(stderr, "gate newer") || !strings.Contains(stderr, "would move the channel back") {
		t.Fatalf("publish of an older run: exit %d\n%s", code, stderr)
	}
	if git(t, w.dir, "rev-parse", "HEAD") != head || git(t, w.dir, "status", "--porcelain") != "" {
		t.Fatal("the refused publish changed the channel")
	}
	_, stderr, code = w.kiln(t, "publish", "--run", older, "--commit", "--override-gate", "newer")
	if code != 2 || !strings.Contains(stderr, "needs --reason") {
		t.Fatalf("--override-gate without --reason: exit %d\n%s", code, stderr)
	}
	_, stderr, code = w.kiln(t, "publish", "--run", older, "--commit", "--override-gate", "newer", "--reason", "roll forward broke boot on m7i")
	if code != 0 {
		t.Fatalf("publish with the gate overridden: exit %d\n%s", code, stderr)
	}
	if msg := git(t, w.dir, "log", "-1", "--format=%B"); !strings.Contains(msg, "Kiln-Override-Gate: newer: roll forward broke boot on m7i") {
		t.Errorf("commit message does not record the override:\n%s", msg)
	}
	// Publishing the run again changes nothing and succeeds.
	if _, stderr, code := w.kiln(t, "publish", "--run", older, "--commit"); code != 0 {
		t.Fatalf("publish rerun: exit %d\n%s", code, stderr)
	}

	// release --channel stable twice: the second is refused by the
	// interval gate before it builds anything.
	if _, stderr, code := w.kiln(t, "release", "ci-runner", "--channel", "stable", "--commit"); code != 0 {
		t.Fatalf("first release to stable: exit %d\n%s", code, stderr)
	}
	before := w.allImages(t)
	_, stderr, code = w.kiln(t, "release", "ci-runner", "--channel", "stable")
	if code != 1 || !strings.Contains(stderr, "gate interval") || !strings.Contains(stderr, "min_interval allows one change every 7d") {
		t.Fatalf("second release to stable: exit %d\n%s", code, stderr)
	}
	if after := w.allImages(t); len(after) != len(before) {
		t.Errorf("the refused release made images: %d -> %d", len(before), len(after))
	}
	if _, stderr, code := w.kiln(t, "release", "ci-runner", "--channel", "stable", "--commit",
		"--override-gate", "interval", "--reason", "CVE-2026-0001 hotfix"); code != 0 {
		t.Fatalf("release with the interval overridden: exit %d\n%s", code, stderr)
	}
	if msg := git(t, w.dir, "log", "-1", "--format=%B"); !strings.Contains(msg, "Kiln-Override-Gate: interval: CVE-2026-0001 hotfix") {
		t.Errorf("commit message:\n%s", msg)
	}

	// promote --apply repeated: the second finds nothing to do, exit 0.
	w.editConfig(t, func(s string) string {
		return strings.Replace(s, "stable: {min_interval: 7d}", "stable: {min_interval: 7d}\n  prod: {min_interval: 7d}", 1)
	})
	for i := range 2 {
		out, stderr, code := w.kiln(t, "promote", "ci-runner", "--from", "stable", "--to", "prod", "--apply", "--commit")
		if code != 0 || (i == 1 && !strings.Contains(out, "already has these entries")) {
			t.Fatalf("promote #%d: exit %d\n%s%s", i+1, code, out, stderr)
		}
	}

	j, err := journal.Open(journalPath(w.config(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	evs, err := j.Events(t.Context(), "override-gate")
	if err != nil || len(evs) != 2 {
		out, _ := json.Marshal(evs)
		t.Fatalf("override events %s: %v", out, err)
	}
	if !strings.Contains(evs[0].Detail, "gate newer overridden for publish of run "+older+": roll forward broke boot on m7i") ||
		evs[0].Subject != "channel latest" || !strings.Contains(evs[1].Detail, "CVE-2026-0001 hotfix") {
		t.Errorf("events: %+v", evs)
	}
}
