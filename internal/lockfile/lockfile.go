// Package lockfile provides advisory file locks (flock(2)) between kiln
// processes on one machine: a channel's manifest while it is rewritten, a
// run while a phase works on it. The kernel drops a lock when its process
// dies, so a crashed kiln never leaves a stale lock behind.
package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive lock on path (creating it and its directory),
// waiting until it is free or ctx is done. Call the returned function to
// release it.
func Lock(ctx context.Context, path string) (func(), error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	for {
		ok, err := try(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TryLock takes the lock on path if it is free; ok is false when another
// process holds it.
func TryLock(path string) (unlock func(), ok bool, err error) {
	f, err := open(path)
	if err != nil {
		return nil, false, err
	}
	if ok, err = try(f); err != nil || !ok {
		f.Close()
		if err != nil {
			err = fmt.Errorf("lock %s: %w", path, err)
		}
		return nil, false, err
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, true, nil
}

// Held reports whether another process holds the lock on path. A missing
// file is not held.
func Held(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	ok, err := try(f)
	if err != nil {
		return false, fmt.Errorf("probe lock %s: %w", path, err)
	}
	if ok {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}
	return !ok, nil
}

func open(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
}

func try(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}
