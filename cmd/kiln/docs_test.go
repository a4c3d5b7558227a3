package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository's top directory, seen from this package.
const repoRoot = "../.."

var (
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	repoPath = regexp.MustCompile("`((?:cmd|internal|docs|scripts|bench|\\.ci)/[A-Za-z0-9_./-]*)`")
	// Documents and sources named with a directory: `shared/DESIGN.md`.
	docPath = regexp.MustCompile("`([A-Za-z0-9_.-]*/[A-Za-z0-9_./-]*\\.(?:md|go))`")
)

// The README and docs cite only files that are in the repository: every
// relative link, and every `cmd/...`, `internal/...`, `docs/...` path.
func TestDocsCiteExistingFiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	files = append(files, filepath.Join(repoRoot, "README.md"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(repoRoot, f)
		for _, m := range mdLink.FindAllStringSubmatch(string(data), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
				t.Errorf("%s links to %s, which is not in the repository", name, m[1])
			}
		}
		for _, m := range append(repoPath.FindAllStringSubmatch(string(data), -1), docPath.FindAllStringSubmatch(string(data), -1)...) {
			_, errRoot := os.Stat(filepath.Join(repoRoot, m[1]))
			_, errHere := os.Stat(filepath.Join(filepath.Dir(f), m[1]))
			if errRoot != nil && errHere != nil {
				t.Errorf("%s cites %s, which is not in the repository", name, m[1])
			}
		}
	}
}

// The README's command table names every command, and none of the
// spellings that were renamed.
func TestReadmeCommands(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	root := newRootCommand(&globalOptions{streams: &streams{}})
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" {
			continue
		}
		if !strings.Contains(readme, "`kiln "+c.Name()) {
			t.Errorf("README's command table lacks kiln %s", c.Name())
		}
	}
	for _, old := range []string{"schedule --run", "--to REF", "[--force]", "--force`", "plan not applied"} {
		if strings.Contains(readme, old) {
			t.Errorf("README still says %q", old)
		}
	}
}
