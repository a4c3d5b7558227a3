package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-images/kiln/internal/cloud"
)

// procInfo is what /proc/<pid>/stat says about a process.
type procInfo struct {
	comm  string
	state byte
	start uint64 // clock ticks after boot; with the pid it names one process
}

// errNoProcess means the pid names no process.
var errNoProcess = errors.New("no such process")

// readProc parses /proc/<pid>/stat.
func readProc(pid int) (procInfo, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return procInfo{}, errNoProcess
	}
	if err != nil {
		return procInfo{}, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	// so split at the last ')'.
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || end < open {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 20 {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: %d fields after comm, want at least 20", pid, len(fields))
	}
	start, err := strconv.ParseUint(fields[19], 10, 64) // field 22, starttime
	if err != nil {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: starttime %q: %w", pid, fields[19], err)
	}
	return procInfo{comm: string(data[open+1 : end]), state: fields[0][0], start: start}, nil
}

// alive reports whether the process has not exited (a zombie has).
func (p procInfo) alive() bool { return p.state != 'Z' && p.state != 'X' }

// isQemu reports whether the process is a qemu system emulator. comm is cut
// to 15 bytes: "qemu-system-x86".
func (p procInfo) isQemu() bool { return strings.HasPrefix(p.comm, "qemu-system") }

// ourProcess reports whether pid is still the running process that started
// at start and is a qemu process.
func ourProcess(pid int, start uint64) (bool, error) {
	p, err := readProc(pid)
	if errors.Is(err, errNoProcess) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return p.start == start && p.alive() && p.isQemu(), nil
}

// stopProcess terminates pid if it is still the qemu process that started
// at start: SIGTERM, then SIGKILL after a grace period. It signals through
// a pidfd opened and then checked, so a pid reused by another process is
// never signalled.
func stopProcess(ctx context.Context, pid int, start uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	// The pidfd now names one process; check it is ours.
	ours, err := ourProcess(pid, start)
	if err != nil || !ours {
		return err
	}
	for _, step := range []struct {
		sig  unix.Signal
		wait time.Duration
	}{{unix.SIGTERM, 10 * time.Second}, {unix.SIGKILL, 10 * time.Second}} {
		if err := unix.PidfdSendSignal(fd, step.sig, nil, 0); err != nil {
			if errors.Is(err, unix.ESRCH) {
				return nil
			}
			return fmt.Errorf("signal %d: %w", pid, err)
		}
		exited, err := waitExit(ctx, fd, step.wait)
		if err != nil || exited {
			return err
		}
	}
	return cloud.Mark(fmt.Errorf("process %d did not exit after SIGKILL", pid), cloud.ErrNotYet)
}

// waitExit waits until the process behind pidfd exits (it becomes
// readable), d passes, or ctx is done.
func waitExit(ctx context.Context, pidfd int, d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false, fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}

// stopProcessesIn kills every process working in dir: its root (a chroot),
// its working directory or one of its arguments lies in dir. A build's
// tools (mmdebstrap, its hooks, the commands they run in the chroot) do not
// all die with kiln, and one still writing would race the removal of dir.
// It returns once none is left, or fails after a minute.
func stopProcessesIn(ctx context.Context, dir string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		pids := processesIn(dir)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			unix.Kill(pid, unix.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still work in %s", pids, dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// processesIn lists the live processes working in dir, other than kiln.
func processesIn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	in := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		base := filepath.Join("/proc", e.Name())
		hit := false
		for _, link := range []string{"root", "cwd"} {
			if target, err := os.Readlink(filepath.Join(base, link)); err == nil && in(target) {
				hit = true
			}
		}
		if args, err := os.ReadFile(filepath.Join(base, "cmdline")); err == nil && !hit {
			for _, a := range strings.Split(string(args), "\x00") {
				if in(a) {
					hit = true
					break
				}
			}
		}
		if p, err := readProc(pid); hit && err == nil && p.alive() {
			pids = append(pids, pid)
		}
	}
	return pids
}
