package channel

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// The images deployments run, and ran before, are referenced: by their
// records in the working tree and at git tags.
func TestReferencesDeploymentRecords(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "kiln.yaml"), []byte("project: demo\nregions: [r1, r2]\nuse_cases: {u: {architectures: [x86_64], tests: [t.sh]}}\n"), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	save := func(id, prev string) {
		r := record.New("dev", "demo", "r1", "000000000000")
		r.State = record.StateDeployed
		r.Release = &record.Release{ID: "1-" + id, Images: map[string]string{"r1": id, "r2": id + "b"}}
		if prev != "" {
			r.Previous = &record.Release{ID: "0-" + prev, Images: map[string]string{"r1": prev}}
		}
		if err := record.Save(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) {
		if out, err := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	git("init", "-q")
	save("img-old", "")
	git("add", "-A")
	git("commit", "-qm", "old")
	git("tag", "v1")
	save("img-new", "img-mid")
	refs, err := References(t.Context(), cfg, "v*")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ region, id, want string }{
		{"r1", "img-new", "deployments/dev.json"},
		{"r2", "img-newb", "deployments/dev.json"},
		{"r1", "img-mid", "deployments/dev.json"}, // the previous release, for a rollback
		{"r1", "img-old", "v1:deployments/dev.json"},
		{"r1", "img-other", ""},
	} {
		if got := refs.Where(tc.region, tc.id); got != tc.want {
			t.Errorf("%s/%s referenced by %q, want %q", tc.region, tc.id, got, tc.want)
		}
	}
}
