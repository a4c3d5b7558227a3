package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/redact"
	"github.com/kiln-images/kiln/internal/report"
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

func newRootCommand(g *globalOptions) *cobra.Command {
	s := g.streams
	cmd := &cobra.Command{
		Use:   "kiln",
		Short: "Build, test, replicate, publish and track machine images",
		Long: `kiln takes a machine image from a recipe to a published, multi-region release,
records it in per-channel manifests kept in git, and never leaves a resource behind.

The project is the kiln.yaml given with -c (a file, or a directory holding
kiln.yaml), else $KILN_CONFIG, else the first kiln.yaml found in the current
directory or its parents, as git finds its repository.

Exit codes: 0 success, in sync, or a plan (without --apply) printed;
1 findings (drift, failed tests, failed gates, leftovers after --apply);
2 error (bad input, cloud error, interrupted).`,
		Example: `  kiln init demo && cd demo
  kiln release debian-sandbox
  kiln manifest show
  kiln drift -o json`,
		Version:       versionLine(),
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
	cmd.SetVersionTemplate("kiln {{.Version}}\n")
	cmd.SetFlagErrorFunc(flagError)

	pf := cmd.PersistentFlags()
	pf.StringVarP(&g.configPath, "config", "c", "", "the project: a kiln.yaml file or its directory (default: $KILN_CONFIG, else found in . or a parent)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log debug detail to stderr")
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))

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
		newDeployCommand(g), newVerifyCommand(g), newStatusCommand(g), newDeploymentsCommand(g),
		newLockCommand(g), newUnlockCommand(g), newApproveCommand(g), newDisableCommand(g), newEnableCommand(g),
		newCICommand(g),
		newAdoptCommand(g),
		newIndexCommand(g),
		newServeCommand(g),
		newDistributionCommand(g),
		newDestroyCommand(g),
	)
	return cmd
}

// invalidFlag is pflag's message for a value a flag does not take.
var invalidFlag = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: (.*)$`)

// flagError words pflag's errors as kiln's: the command, the flag and the
// value, without Go's parser messages.
func flagError(c *cobra.Command, err error) error {
	msg := err.Error()
	if m := invalidFlag.FindStringSubmatch(msg); m != nil {
		flag, value, why := m[2], m[1], m[3]
		if _, after, ok := strings.Cut(flag, ", "); ok {
			flag = after // "-c, --config": the long name
		}
		if strings.Contains(why, "strconv.") {
			why = "not a number"
		}
		msg = fmt.Sprintf("%s %q: %s", flag, value, why)
	}
	return argError(c, "%s", msg)
}

// usageError marks an error in how kiln was called (exit 2, like any error,
// but worth telling apart in tests).
type usageErr struct{ err error }

func (e *usageErr) Error() string { return e.err.Error() }
func (e *usageErr) Unwrap() error { return e.err }

func usageError(err error) error { return &usageErr{err: err} }

// configFileName is the name kiln looks for in a directory.
const configFileName = "kiln.yaml"

// errNoProject is matched by the error of a command run where no project
// is found; it also matches fs.ErrNotExist.
var errNoProject = errors.New("no kiln project found")

type noProjectError struct{ dir string }

func (e *noProjectError) Error() string {
	return fmt.Sprintf("no %s in %s or any parent directory: give the project with -c DIR or -c FILE (or set KILN_CONFIG), or make one with kiln init",
		configFileName, e.dir)
}
func (e *noProjectError) Is(target error) bool {
	return target == errNoProject || target == fs.ErrNotExist
}

// configFile finds the project's kiln.yaml: -c (a file, or a directory
// holding kiln.yaml), else $KILN_CONFIG (the same), else the first
// kiln.yaml in the working directory or one of its parents.
func (g *globalOptions) configFile() (string, error) {
	given := g.configPath
	if given == "" {
		given = os.Getenv("KILN_CONFIG")
	}
	if given != "" {
		if st, err := os.Stat(given); err == nil && st.IsDir() {
			return filepath.Join(given, configFileName), nil
		}
		return given, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find %s: the working directory: %w", configFileName, err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		path := filepath.Join(dir, configFileName)
		if st, err := os.Stat(path); err == nil && !st.IsDir() {
			if dir == wd {
				return configFileName, nil // as given: messages name it relative
			}
			return path, nil
		}
		if filepath.Dir(dir) == dir {
			return "", &noProjectError{dir: wd}
		}
	}
}

// loadConfig finds and reads the project's kiln.yaml.
func (g *globalOptions) loadConfig() (*config.Config, error) {
	path, err := g.configFile()
	if err != nil {
		return nil, err
	}
	return config.Load(path)
}

// logger returns the logger for a command: on stderr, debug with -v; text
// lines, or with -o json JSON lines, so that stderr holds only JSON.
func (g *globalOptions) logger() *slog.Logger {
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if g.output == string(output.JSON) {
		return slog.New(slog.NewJSONHandler(g.streams.err, opts))
	}
	return slog.New(slog.NewTextHandler(g.streams.err, opts))
}

// json reports whether the command prints JSON.
func (g *globalOptions) json() bool { return g.format == output.JSON }

// write prints a report document on stdout.
func (g *globalOptions) write(v any) error { return report.Write(g.streams.out, v) }

// note tells the person at the terminal something on stderr: a line of
// text, or with -o json a log line.
func (g *globalOptions) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if g.json() {
		g.logger().Info(msg)
		return
	}
	fmt.Fprintln(g.streams.err, msg)
}

// planOnly is the note of a plan: a mutating command run without --apply.
func (g *globalOptions) planOnly(what string) {
	g.note("nothing was changed; rerun with --apply to %s", what)
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

// projectDir is the project's directory: that of its kiln.yaml, or the
// working directory where there is none.
func (g *globalOptions) projectDir() string {
	path, err := g.configFile()
	if err != nil {
		return "."
	}
	return filepath.Dir(path)
}
