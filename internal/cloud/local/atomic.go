package local

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// writeAtomic replaces path with data: it writes a temporary file in tmpDir
// (on the same filesystem), fsyncs it, renames it over path and fsyncs
// path's directory. A reader sees the old file or the new one, and after a
// crash the file is one or the other. A non-zero mtime becomes the file's
// modification time.
func writeAtomic(tmpDir, path string, data []byte, mtime time.Time) (err error) {
	f, err := os.CreateTemp(tmpDir, "write-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if !mtime.IsZero() {
		if err = os.Chtimes(f.Name(), mtime, mtime); err != nil {
			return err
		}
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// removeDurably removes path and fsyncs its directory; an absent path is not
// an error.
func removeDurably(path string) error {
	if err := os.Remove(path); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir fsyncs a directory so that renames and removals in it survive a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && err != syscall.EINVAL {
		return err
	}
	return nil
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}
