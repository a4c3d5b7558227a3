package channel

import (
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
