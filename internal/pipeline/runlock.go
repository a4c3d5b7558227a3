package pipeline

import (
	"fmt"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/lockfile"
)

// RunLockPath is the lock a kiln process holds while it works on a run, so
// that a second process neither works on the same run at once nor cleans up
// a run that is in progress.
func (p *Pipeline) RunLockPath(id string) string {
	return filepath.Join(p.Config.StateDir(), "locks", "run-"+id+".lock")
}

// LockRun takes the run's lock, failing at once if another process on this
// machine holds it. The kernel frees it if kiln dies.
func (p *Pipeline) LockRun(id string) (func(), error) {
	unlock, ok, err := lockfile.TryLock(p.RunLockPath(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("run %s is being worked on by another kiln process on this machine (lock %s)", id, p.RunLockPath(id))
	}
	return unlock, nil
}
