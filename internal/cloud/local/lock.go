package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lock takes the region's exclusive lock, waiting until it is free or ctx is
// done, and creates the region's directories. The lock is flock(2) on a file
// opened for this call alone, so it excludes other goroutines of this
// process as well as other processes; it is released by unlock or when the
// process dies.
func (r *region) lock(ctx context.Context) (unlock func(), err error) {
	if err := r.ensure(); err != nil {
		return nil, fmt.Errorf("region %s: %w", r.name, err)
	}
	f, err := os.OpenFile(r.lockPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("region %s: open lock: %w", r.name, err)
	}
	wait := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("region %s: lock %s: %w", r.name, r.lockPath(), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("region %s: waiting for lock %s: %w", r.name, r.lockPath(), ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
