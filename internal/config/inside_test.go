package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// insideProject makes a project directory with links that stay in it and
// links that lead out, and returns it.
func insideProject(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "proj")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(dir, "files", "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "files", "a.txt"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	links := map[string]string{
		"files/in":       "a.txt",
		"files/up":       "../files/a.txt",
		"files/out":      "../../outside/secret",
		"files/abs":      filepath.Join(outside, "secret"),
		"files/outdir":   outside,
		"files/dangling": filepath.Join(outside, "not-yet"),
		"files/loop":     "loop",
		"files/chain":    "in",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestResolveInside(t *testing.T) {
	dir := insideProject(t)
	for _, c := range []struct {
		path    string
		outside bool
	}{
		{"files/a.txt", false},
		{"files/in", false},
		{"files/up", false},
		{"files/chain", false},
		{"files/not-there-yet.txt", false},
		{"new-dir/new-file", false},
		{".", false},
		{filepath.Join(dir, "files/a.txt"), false},
		{"..", true},
		{"../outside/secret", true},
		{"files/../../outside/secret", true},
		{"/etc/passwd", true},
		{"files/out", true},
		{"files/abs", true},
		{"files/outdir/secret", true},
		{"files/outdir/new", true},
		{"files/dangling", true},
	} {
		_, err := ResolveInside(dir, c.path)
		if got := errors.Is(err, ErrOutside); got != c.outside || (!c.outside && err != nil) {
			t.Errorf("ResolveInside(%q) = %v; outside %v, want %v", c.path, err, got, c.outside)
		}
	}
	if _, err := ResolveInside(dir, "files/loop"); err == nil || !strings.Contains(err.Error(), "links") {
		t.Errorf("a link loop: %v", err)
	}
}

// FuzzResolveInside: no path makes ResolveInside panic, and whatever it
// accepts lies inside the project once resolved.
func FuzzResolveInside(f *testing.F) {
	for _, p := range []string{"files/a.txt", "files/out", "../x", "/etc", "files/outdir/../in", "a/../../b", "files//in/", "\x00"} {
		f.Add(p)
	}
	dir := insideProject(f)
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		real, err := ResolveInside(dir, p)
		if err != nil {
			return
		}
		if !within(real, root) {
			t.Fatalf("ResolveInside(%q) = %s, outside %s", p, real, root)
		}
	})
}
