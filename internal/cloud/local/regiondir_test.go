package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/config"
)

// TestGCRemovesOnlyStagingFiles: garbage collection deletes nothing in a
// region's tmp/ but the staging files kiln names itself, however old the
// rest is: not a user's file, a directory, nor a link (or what it points
// to).
func TestGCRemovesOnlyStagingFiles(t *testing.T) {
	now := time.Now()
	b, err := New(config.LocalBackend{}, t.TempDir(), []string{"r"}, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	seed(t, b, "r", "one", nil, 1024)
	r, _ := b.region("r")
	outside := filepath.Join(t.TempDir(), "precious.txt")
	os.WriteFile(outside, []byte("keep me"), 0o644)
	keep := map[string]func(string) error{
		"notes.txt":    func(p string) error { return os.WriteFile(p, []byte("mine"), 0o644) },
		"write-":       func(p string) error { return os.WriteFile(p, []byte("no digits"), 0o644) },
		"copy-zz":      func(p string) error { return os.WriteFile(p, []byte("not hex"), 0o644) },
		"link-0a0b":    func(p string) error { return os.Mkdir(p, 0o755) },
		"import-12345": func(p string) error { return os.Symlink(outside, p) },
	}
	for name, mk := range keep {
		if err := mk(filepath.Join(r.tmpDir(), name)); err != nil {
			t.Fatal(err)
		}
	}
	stale := filepath.Join(r.tmpDir(), "write-2417871234")
	os.WriteFile(stale, []byte("half a record"), 0o644)

	now = now.Add(StaleTemp + time.Hour) // everything is old now
	st, err := b.GC(context.Background(), "r")
	if err != nil || st.Temp != 1 {
		t.Fatalf("GC = %+v, %v; want the one staging file removed", st, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale staging file still there: %v", err)
	}
	for name := range keep {
		if _, err := os.Lstat(filepath.Join(r.tmpDir(), name)); err != nil {
			t.Errorf("GC removed %s, which is not a kiln staging file: %v", name, err)
		}
	}
	if data, err := os.ReadFile(outside); err != nil || string(data) != "keep me" {
		t.Errorf("the link's target: %q %v", data, err)
	}
}

// TestRegionDirectoriesKilnDidNotMake: a region directory that holds
// someone's files, a system directory, the root and the home directory are
// refused before anything is written; an empty or new directory gets the
// marker on first write, and a store an older kiln made (its layout, no
// marker) is still accepted.
func TestRegionDirectoriesKilnDidNotMake(t *testing.T) {
	home, _ := os.UserHomeDir()
	users := t.TempDir()
	os.WriteFile(filepath.Join(users, "thesis.tex"), []byte("years of work"), 0o644)
	os.MkdirAll(filepath.Join(users, "tmp"), 0o755)
	older := t.TempDir()
	for _, d := range []string{"images", "blobs", "tmp"} {
		os.MkdirAll(filepath.Join(older, d), 0o755)
	}
	for _, c := range []struct {
		name, root, region, want string
	}{
		{"someone's directory", t.TempDir(), users, "holds files kiln did not make (thesis.tex)"},
		{"/etc", t.TempDir(), "/etc", "system directory"},
		{"inside /etc", t.TempDir(), "/etc/kiln", "inside the system directory /etc"},
		{"/var/tmp", t.TempDir(), "/var/tmp", "system directory"},
		{"root as region", t.TempDir(), "/", "filesystem root"},
		{"root as store", "/", "", "filesystem root"},
		{"home as region", t.TempDir(), home, "home directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.LocalBackend{}
			if c.region != "" {
				cfg.RegionPaths = map[string]string{"r": c.region}
			}
			_, err := New(cfg, c.root, []string{"r"})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want an error saying %q", err, c.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(users, config.RegionMarker)); err == nil {
		t.Error("a refused directory got a marker")
	}

	for name, dir := range map[string]string{"new": filepath.Join(t.TempDir(), "new"), "empty": t.TempDir(), "older kiln": older} {
		b, err := New(config.LocalBackend{RegionPaths: map[string]string{"r": dir}}, t.TempDir(), []string{"r"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		seed(t, b, "r", "x", nil, 512)
		if _, err := os.Stat(filepath.Join(dir, config.RegionMarker)); err != nil {
			t.Errorf("%s: no marker after the first write: %v", name, err)
		}
		os.WriteFile(filepath.Join(dir, "stray.txt"), nil, 0o644)
		if _, err := New(config.LocalBackend{RegionPaths: map[string]string{"r": dir}}, t.TempDir(), []string{"r"}); err != nil {
			t.Errorf("%s: a marked region with a stray file is refused: %v", name, err)
		}
	}
}
