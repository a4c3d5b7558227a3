package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/report"
)

func newVersionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kiln's version, commit and Go version",
		Long:  `version prints the version of this kiln binary; kiln --version prints the same line.`,
		Example: `  kiln version
  kiln --version
  kiln version -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(g)
		},
	}
}

func versionReport() report.Version {
	r := report.Version{
		Schema:    report.SchemaVersion,
		Version:   version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if r.Commit == "" {
		r.Commit = vcsRevision()
	}
	if r.Version == "dev" {
		// go install github.com/kiln-images/kiln/cmd/kiln@v1.4.0 records
		// the module's version.
		if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
			r.Version = info.Main.Version
		}
	}
	return r
}

// versionLine is the version as kiln version and kiln --version print it
// (without the leading "kiln ").
func versionLine() string {
	r := versionReport()
	return fmt.Sprintf("%s (commit %s, %s, %s)", r.Version, r.Commit, r.GoVersion, r.Platform)
}

func runVersion(g *globalOptions) error {
	if g.json() {
		return g.write(versionReport())
	}
	_, err := fmt.Fprintf(g.streams.out, "kiln %s\n", versionLine())
	return err
}

// vcsRevision is the commit the binary was built from, when the Go toolchain
// recorded it.
func vcsRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return "unknown"
}
