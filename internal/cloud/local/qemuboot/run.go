package qemuboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// pollInterval is how often the console log is read.
const pollInterval = 100 * time.Millisecond

// Run boots s.Disk, runs s.Tests in it and reports the outcome. A failed
// test, a kernel panic, a guest that powers off without a result and a
// timeout are all Results with Passed false; the error is for a boot that
// could not happen (bad input, qemu failing to start or dying).
func Run(ctx context.Context, s Spec) (Result, error) {
	s, err := s.normalize()
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(s.WorkDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("work dir: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.LogPath), 0o755); err != nil {
		return Result{}, fmt.Errorf("log dir: %w", err)
	}
	if err := os.Remove(s.LogPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Result{}, err
	}
	accel := s.Accel
	if accel == "auto" {
		accel = ResolveAccel(ctx, accel)
		s.Log.Info("accelerator probed", "accel", accel)
	}
	args, err := prepare(ctx, s, accel)
	if err != nil {
		return Result{}, err
	}
	return boot(ctx, s, accel, args)
}

// prepare writes what qemu needs into WorkDir and returns its arguments:
// the Machine's, made fresh, for a guest that must not reboot.
func prepare(ctx context.Context, s Spec, accel string) ([]string, error) {
	m := Machine{
		Name: "kiln-boot-test", Disk: s.Disk, WorkDir: s.WorkDir, LogPath: s.LogPath,
		Accel: accel, Memory: s.Memory, CPUs: s.CPUs, OVMFCode: s.OVMFCode, OVMFVars: s.OVMFVars,
	}
	args, err := m.Prepare(ctx, true)
	if err != nil {
		return nil, err
	}
	args = append(args, "-no-reboot", "-pidfile", filepath.Join(s.WorkDir, "qemu.pid"))
	if len(s.Tests) > 0 {
		payload := filepath.Join(s.WorkDir, "tests.tar")
		if err := writePayload(payload, s.Tests, s.TestTimeout); err != nil {
			return nil, fmt.Errorf("test archive: %w", err)
		}
		args = append(args, "-fw_cfg", "name=opt/kiln/test,file="+qemuPath(payload))
	}
	return args, nil
}

// boot runs qemu and watches the console until a verdict, qemu's exit or
// the timeout.
func boot(ctx context.Context, s Spec, accel string, args []string) (Result, error) {
	res := Result{Accel: accel}
	cmd := exec.Command("qemu-system-x86_64", args...)
	// On a KVM internal error qemu stops the guest and waits for a monitor
	// that is not there: watch for it instead of waiting for the timeout.
	kvmFailed := make(chan struct{})
	var once sync.Once
	stderr := &watchBuffer{tailBuffer: tailBuffer{max: 8 << 10}, word: kvmInternalError,
		seen: func() { once.Do(func() { close(kvmFailed) }) }}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// qemu dies with kiln rather than running on unwatched.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start qemu: %w", err)
	}
	s.Log.Info("qemu started", "pid", cmd.Process.Pid, "accel", accel, "log", s.LogPath)
	if s.OnStart != nil {
		s.OnStart(cmd.Process.Pid)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill := func() error {
		cmd.Process.Kill()
		return <-exited
	}

	log := &logReader{path: s.LogPath}
	con := &console{perTest: s.TestTimeout}
	timeout := time.NewTimer(s.Timeout)
	defer timeout.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			kill()
			return res, fmt.Errorf("boot test of %s: %w", s.Disk, ctx.Err())

		case <-kvmFailed:
			kill()
			return res, fmt.Errorf("qemu: the guest stopped with a %s (KVM does not work here; use accel tcg or auto): %s",
				kvmInternalError, strings.TrimSpace(stderr.String()))

		case <-timeout.C:
			kill()
			// A result written just before the deadline still counts.
			if v, ok := log.verdict(con, true); ok {
				return finish(res, v, start), nil
			}
			res.Duration = time.Since(start)
			res.Reason = fmt.Sprintf("timed out after %s waiting for the test marker", s.Timeout)
			return res, nil

		case err := <-exited:
			res.Duration = time.Since(start)
			if v, ok := log.verdict(con, true); ok {
				return finish(res, v, start), nil
			}
			if err != nil {
				return res, fmt.Errorf("qemu: %v: %s", err, strings.TrimSpace(stderr.String()))
			}
			res.Reason = "guest powered off without a result marker"
			return res, nil

		case <-tick.C:
			v, ok := log.verdict(con, false)
			if !ok {
				continue
			}
			// The verdict is in: qemu goes at once. The agent would power
			// the guest off, but the guest's writes go to a throwaway
			// overlay, and a clean shutdown under emulation costs a
			// second or more of the boot test.
			res = finish(res, v, start)
			kill()
			return res, nil
		}
	}
}

func finish(res Result, v verdict, start time.Time) Result {
	res.Passed, res.Reason, res.Duration = v.passed, v.reason, time.Since(start)
	return res
}

// logReader reads the console log as qemu appends to it.
type logReader struct {
	path string
	f    *os.File
}

// verdict reads what is new in the log and returns the first verdict in
// it; at the end (qemu gone) a last line without newline counts too.
func (l *logReader) verdict(c *console, end bool) (verdict, bool) {
	if l.f == nil {
		f, err := os.Open(l.path)
		if err != nil {
			return verdict{}, false // qemu has not made it yet
		}
		l.f = f
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := l.f.Read(buf)
		if n > 0 {
			if v, ok := c.feed(buf[:n]); ok {
				return v, true
			}
		}
		if err != nil || n == 0 {
			break
		}
	}
	if end {
		defer l.f.Close()
		return c.end()
	}
	return verdict{}, false
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// qemuPath escapes a path for a qemu option list, where commas separate
// options.
func qemuPath(p string) string { return strings.ReplaceAll(p, ",", ",,") }

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}
