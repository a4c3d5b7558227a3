package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// failpoint kills kiln with SIGKILL at a step boundary, so the crash-safety
// harness can stop a release at every point a real crash could:
// KILN_FAILPOINT=N kills at the Nth boundary, KILN_FAILPOINT=~TEXT at the
// first whose description contains TEXT. With KILN_FAILPOINT_LOG=FILE each
// boundary is appended to FILE, which tells the harness how many there are.
// Boundaries are journal steps ("begin|end PHASE STEP REGION") and backend
// progress steps ("progress LABEL").
type failpoint struct {
	mu    sync.Mutex
	n     int
	at    int
	match string
	trace *os.File
}

func newFailpoint() (*failpoint, error) {
	fp := &failpoint{}
	if v, ok := strings.CutPrefix(os.Getenv("KILN_FAILPOINT"), "~"); ok && v != "" {
		fp.match = v
	} else if v := os.Getenv("KILN_FAILPOINT"); v != "" {
		at, err := strconv.Atoi(v)
		if err != nil || at < 1 {
			return nil, fmt.Errorf("KILN_FAILPOINT=%q: want a step number >= 1 or ~TEXT", v)
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
	if fp == nil || (fp.at == 0 && fp.match == "" && fp.trace == nil) {
		return
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.n++
	if fp.trace != nil {
		fmt.Fprintf(fp.trace, "%d %s\n", fp.n, event)
		fp.trace.Sync()
	}
	if fp.n == fp.at || (fp.match != "" && strings.Contains(event, fp.match)) {
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
