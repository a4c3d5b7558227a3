package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecipePathsStayInsideTheProject: every path a recipe names must
// resolve, links followed, inside the project directory; kiln validate
// says which field leads outside, exit 2.
func TestRecipePathsStayInsideTheProject(t *testing.T) {
	dir := initProject(t)
	cfg := filepath.Join(dir, "kiln.yaml")
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600)
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "files", "linked.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "files", "linked-dir")); err != nil {
		t.Fatal(err)
	}
	// A channel manifest that leads out through a link (item 4: kiln
	// would write through it).
	if err := os.Symlink(outside, filepath.Join(dir, "manifests")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(cfg)
	recipe := strings.Replace(string(data), "    tests: [tests/boot.sh]\n", `      - file: {source: ../../../../../../../../etc/hostname, destination: /etc/a}
      - file: {source: /etc/shadow, destination: /etc/b}
      - file: {source: files/linked.txt, destination: /etc/c}
      - file: {source: files/linked-dir, destination: /etc/d}
      - shell: /etc/passwd
    tests: [tests/boot.sh, /etc/passwd]
`, 1)
	if recipe == string(data) {
		t.Fatal("the example's tests line moved; adjust the test")
	}
	os.WriteFile(cfg, []byte(recipe), 0o644)
	_, stderr, code := kiln(t, "validate", "-c", cfg)
	if code != 2 {
		t.Fatalf("validate: exit %d, want 2\n%s", code, stderr)
	}
	for _, field := range []string{
		"provision[2].file.source", "provision[3].file.source", "provision[4].file.source",
		"provision[5].file.source", "provision[6].shell", "tests[1]", "channels.latest.manifest", "channels.stable.manifest",
	} {
		if !strings.Contains(stderr, field+": ") || !strings.Contains(stderr, "leads outside the project") {
			t.Errorf("validate does not refuse %s:\n%s", field, stderr)
		}
	}
	if n := strings.Count(stderr, "leads outside the project"); n != 8 {
		t.Errorf("%d paths refused, want 8:\n%s", n, stderr)
	}
}
