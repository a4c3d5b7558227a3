package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrOutside is matched by errors about a path that leads outside the
// project directory.
var ErrOutside = errors.New("leads outside the project")

// maxLinks bounds the symbolic links followed while resolving one path, as
// the kernel's ELOOP does.
const maxLinks = 40

// ResolveInside resolves p against the project directory dir, following
// symbolic links (also a dangling one, and links in the directories on the
// way), and returns the real path it names, which need not exist. It is an
// error matching ErrOutside when that path is not inside dir (itself
// resolved): a recipe file, a test or a manifest never reaches outside the
// project, whether by an absolute path, by "..", or by a link.
func ResolveInside(dir, p string) (string, error) {
	root, err := realPath(dir, 0)
	if err != nil {
		return "", fmt.Errorf("project directory %s: %w", dir, err)
	}
	abs := p
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(dir, p)
	}
	real, err := realPath(filepath.Clean(abs), 0)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	if !within(real, root) {
		if real != filepath.Clean(abs) {
			return "", fmt.Errorf("%s %w (it resolves to %s)", p, ErrOutside, real)
		}
		return "", fmt.Errorf("%s %w (%s)", p, ErrOutside, root)
	}
	return real, nil
}

// within reports whether path is dir or lies below it; both are clean and
// absolute.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// realPath is filepath.EvalSymlinks that also resolves paths that do not
// exist (yet): the part that exists is resolved, the rest appended, and a
// dangling link is followed to where it points.
func realPath(p string, links int) (string, error) {
	r, err := filepath.EvalSymlinks(p)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if links >= maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		return realPath(filepath.Clean(target), links+1)
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p, nil
	}
	rp, err := realPath(parent, links)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(p)), nil
}
