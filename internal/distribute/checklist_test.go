package distribute

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/config"
)

const checklistYAML = `project: demo
regions: [r1]
use_cases:
  app:
    architectures: [x86_64]
    tests: [t.sh]
    version: "1.4.0"
  daily:
    architectures: [x86_64]
    tests: [t.sh]
distribution:
  public_key: RWS17BIm7EKy4sKAYOMw1qMbQzQiBi30ELy5nuCjUT/TsjGZo6r4+p6H
  changelog: doc/changes/changes_{version}.md
  release_tag: v{version}
`

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestReleaseChecklist(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "kiln.yaml"), []byte(checklistYAML), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	changelog := filepath.Join(dir, "doc/changes/changes_1.4.0.md")
	os.MkdirAll(filepath.Dir(changelog), 0o755)
	check := func(useCase, version string) error { return CheckRelease(context.Background(), cfg, useCase, version) }
	want := func(err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("no error, want %q", parts)
		}
		var ce *ChecklistError
		if !errors.As(err, &ce) {
			t.Fatalf("error %T %v is not a ChecklistError", err, err)
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q lacks %q", err, p)
			}
		}
	}

	// Daily builds (no version of their own) have no checklist.
	if err := check("daily", ""); err != nil {
		t.Fatalf("daily build: %v", err)
	}
	want(check("app", "1.5.0"), `use_cases.app.version is "1.4.0", the release's version is "1.5.0"`)
	want(check("app", ""), changelog+": missing", `"Version: 1.4.0"`)
	os.WriteFile(changelog, []byte("# Changes\n\nVersion: 1.3.0\nDate: 21.11.2026\n"), 0o644)
	want(check("app", ""), changelog, `Version is "1.3.0"`, `Date "21.11.2026" is not a date`, `no "Code name: NAME" line`)
	os.WriteFile(changelog, []byte("# Changes in 1.4.0\n\n- **Version:** 1.4.0\n- **Date:** 2026-11-21\n- **Code name:** Bluebird\n\nFixed things.\n"), 0o644)
	want(check("app", ""), "release_tag v1.4.0: the project is not a git work tree")
	gitIn(t, dir, "init", "-q")
	gitIn(t, dir, "add", ".")
	gitIn(t, dir, "commit", "-qm", "one")
	want(check("app", ""), "tag v1.4.0 does not exist")
	gitIn(t, dir, "tag", "v1.4.0")
	if err := check("app", "1.4.0"); err != nil {
		t.Fatalf("everything in order: %v", err)
	}
	gitIn(t, dir, "commit", "-q", "--allow-empty", "-m", "two")
	want(check("app", ""), "tag v1.4.0 points at", "release from the tagged commit")
	// The changelog is the release notes.
	notes, err := ReleaseNotes(cfg, "1.4.0")
	if err != nil || !strings.Contains(string(notes), "Bluebird") {
		t.Fatalf("release notes %q %v", notes, err)
	}
	if notes, err := ReleaseNotes(cfg, "20261121.093012"); err != nil || notes != nil {
		t.Fatalf("a version without a changelog has notes %q %v", notes, err)
	}
}
