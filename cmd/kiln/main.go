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
	"syscall"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/redact"
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

	// Every byte kiln prints passes the mask of the run's secret
	// variables, which fills as soon as they are read.
	secrets := &redact.Secrets{}
	out, errw := redact.NewWriter(stdout, secrets), redact.NewWriter(stderr, secrets)
	defer out.Flush()
	defer errw.Flush()
	root := newRootCommand(&streams{in: stdin, out: out, err: errw, secrets: secrets})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return exitCode(err, errw)
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
	if errors.As(err, &ce) || errors.As(err, &me) {
		fmt.Fprintln(stderr, err.Error())
	} else {
		fmt.Fprintln(stderr, "kiln: "+err.Error())
	}
	return exitError
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
