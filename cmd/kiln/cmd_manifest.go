package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/report"
)

func newManifestCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Validate, show and compare channel manifests",
		Example: `  kiln manifest show --channel stable
  kiln manifest diff latest stable
  kiln manifest validate manifests/*.json`,
		Args: noArgs,
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
accepts the id and region forms of both backends. Every problem is reported,
as FILE:LINE:COL: PATH: PROBLEM (with -o json: a kiln.error/v1 document on
stderr listing each). Exit 0 when all are valid, 2 otherwise.`,
		Example: `  kiln manifest validate
  kiln manifest validate manifests/stable.json -o json`,
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
	}
	rep := report.ManifestValidate{Schema: report.SchemaManifestValidate}
	var errs []error
	for _, f := range files {
		m, err := manifest.LoadValid(f, rules)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Files = append(rep.Files, report.ManifestCheck{Path: f, Entries: len(m.Entries())})
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if g.json() {
		return g.write(rep)
	}
	if len(rep.Files) == 0 {
		fmt.Fprintf(g.streams.out, "no channel manifest written yet (channels: %s)\n", joinNames(cfg.ChannelNames()))
		return nil
	}
	for _, f := range rep.Files {
		fmt.Fprintf(g.streams.out, "ok  %s: %d entries\n", f.Path, f.Entries)
	}
	return nil
}

type manifestShowOptions struct{ channel string }

func newManifestShowCommand(g *globalOptions) *cobra.Command {
	var o manifestShowOptions
	cmd := &cobra.Command{
		Use:   "show [--channel C]",
		Short: "Print the entries of channel manifests",
		Long: `show prints every entry of every channel manifest (or of one channel): use
case, region, architecture, image id and name, public, deprecation time.`,
		Example: `  kiln manifest show
  kiln manifest show --channel stable -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runManifestShow(g, o)
		},
	}
	cmd.Flags().StringVar(&o.channel, "channel", "", "show only this channel (default: all)")
	completeChannels(g, cmd)
	return cmd
}

func runManifestShow(g *globalOptions, o manifestShowOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	channels := cfg.ChannelNames()
	if o.channel != "" {
		if _, err := cfg.ManifestPath(o.channel); err != nil {
			return usageError(fmt.Errorf("--channel: %w", err))
		}
		channels = []string{o.channel}
	}
	r, err := report.NewManifestShow(cfg, channels)
	if err != nil {
		return err
	}
	entries := 0
	for _, c := range r.Channels {
		entries += len(c.Manifest.Entries())
	}
	if g.json() {
		return g.write(r)
	}
	if entries == 0 {
		fmt.Fprintf(g.streams.out, "no entries: nothing published to %s yet (kiln release USE_CASE publishes to latest)\n", joinNames(channels))
		return nil
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
		Short: "Compare two manifests: channels, files or REF:PATH from git",
		Long: `diff compares two manifests entry by entry and field by field. Each of A and B
is a channel of the project (its manifest in the working tree), a file, or
REF:PATH read from the git repository of the project directory (PATH may be
a channel's name too), e.g. v1.2.0:manifests/stable.json or v1.2.0:stable.
Exit 0 when they are equal, 1 when they differ, 2 on error.`,
		Example: `  kiln manifest diff latest stable
  kiln manifest diff v1.2.0:stable stable
  kiln manifest diff old.json manifests/latest.json -o json`,
		Args:              exactArgs("A", "B"),
		ValidArgsFunction: completeManifestArgs(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runManifestDiff(cmd.Context(), g, args[0], args[1])
		},
	}
}

// completeManifestArgs completes A and B with the project's channels (and
// files).
func completeManifestArgs(g *globalOptions) cobra.CompletionFunc {
	channels := g.complete(channelNames)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) >= 2 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, _ := channels(cmd, args, toComplete)
		return c, cobra.ShellCompDirectiveDefault
	}
}

// manifestSource reads a diff argument: a channel name (when no file has
// that name), a file, or REF:PATH where PATH may be a channel's name. It
// says whether the argument named a channel.
func manifestSource(cfg *config.Config, arg string) (manifest.Source, bool) {
	s := manifest.ParseSource(arg)
	if cfg == nil || !slices.Contains(cfg.ChannelNames(), s.Path) {
		return s, false
	}
	if s.Ref == "" {
		if _, err := os.Lstat(arg); err == nil {
			return s, false // a file of that name wins
		}
	}
	path, err := cfg.ManifestPath(s.Path)
	if err != nil {
		return s, false
	}
	return manifest.Source{Ref: s.Ref, Path: path}, true
}

func runManifestDiff(ctx context.Context, g *globalOptions, a, b string) error {
	cfg, err := g.loadConfig()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err // a project that is there must be valid
	}
	repo := g.projectDir()
	read := func(arg string) (manifest.Manifest, error) {
		src, isChannel := manifestSource(cfg, arg)
		data, err := manifest.Read(ctx, repo, src)
		if isChannel && errors.Is(err, fs.ErrNotExist) {
			return manifest.Manifest{}, nil // a channel never written is empty
		}
		if err != nil {
			return nil, explainGit(err, repo, "manifest diff "+arg)
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
	if g.json() {
		if err := g.write(report.ManifestDiff{Schema: report.SchemaManifestDiff, A: a, B: b, Changes: changes}); err != nil {
			return err
		}
	} else if len(changes) == 0 {
		fmt.Fprintf(g.streams.out, "no differences: %s and %s have the same entries\n", a, b)
	} else if err := manifest.FormatDiff(g.streams.out, changes); err != nil {
		return err
	}
	if len(changes) > 0 {
		return findings("")
	}
	return nil
}

func joinNames(names []string) string {
	switch len(names) {
	case 0:
		return "no channel"
	case 1:
		return "channel " + names[0]
	}
	return "channels " + strings.Join(names, ", ")
}
