package manifest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write stores m's canonical encoding at path atomically: it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory. Readers see the old file or the new one, never a
// mix, and a failed Write leaves the old file as it was and no temporary
// file behind. An existing file's permissions are kept; a new file gets
// 0644. A symlink at path is followed and its target replaced.
func Write(path string, m Manifest) error {
	return writeAtomic(path, m.Encode(), nil)
}

// WriteFile stores data at path atomically, as Write stores a manifest:
// for other files kept beside manifests in git (deployment records).
func WriteFile(path string, data []byte) error {
	return writeAtomic(path, data, nil)
}

// writeAtomic is Write with a hook that wraps the temporary file's writer,
// so tests can make the write fail half-way.
func writeAtomic(path string, data []byte, wrap func(io.Writer) io.Writer) (err error) {
	// Replace a symlink's target, not the link: the link is someone's layout.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return fmt.Errorf("write manifest %s: %w", path, err)
		}
		path = target
	}
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("write manifest %s: is a directory", path)
		}
		perm = fi.Mode().Perm()
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()

	var w io.Writer = f
	if wrap != nil {
		w = wrap(f)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write manifest %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		// The new file is in place; only its durability across a crash is
		// in doubt. Say so rather than pretend nothing happened.
		return fmt.Errorf("write manifest %s: sync directory: %w", path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable. Some filesystems cannot sync a
// directory; there the rename is as durable as it gets.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}
