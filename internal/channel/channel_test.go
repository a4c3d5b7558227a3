package channel

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
)

func project(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tests"), 0o755)
	os.WriteFile(filepath.Join(dir, "tests/t.sh"), []byte("#!/bin/sh\n"), 0o755)
	yaml := "project: demo\nregions: [local-a]\nchannels: {latest: {}}\nuse_cases: {u: {architectures: [x86_64], tests: [tests/t.sh]}}\n"
	os.WriteFile(filepath.Join(dir, "kiln.yaml"), []byte(yaml), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var entry = manifest.Entry{Architecture: "x86_64", ID: "img-0123456789abcdef0", Name: "u-x86_64-1", Public: true}

func set(m manifest.Manifest) error { m.Set("u", "local-a", entry); return nil }

// TestUpdateNeverWritesOutsideTheProject: a manifest that is a link to a
// file outside the project, or lies in a linked directory outside it, is
// not written; a link within the project is written through.
func TestUpdateNeverWritesOutsideTheProject(t *testing.T) {
	for _, c := range []struct {
		name string
		link func(t *testing.T, cfg *config.Config, outside string)
	}{
		{"manifest links out", func(t *testing.T, cfg *config.Config, outside string) {
			os.MkdirAll(filepath.Join(cfg.Dir, "manifests"), 0o755)
			os.Symlink(filepath.Join(outside, "victim.json"), filepath.Join(cfg.Dir, "manifests/latest.json"))
		}},
		{"directory links out", func(t *testing.T, cfg *config.Config, outside string) {
			os.Symlink(outside, filepath.Join(cfg.Dir, "manifests"))
		}},
		{"dangling link out", func(t *testing.T, cfg *config.Config, outside string) {
			os.MkdirAll(filepath.Join(cfg.Dir, "manifests"), 0o755)
			os.Symlink(filepath.Join(outside, "new.json"), filepath.Join(cfg.Dir, "manifests/latest.json"))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := project(t)
			outside := t.TempDir()
			victim := filepath.Join(outside, "victim.json")
			os.WriteFile(victim, []byte("{}\n"), 0o644)
			c.link(t, cfg, outside)
			_, err := Update(t.Context(), cfg, "latest", set)
			if err == nil || !strings.Contains(err.Error(), "leads outside the project") {
				t.Fatalf("Update: %v", err)
			}
			if data, _ := os.ReadFile(victim); string(data) != "{}\n" {
				t.Errorf("the file outside was written: %q", data)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 1 {
				t.Errorf("files appeared outside: %v", entries)
			}
		})
	}
	t.Run("link inside", func(t *testing.T) {
		cfg := project(t)
		os.MkdirAll(filepath.Join(cfg.Dir, "manifests"), 0o755)
		target := filepath.Join(cfg.Dir, "published.json")
		os.WriteFile(target, []byte("{}\n"), 0o644)
		os.Symlink("../published.json", filepath.Join(cfg.Dir, "manifests/latest.json"))
		if _, err := Update(t.Context(), cfg, "latest", set); err != nil {
			t.Fatal(err)
		}
		if m, err := manifest.Load(target); err != nil || len(m.Entries()) != 1 {
			t.Fatalf("target %v %v", m, err)
		}
		if fi, err := os.Lstat(filepath.Join(cfg.Dir, "manifests/latest.json")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("the link was replaced: %v", err)
		}
	})
}

const runnersProject = `project: runners
regions: [local-a, local-b]
channels:
  latest: {manifest: m.json, format: v2, reads: [v1]}
manifest_formats:
  v1:
    key: "{use_case}"
    fields: [{name: id, source: id}, {name: arch, source: arch}, {name: name, value: ubuntu}]
  v2:
    key: "{os}-{arch}"
    arch: {x86_64: amd64, arm64: arm64}
    fields: [{name: id, source: id}, {name: arch, source: arch}, {name: os, attribute: os}]
use_cases:
  runner:
    architectures: [x86_64, arm64]
    attributes: {os: linux}
    tests: [t.sh]
`

// A file in a format the channel only reads stays as it is until an update
// changes an entry; then it is written in the channel's own format, and
// the changes are only what changed.
func TestUpdateAcrossFormats(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.sh"), nil, 0o755)
	os.WriteFile(filepath.Join(dir, "kiln.yaml"), []byte(runnersProject), 0o644)
	old := `{"runner": {"local-a": {"id": "img-0123456789abcdef0", "arch": "x86_64", "name": "ubuntu"}}}` + "\n"
	path := filepath.Join(dir, "m.json")
	os.WriteFile(path, []byte(old), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m, l, err := Open(cfg, "latest")
	if err != nil || l.Format().Name != "v1" || len(m.Entries()) != 1 {
		t.Fatalf("Open = %v, %v, %v", m, l, err)
	}
	e, _ := m.Get("runner-x86_64", "local-a")

	// No change: not rewritten.
	changes, err := Update(t.Context(), cfg, "latest", func(m manifest.Manifest) error { return nil })
	if data, _ := os.ReadFile(path); err != nil || len(changes) != 0 || string(data) != old {
		t.Fatalf("a no-op update: %v, %v\n%s", changes, err, data)
	}

	arm := manifest.Entry{Architecture: "arm64", ID: "img-0fedcba9876543210", Public: true}
	changes, err = Update(t.Context(), cfg, "latest", func(m manifest.Manifest) error {
		m.Set("runner-arm64", "local-b", arm)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var diff bytes.Buffer
	manifest.FormatDiff(&diff, changes)
	want := `+ linux-arm64.local-b.id: "img-0fedcba9876543210"
+ linux-arm64.local-b.arch: "arm64"
+ linux-arm64.local-b.os: "linux"
`
	if diff.String() != want {
		t.Fatalf("changes:\n%s\nwant:\n%s", diff.String(), want)
	}
	m, l, err = Open(cfg, "latest")
	if err != nil || l.Format().Name != "v2" {
		t.Fatalf("after the update: %v, %v", l, err)
	}
	if got, _ := m.Get("runner-x86_64", "local-a"); got.ID != e.ID {
		t.Fatalf("the x86_64 entry became %+v", got)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), `"linux-amd64": {`) || strings.Contains(string(data), `"runner"`) {
		t.Fatalf("file after the update:\n%s", data)
	}
	if got, err := LayoutsForFile(cfg, "m.json"); err != nil || len(got) != 2 || got[0].Format().Name != "v2" {
		t.Fatalf("LayoutsForFile = %v, %v", got, err)
	}
}

// A manifest in a declared format is written through the channel's
// format, and still never through a link out of the project; the file
// outside keeps its bytes, in whatever format they were.
func TestUpdateInDeclaredFormatNeverWritesOutsideTheProject(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.sh"), nil, 0o755)
	os.WriteFile(filepath.Join(dir, "kiln.yaml"), []byte(runnersProject), 0o644)
	outside := t.TempDir()
	victim := filepath.Join(outside, "m.json")
	old := `{"runner": {"local-a": {"id": "img-0123456789abcdef0", "arch": "x86_64", "name": "ubuntu"}}}` + "\n"
	os.WriteFile(victim, []byte(old), 0o644)
	// kiln.yaml's validation refuses the link too; Update must hold on its
	// own when the link appears after kiln.yaml was read.
	cfg, err := config.Load(filepath.Join(dir, "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(victim, filepath.Join(dir, "m.json"))
	if _, err := config.Load(filepath.Join(dir, "kiln.yaml")); err == nil || !strings.Contains(err.Error(), "leads outside the project") {
		t.Errorf("kiln.yaml with the manifest linked out of the project: %v", err)
	}
	_, err = Update(t.Context(), cfg, "latest", func(m manifest.Manifest) error {
		m.Set("runner-arm64", "local-b", manifest.Entry{Architecture: "arm64", ID: "img-0fedcba9876543210"})
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "leads outside the project") {
		t.Fatalf("Update through a link out of the project: %v", err)
	}
	if data, _ := os.ReadFile(victim); string(data) != old {
		t.Errorf("the file outside was rewritten:\n%s", data)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("files appeared outside: %v", entries)
	}
}
