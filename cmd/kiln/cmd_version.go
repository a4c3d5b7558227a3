package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/output"
)

func newVersionCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kiln's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(g)
		},
	}
}

type versionReport struct {
	Schema    string `json:"schema"`
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func runVersion(g *globalOptions) error {
	r := versionReport{
		Schema:    "kiln.version/v1",
		Version:   version,
		Commit:    commit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if r.Commit == "" {
		r.Commit = vcsRevision()
	}
	if g.format == output.JSON {
		return output.WriteJSON(g.streams.out, r)
	}
	_, err := fmt.Fprintf(g.streams.out, "kiln %s (commit %s, %s, %s)\n", r.Version, r.Commit, r.GoVersion, r.Platform)
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
