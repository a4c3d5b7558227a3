package qemuboot

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Defaults applied to zero Spec fields.
const (
	DefaultTimeout = 10 * time.Minute
	DefaultMemory  = 1024 // MiB
	// DefaultCPUs, or the host's CPUs if fewer. Two, because under
	// software emulation each virtual CPU is a host thread (qemu's
	// multi-threaded TCG) and systemd starts units in parallel: in a trial
	// on a 2-core host the example image's boot test took 29 s with two and
	// 35 s with one (docs/design-notes.md).
	DefaultCPUs  = 2
	DefaultAccel = "auto"
	// Debian's ovmf package.
	DefaultOVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	DefaultOVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// defaultCPUs is the number of virtual CPUs a boot test gets on a host
// with host CPUs.
func defaultCPUs(host int) int { return max(1, min(DefaultCPUs, host)) }

// Spec describes one boot test.
type Spec struct {
	// Disk is the raw disk image to boot. It is never modified.
	Disk string
	// Tests are absolute paths of test scripts, run in this order; their
	// base names must differ. None: the image boots as it would anywhere,
	// the agent does nothing, and the boot ends only with Timeout.
	Tests []string
	// WorkDir holds the overlay, the firmware variables and the test
	// archive; the caller owns and removes it.
	WorkDir string
	// LogPath is where the serial console log goes; it is kept.
	LogPath string
	// Timeout bounds the whole boot; default DefaultTimeout.
	Timeout time.Duration
	// TestTimeout bounds each test inside the guest; default Timeout.
	TestTimeout time.Duration
	// Accel is "auto" (KVM if ProbeKVM says it works, else TCG), "kvm" or
	// "tcg"; default auto.
	Accel string
	// Memory is the guest's memory in MiB; default DefaultMemory.
	Memory int
	// CPUs is the guest's number of virtual CPUs; default DefaultCPUs or
	// the host's number of CPUs, whichever is smaller.
	// Under software emulation each is a host thread (qemu's multi-threaded
	// TCG), so more than the host's free cores only slows the boot.
	CPUs int
	// OnStart is called with qemu's pid once it runs, so that the caller
	// can record it (and kill it after a crash of its own). May be nil.
	OnStart func(pid int)
	// OVMFCode and OVMFVars are the firmware and its variable store
	// template; defaults DefaultOVMFCode and DefaultOVMFVars.
	OVMFCode, OVMFVars string
	Log                *slog.Logger // may be nil
}

// Result is the outcome of a boot test.
type Result struct {
	Passed bool
	// Reason says why it did not pass: the failed test and its status, a
	// kernel panic, no marker, or the timeout.
	Reason   string
	Duration time.Duration // from qemu's start to the outcome
	Accel    string        // "kvm" or "tcg"
}

// testNameRE is what a test's base name may look like: it travels in a
// line of the form "FAIL <test> <status>".
var testNameRE = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)

// normalize applies defaults and checks s. Errors name the field and value
// and match cloud.ErrInvalid.
func (s Spec) normalize() (Spec, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if fi, err := os.Stat(s.Disk); err != nil {
		bad("disk %q: %v", s.Disk, err)
	} else if !fi.Mode().IsRegular() {
		bad("disk %q: not a regular file", s.Disk)
	}
	names := map[string]string{}
	for _, t := range s.Tests {
		name := filepath.Base(t)
		switch {
		case !filepath.IsAbs(t):
			bad("test %q: want an absolute path", t)
		case !testNameRE.MatchString(name):
			bad("test %q: the name %q may hold only letters, digits and . _ + -", t, name)
		case names[name] != "":
			bad("test %q: same name as %q", t, names[name])
		default:
			names[name] = t
			if fi, err := os.Stat(t); err != nil {
				bad("test %q: %v", t, err)
			} else if !fi.Mode().IsRegular() {
				bad("test %q: not a regular file", t)
			}
		}
	}
	if s.WorkDir == "" {
		bad("work dir: empty")
	}
	if s.LogPath == "" {
		bad("log path: empty")
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	} else if s.Timeout < 0 {
		bad("timeout %v: must be positive", s.Timeout)
	}
	if s.TestTimeout == 0 {
		s.TestTimeout = s.Timeout
	} else if s.TestTimeout < time.Second {
		bad("test timeout %v: must be at least 1s", s.TestTimeout)
	}
	switch s.Accel {
	case "":
		s.Accel = DefaultAccel
	case "auto", "kvm", "tcg":
	default:
		bad("accel %q: want auto, kvm or tcg", s.Accel)
	}
	if s.Memory == 0 {
		s.Memory = DefaultMemory
	} else if s.Memory < 256 || s.Memory > 1<<20 {
		bad("memory %d MiB: want 256 to 1048576", s.Memory)
	}
	if s.CPUs == 0 {
		s.CPUs = defaultCPUs(runtime.NumCPU())
	} else if s.CPUs < 1 || s.CPUs > 64 {
		bad("cpus %d: want 1 to 64", s.CPUs)
	}
	if s.OVMFCode == "" {
		s.OVMFCode = DefaultOVMFCode
	}
	if s.OVMFVars == "" {
		s.OVMFVars = DefaultOVMFVars
	}
	for _, f := range []string{s.OVMFCode, s.OVMFVars} {
		if _, err := os.Stat(f); err != nil {
			bad("firmware %q: %v (package ovmf)", f, err)
		}
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if err := errors.Join(errs...); err != nil {
		return s, cloud.Mark(err, cloud.ErrInvalid)
	}
	return s, nil
}
