package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/report"
)

func newValidateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check kiln.yaml and every channel manifest",
		Long: `validate reads kiln.yaml and the manifest of every channel and reports every
problem at once as FILE:LINE:COL: FIELD: PROBLEM. Exit 0 when all is valid,
2 otherwise (with -o json the problems are a kiln.error/v1 document on
stderr). It changes nothing.`,
		Example: `  kiln validate
  kiln validate -c ../images/kiln.yaml -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(g)
		},
	}
}

func runValidate(g *globalOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	r := report.Validate{Schema: report.SchemaValidate, Config: cfg.Path, Backend: cfg.Backend.Type, UseCases: len(cfg.UseCases), Regions: len(cfg.Regions)}
	var errs []error
	for _, ch := range cfg.ChannelNames() {
		path, err := cfg.ManifestPath(ch)
		if err != nil {
			return err
		}
		st := report.ManifestStatus{Channel: ch, Path: path}
		m, err := channel.LoadFile(cfg, path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			errs = append(errs, err)
		default:
			st.Exists = true
			st.Entries = len(m.Entries())
		}
		r.Manifests = append(r.Manifests, st)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if g.json() {
		return g.write(r)
	}
	fmt.Fprintf(g.streams.out, "ok  %s: %d use cases, %d regions, backend %s\n", cfg.Path, r.UseCases, r.Regions, cfg.Backend.Type)
	for _, m := range r.Manifests {
		if m.Exists {
			fmt.Fprintf(g.streams.out, "ok  %s: channel %s, %d entries\n", m.Path, m.Channel, m.Entries)
		} else {
			fmt.Fprintf(g.streams.out, "--  %s: channel %s, not written yet\n", m.Path, m.Channel)
		}
	}
	return nil
}
