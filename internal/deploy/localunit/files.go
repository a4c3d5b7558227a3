package localunit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-images/kiln/internal/deploy"
)

// Names of the files in a unit's directory.
const (
	metaFile       = "unit.json"
	stateFile      = "state.json"
	lockFile       = "supervisor.lock"
	supervisorLog  = "supervisor.log"
	outputLog      = "output.log"
	consoleLog     = "console.log"
	qmpSocket      = "qmp.sock"
	deploymentsDir = "deployments"
)

// unitDir is where a unit's files live.
func unitDir(stateDir string, u deploy.Unit) string {
	return filepath.Join(stateDir, deploymentsDir, u.Deployment, u.Name)
}

// applyLock is the flock that serialises kiln's calls on one unit. It
// lives outside the unit's directory, which Destroy removes.
func applyLock(stateDir string, u deploy.Unit) string {
	return filepath.Join(stateDir, "locks", "unit-"+u.Deployment+"-"+u.Name+".lock")
}

// meta is unit.json: what kiln applied.
type meta struct {
	Kind       string            `json:"kind"`
	Project    string            `json:"project"`
	Deployment string            `json:"deployment"`
	Unit       string            `json:"unit"`
	Region     string            `json:"region"`
	Tags       map[string]string `json:"tags"`
	Token      string            `json:"token"`
	ImageID    string            `json:"image_id,omitempty"`
	// Ports maps port names to the host ports they were given; they are
	// kept across applies so that a deployment's URLs stay the same.
	Ports map[string]int `json:"ports,omitempty"`
	// Settings describe the applied unit for plans ("memory" -> "512MiB");
	// never a secret's value.
	Settings map[string]string `json:"settings"`
	Outputs  map[string]string `json:"outputs"`
	Created  time.Time         `json:"created"`
}

// state is state.json, written by the supervisor.
type state struct {
	State      string    `json:"state"` // starting, running, stopping, stopped, exited, failed
	Token      string    `json:"token"`
	Supervisor int       `json:"supervisor_pid"`
	Child      int       `json:"child_pid,omitempty"`
	Started    time.Time `json:"started,omitzero"` // the child's start
	Restarts   int       `json:"restarts"`
	LastExit   string    `json:"last_exit,omitempty"` // "exit status 1", "signal: killed"
	LastExitAt time.Time `json:"last_exit_at,omitzero"`
	Problem    string    `json:"problem,omitempty"`
	Updated    time.Time `json:"updated"`
}

// Supervisor states.
const (
	stStarting = "starting"
	stRunning  = "running"
	stStopping = "stopping"
	stStopped  = "stopped" // stopped on request
	stExited   = "exited"  // ended by itself, not restarted
	stFailed   = "failed"  // gave up restarting, or could not start
)

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSON writes v to path atomically: a reader sees the old file or the
// new one, never a torn one.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readMeta(dir string) (meta, bool, error) {
	var m meta
	err := readJSON(filepath.Join(dir, metaFile), &m)
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	return m, err == nil, err
}

func readState(dir string) (state, bool, error) {
	var s state
	err := readJSON(filepath.Join(dir, stateFile), &s)
	if errors.Is(err, fs.ErrNotExist) {
		return s, false, nil
	}
	return s, err == nil, err
}

// supervisorPID returns the pid of the process holding the unit's
// supervisor lock, or 0 when none does.
func supervisorPID(dir string) (int, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return 0, fmt.Errorf("probe %s: %w", f.Name(), err)
	}
	if lk.Type == unix.F_UNLCK {
		return 0, nil
	}
	return int(lk.Pid), nil
}

// takeSupervisorLock takes the unit's supervisor lock for this process's
// lifetime; ok is false when another supervisor holds it. The file must
// never be closed while the lock is wanted: closing any descriptor of it
// drops a POSIX lock.
func takeSupervisorLock(dir string) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return f, true, nil
}

// alive reports whether pid is a live process.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
