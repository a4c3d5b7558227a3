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

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/cloud/aws"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/localunit"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/redact"
	"github.com/kiln-images/kiln/internal/report"
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
	localunit.MaybeSupervise() // kiln is also the supervisor of local deployments' units
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
	g := &globalOptions{streams: &streams{in: stdin, out: out, err: errw, secrets: secrets}}
	root := newRootCommand(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && strings.HasPrefix(err.Error(), "unknown command ") {
		err = unknownCommand(root, args)
	}
	return exitCode(err, g)
}

// unknownCommand says so in kiln's words, with cobra's suggestions.
func unknownCommand(root *cobra.Command, args []string) error {
	parent, rest, _ := root.Find(args)
	if parent == nil {
		parent = root
	}
	name := ""
	for _, a := range rest {
		if !strings.HasPrefix(a, "-") {
			name = a
			break
		}
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if parent.SuggestionsMinimumDistance <= 0 {
		parent.SuggestionsMinimumDistance = 2
	}
	if parent != root {
		msg = fmt.Sprintf("%s: unknown command %q", parent.CommandPath(), name)
	}
	if s := parent.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError(fmt.Errorf("%s (%s --help lists the commands)", msg, parent.CommandPath()))
}

// exitCode turns a command's error into the process exit code, printing it
// on stderr: as text, or with -o json as a kiln.error/v1 document.
func exitCode(err error, g *globalOptions) int {
	if err == nil {
		return exitOK
	}
	code, msg := exitError, err.Error()
	var f *findingsError
	if errors.As(err, &f) {
		code, msg = exitFindings, f.msg
		if msg == "" {
			return code // the report said everything
		}
	}
	if code == exitError {
		msg = inKilnWords(err)
	}
	if g.output == string(output.JSON) {
		e := report.NewError(err, code)
		e.Message = msg
		report.WriteLine(g.streams.err, e)
		return code
	}
	// Errors about input files already start with FILE:LINE:COL.
	var ce config.Errors
	var me manifest.Errors
	if code == exitError && !errors.As(err, &ce) && !errors.As(err, &me) && !strings.HasPrefix(msg, "kiln ") {
		msg = "kiln: " + msg
	}
	fmt.Fprintln(g.streams.err, msg)
	return code
}

// inKilnWords is the message of an error that ends a command: an
// interrupt or an unreachable endpoint said in kiln's words, without the
// SDK's wrapping; other errors as they are.
func inKilnWords(err error) string {
	var ce config.Errors
	var me manifest.Errors
	var ue *aws.UnreachableError
	switch {
	case errors.As(err, &ce) || errors.As(err, &me):
		return err.Error()
	case errors.Is(err, context.Canceled):
		return "interrupted: " + interruptedText(err.Error())
	case errors.As(err, &ue):
		// kiln's account of what it was doing, then the reason.
		msg := err.Error()
		if j := strings.Index(msg, "operation error "); j >= 0 {
			msg = msg[:j] + ue.Error()
		}
		return msg
	}
	return err.Error()
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
