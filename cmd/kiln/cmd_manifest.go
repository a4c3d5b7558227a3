package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/output"
)

func newManifestCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Validate, show and compare channel manifests",
	}
	cmd.AddCommand(newManifestValidateCommand(g), newManifestShowCommand(g), newManifestDiffCommand(g))
	return cmd
}

func newManifestValidateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE...]",
		Short: "Check manifest files (default: every channel's manifest)",
		Long: `validate checks the shape and values of manifest files. Without arguments it
checks every channel manifest of the project. With files and no kiln.yaml it
accepts the id and region forms of both backends.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runManifestValidate(g, args)
		},
	}
}

func runManifestValidate(g *globalOptions, files []string) error {
	rules := channel.AnyRules()
	cfg, err := g.loadConfig()
	switch {
	case err == nil:
		rules = channel.Rules(cfg.Backend.Type)
	case len(files) == 0 || !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if len(files) == 0 {
		for _, ch := range cfg.ChannelNames() {
			path, err := cfg.ManifestPath(ch)
			if err != nil {
				return err
			}
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				continue
			}
			files = append(files, path)
		}
		if len(files) == 0 {
			fmt.Fprintln(g.streams.out, "no channel manifest written yet")
			return nil
		}
	}
	var errs []error
	for _, f := range files {
		m, err := manifest.LoadValid(f, rules)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(g.streams.out, "ok  %s: %d entries\n", f, len(m.Entries()))
	}
	return errors.Join(errs...)
}

type manifestShowOptions struct{ channel string }

func newManifestShowCommand(g *globalOptions) *cobra.Command {
	var o manifestShowOptions
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the entries of channel manifests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runManifestShow(g, o)
		},
	}
	cmd.Flags().StringVar(&o.channel, "channel", "", "show only this channel (default: all)")
	return cmd
}

type manifestShowReport struct {
	Schema   string          `json:"schema"`
	Channels []channelReport `json:"channels"`
}

type channelReport struct {
	Channel  string            `json:"channel"`
	Path     string            `json:"path"`
	Manifest manifest.Manifest `json:"manifest"`
}

func runManifestShow(g *globalOptions, o manifestShowOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	channels := cfg.ChannelNames()
	if o.channel != "" {
		if _, err := cfg.ManifestPath(o.channel); err != nil {
			return usageError(err)
		}
		channels = []string{o.channel}
	}
	r := manifestShowReport{Schema: "kiln.manifest-show/v1"}
	for _, ch := range channels {
		path, _ := cfg.ManifestPath(ch)
		m, err := channel.Load(cfg, ch)
		if err != nil {
			return err
		}
		r.Channels = append(r.Channels, channelReport{Channel: ch, Path: path, Manifest: m})
	}
	if g.format == output.JSON {
		return output.WriteJSON(g.streams.out, r)
	}
	t := output.NewTable(g.streams.out, "CHANNEL", "USE CASE", "REGION", "ARCH", "ID", "NAME", "PUBLIC", "DEPRECATION")
	for _, c := range r.Channels {
		for _, e := range c.Manifest.Entries() {
			t.Row(c.Channel, e.UseCase, e.Region, e.Architecture, e.ID, e.Name, fmt.Sprint(e.Public), e.DeprecationTime)
		}
	}
	return t.Flush()
}

func newManifestDiffCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "diff A B",
		Short: "Compare two manifests, files or REF:PATH from git",
		Long: `diff compares two manifests entry by entry and field by field. Each of A and B
is a file or REF:PATH read from the git repository of the project directory,
e.g. v1.2.0:manifests/stable.json. Exit 0 when they are equal, 1 when they
differ, 2 on error.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runManifestDiff(cmd, g, args[0], args[1])
		},
	}
}

type manifestDiffReport struct {
	Schema  string            `json:"schema"`
	A       string            `json:"a"`
	B       string            `json:"b"`
	Changes []manifest.Change `json:"changes"`
}

func runManifestDiff(cmd *cobra.Command, g *globalOptions, a, b string) error {
	ctx := cmd.Context()
	repo := g.projectDir()
	read := func(arg string) (manifest.Manifest, error) {
		data, err := manifest.Read(ctx, repo, manifest.ParseSource(arg))
		if err != nil {
			return nil, err
		}
		return manifest.Decode(arg, data)
	}
	ma, err := read(a)
	if err != nil {
		return err
	}
	mb, err := read(b)
	if err != nil {
		return err
	}
	changes := manifest.Diff(ma, mb)
	if g.format == output.JSON {
		if err := output.WriteJSON(g.streams.out, manifestDiffReport{Schema: "kiln.manifest-diff/v1", A: a, B: b, Changes: changes}); err != nil {
			return err
		}
	} else if err := manifest.FormatDiff(g.streams.out, changes); err != nil {
		return err
	}
	if len(changes) > 0 {
		return findings("")
	}
	return nil
}
