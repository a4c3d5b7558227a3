package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// failpoint kills kiln with SIGKILL at the Nth step boundary when
// KILN_FAILPOINT=N is set, so the crash-safety harness can stop a release
// at every point a real crash could. With KILN_FAILPOINT_LOG=FILE each
// boundary is appended to FILE, which tells the harness how many there are.
// Boundaries are journal steps (begin and end) and backend progress steps.
type failpoint struct {
	mu    sync.Mutex
	n     int
	at    int
	trace *os.File
}

func newFailpoint() (*failpoint, error) {
	fp := &failpoint{}
	if v := os.Getenv("KILN_FAILPOINT"); v != "" {
		at, err := strconv.Atoi(v)
		if err != nil || at < 1 {
			return nil, fmt.Errorf("KILN_FAILPOINT=%q: want a step number >= 1", v)
		}
		fp.at = at
	}
	if path := os.Getenv("KILN_FAILPOINT_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("KILN_FAILPOINT_LOG: %w", err)
		}
		fp.trace = f
	}
	return fp, nil
}

// hit marks one boundary.
func (fp *failpoint) hit(event string) {
	if fp == nil || (fp.at == 0 && fp.trace == nil) {
		return
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.n++
	if fp.trace != nil {
		fmt.Fprintf(fp.trace, "%d %s\n", fp.n, event)
		fp.trace.Sync()
	}
	if fp.n == fp.at {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// progress wraps a progress display so its steps are boundaries too.
type failpointProgress struct {
	fp   *failpoint
	next interface {
		Step(string) func(error)
	}
}

func (p failpointProgress) Step(name string) func(error) {
	p.fp.hit("progress " + name)
	return p.next.Step(name)
}
