package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/redact"
)

// streams are the command's standard input and outputs; tests replace them.
type streams struct {
	in       io.Reader
	out, err io.Writer
	// secrets masks secret values in out and err; commands add the
	// values they read.
	secrets *redact.Secrets
}

// globalOptions are the flags every command takes.
type globalOptions struct {
	configPath string
	output     string
	verbose    bool
	vars       varOptions // the commands that use variables set these flags

	streams *streams
	format  output.Format
}

func newRootCommand(s *streams) *cobra.Command {
	g := &globalOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "kiln",
		Short: "Build, test, replicate, publish and track machine images",
		Long: `kiln takes a machine image from a recipe to a published, multi-region release,
records it in per-channel manifests kept in git, and never leaves a resource behind.

Exit codes: 0 success or in sync, 1 findings (drift, leftovers, failed tests),
2 error (bad input, cloud error).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			f, err := output.ParseFormat(g.output)
			if err != nil {
				return usageError(err)
			}
			g.format = f
			return nil
		},
	}
	cmd.SetIn(s.in)
	cmd.SetOut(s.out)
	cmd.SetErr(s.err)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(err) })

	pf := cmd.PersistentFlags()
	pf.StringVarP(&g.configPath, "config", "c", "kiln.yaml", "path of the project's kiln.yaml")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log debug detail to stderr")

	cmd.AddCommand(
		newVersionCommand(g),
		newInitCommand(g),
		newValidateCommand(g),
		newManifestCommand(g),
		newRunsCommand(g),
		newBuildCommand(g),
		newTestCommand(g),
		newReplicateCommand(g),
		newPublishCommand(g),
		newReleaseCommand(g),
		newScheduleCommand(g),
		newAssetsCommand(g),
		newCleanupCommand(g),
		newDriftCommand(g),
		newReconcileCommand(g),
		newPromoteCommand(g),
		newRollbackCommand(g),
		newPruneCommand(g),
	)
	return cmd
}

// usageError marks an error in how kiln was called (exit 2, like any error,
// but worth telling apart in tests).
type usageErr struct{ err error }

func (e *usageErr) Error() string { return e.err.Error() }
func (e *usageErr) Unwrap() error { return e.err }

func usageError(err error) error { return &usageErr{err: err} }

// loadConfig reads the project's kiln.yaml.
func (g *globalOptions) loadConfig() (*config.Config, error) {
	return config.Load(g.configPath)
}

// logger returns the logger for a command: text on stderr, debug with -v.
func (g *globalOptions) logger() *slog.Logger {
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(g.streams.err, &slog.HandlerOptions{Level: level}))
}

// tty reports whether stderr is a terminal with a size (live progress) or
// not (log lines). A pseudo-terminal nobody sized has 0 rows, on which live
// lines would not show at all.
func (g *globalOptions) tty() bool {
	out := g.streams.err
	if u, ok := out.(interface{ Unwrap() io.Writer }); ok {
		out = u.Unwrap()
	}
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	w, h, err := term.GetSize(int(f.Fd()))
	return err == nil && w > 0 && h > 0
}

// projectDir is the directory of the config file.
func (g *globalOptions) projectDir() string {
	return filepath.Dir(g.configPath)
}
