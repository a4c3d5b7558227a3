package debimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// discard is the logger for runs nobody needs to hear about.
var discard = slog.New(slog.DiscardHandler)

// sbinDirs are searched after PATH: a normal user's PATH often lacks them,
// and sfdisk, mkfs.* and chroot live there.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// lookTool finds a program in PATH or the sbin directories.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := d + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or %s", name, strings.Join(sbinDirs, ", "))
}

// toolEnv is the environment for the tools run: the caller's, with the
// sbin directories on PATH (mmdebstrap's hooks call chroot).
func toolEnv(extra ...string) []string {
	env := os.Environ()
	path := os.Getenv("PATH")
	for _, d := range sbinDirs {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			path += ":" + d
		}
	}
	env = append(env, "PATH="+strings.TrimPrefix(path, ":"))
	return append(env, extra...)
}

// command is one program run.
type command struct {
	name  string
	args  []string
	env   []string  // extra variables
	stdin io.Reader // nil: /dev/null
	// stream, when set, receives the combined output as it comes; the
	// output is then not kept for the error message.
	stream io.Writer
	// outOnly returns standard output alone; standard error goes only
	// into the error message.
	outOnly bool
	// term makes cancellation send SIGTERM (with a grace period) instead of
	// SIGKILL, for programs that clean up after themselves (mmdebstrap).
	term bool
}

// outputTail is how many lines of output an error keeps.
const outputTail = 20

// run runs c and returns its combined output. A failure's error names the
// program and carries the last lines of its output.
func run(ctx context.Context, log *slog.Logger, c command) ([]byte, error) {
	path, err := lookTool(c.name)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, c.args...)
	cmd.Env = toolEnv(c.env...)
	cmd.Stdin = c.stdin
	var out, errOut bytes.Buffer
	switch {
	case c.stream != nil:
		cmd.Stdout, cmd.Stderr = c.stream, c.stream
	case c.outOnly:
		cmd.Stdout, cmd.Stderr = &out, &errOut
	default:
		cmd.Stdout, cmd.Stderr = &out, &out
	}
	sig := syscall.SIGKILL
	if c.term {
		sig = syscall.SIGTERM
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = time.Minute
	}
	// Should kiln die, its tools die with it instead of writing on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: sig}
	log.Debug("run", "cmd", c.name, "args", c.args)
	start := time.Now()
	err = cmd.Run()
	log.Debug("ran", "cmd", c.name, "took", time.Since(start).Round(time.Millisecond), "err", err)
	if err != nil {
		if ctx.Err() != nil {
			return out.Bytes(), fmt.Errorf("%s: %w", c.name, ctx.Err())
		}
		msg := fmt.Sprintf("%s: %v", c.name, err)
		diag := out.String()
		if c.outOnly {
			diag = errOut.String()
		}
		if t := tail(diag, outputTail); t != "" {
			msg += ":\n" + t
		}
		return out.Bytes(), errors.New(msg)
	}
	return out.Bytes(), nil
}

// tail returns the last n lines of s, without a trailing newline.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// quote makes s one word for sh and for mmdebstrap's special hooks (which
// split with Perl's shellwords); both take POSIX single quotes.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
