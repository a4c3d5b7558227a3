// Command kiln builds, tests, replicates, publishes and tracks machine images.
//
// Exit codes, the same for every command:
//
//	0  success, in sync, nothing left
//	1  findings: drift, leftovers, failed tests, failed gates
//	2  error: bad input, a cloud error, an interrupted run
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kiln-images/kiln/internal/cloud/aws"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

const (
	exitOK       = 0
	exitFindings = 1
	exitError    = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRootCommand(&streams{in: stdin, out: stdout, err: stderr})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return exitCode(err, stderr)
}

// exitCode turns a command's error into the process exit code, printing it.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var f *findingsError
	if errors.As(err, &f) {
		if f.msg != "" {
			fmt.Fprintln(stderr, f.msg)
		}
		return exitFindings
	}
	// Errors about input files already start with FILE:LINE:COL.
	var ce config.Errors
	var me manifest.Errors
	switch {
	case errors.As(err, &ce) || errors.As(err, &me):
		fmt.Fprintln(stderr, err.Error())
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "kiln: interrupted: "+interruptedText(err.Error()))
	case errors.As(err, new(*aws.UnreachableError)):
		// kiln's account of what it was doing, then the reason, without
		// the SDK's wrapping in between.
		var ue *aws.UnreachableError
		errors.As(err, &ue)
		msg := err.Error()
		if j := strings.Index(msg, "operation error "); j >= 0 {
			msg = msg[:j] + ue.Error()
		}
		fmt.Fprintln(stderr, "kiln: "+msg)
	default:
		fmt.Fprintln(stderr, "kiln: "+err.Error())
	}
	return exitError
}

// interruptedText says in kiln's words what a signal stopped: the SDK's
// "operation error EC2: RunInstances, https response error …: context
// canceled" and Go's "context canceled" become "interrupted", keeping
// kiln's own account of what was being done.
func interruptedText(msg string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		if j := strings.Index(l, "operation error "); j >= 0 {
			l = strings.TrimRight(l[:j], ": ") + ": interrupted"
		}
		l = strings.ReplaceAll(l, "context canceled", "interrupted")
		for strings.Contains(l, "interrupted: interrupted") {
			l = strings.ReplaceAll(l, "interrupted: interrupted", "interrupted")
		}
		lines[i] = strings.TrimPrefix(l, ": ")
	}
	return strings.Join(lines, "\n")
}

// findingsError means the command ran correctly and found problems: drift,
// leftovers, failed tests. It maps to exit code 1.
type findingsError struct{ msg string }

func (e *findingsError) Error() string {
	if e.msg == "" {
		return "findings"
	}
	return e.msg
}

// findings returns a findingsError with a formatted message (may be empty
// when the report already said everything).
func findings(format string, args ...any) error {
	return &findingsError{msg: fmt.Sprintf(format, args...)}
}
