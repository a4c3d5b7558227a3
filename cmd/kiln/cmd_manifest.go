package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
		Use:   "manifest COMMAND",
		Short: "Validate, show and compare channel manifests",
		Example: `  kiln manifest show --channel stable
  kiln manifest diff latest stable
  kiln manifest validate manifests/*.json`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newManifestValidateCommand(g), newManifestShowCommand(g), newManifestDiffCommand(g))
	return cmd
}

func newManifestValidateCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE...]",
		Short: "Check manifest files (default: every channel's manifest)",
		Long: `validate checks the shape and values of manifest files. Without arguments it
checks every channel manifest of the project, each in the formats its channel
writes and reads. A file that is a channel's manifest is checked in that
channel's formats, another in any of the project's. With files and no
kiln.yaml it checks kiln's own format and accepts the id and region forms of
both backends. Every problem is reported,
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
		ls, err := fileLayouts(cfg, f)
		if err != nil {
			return err
		}
		m, l, err := manifest.LoadAny(f, rules, ls...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rep.Files = append(rep.Files, report.ManifestCheck{Path: f, Entries: len(m.Entries()), Format: l.Format().Name})
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
		if f.Format == manifest.Default.Name {
			fmt.Fprintf(g.streams.out, "ok  %s: %d entries\n", f.Path, f.Entries)
		} else {
			fmt.Fprintf(g.streams.out, "ok  %s: %d entries in format %s\n", f.Path, f.Entries, f.Format)
		}
	}
	return nil
}

// fileLayouts returns the layouts a manifest file named on the command line
// may be in: its channel's when it is one (see channel.LayoutsForFile),
// kiln's own without a project.
func fileLayouts(cfg *config.Config, file string) ([]*manifest.Layout, error) {
	if cfg == nil {
		return nil, nil
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	return channel.LayoutsForFile(cfg, abs)
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
	r := report.ManifestShow{Schema: report.SchemaManifestShow}
	// showEntry is one row of the table: the entry under the key its file
	// has, and the layout that says which fields the file holds.
	type showEntry struct {
		channel, key string
		manifest.Located
		layout *manifest.Layout
	}
	var entries []showEntry
	for _, ch := range channels {
		path, _ := cfg.ManifestPath(ch)
		m, l, err := channel.Open(cfg, ch)
		if err != nil {
			return err
		}
		doc, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			doc = []byte("{}")
		case err != nil:
			return err
		}
		r.Channels = append(r.Channels, report.ChannelManifest{Channel: ch, Path: path, Format: l.Format().Name, Manifest: json.RawMessage(doc)})
		for _, e := range m.Entries() {
			key, ok := l.FileKey(e.UseCase)
			if !ok {
				key = e.UseCase
			}
			entries = append(entries, showEntry{channel: ch, key: key, Located: e, layout: l})
		}
	}
	if g.json() {
		return g.write(r)
	}
	if len(entries) == 0 {
		fmt.Fprintf(g.streams.out, "no entries: nothing published to %s yet (kiln release USE_CASE publishes to latest)\n", joinNames(channels))
		return nil
	}
	t := output.NewTable(g.streams.out, "CHANNEL", "USE CASE", "REGION", "ARCH", "ID", "NAME", "PUBLIC", "DEPRECATION")
	for _, e := range entries {
		// What the file's format does not hold shows as "-".
		held := func(src manifest.FieldSource, v string) string {
			if !e.layout.Binds(src) {
				return "-"
			}
			return v
		}
		t.Row(e.channel, e.key, e.Region, e.Architecture, e.ID, held(manifest.SourceName, e.Name),
			held(manifest.SourcePublic, fmt.Sprint(e.Public)), held(manifest.SourceDeprecation, e.DeprecationTime))
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
Each is read in the formats of the channel whose manifest it is (any of the
project's otherwise, kiln's own without a kiln.yaml), so two files in
different formats compare by use case, architecture and region and show only
what changed, named as B names it.
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
	read := func(arg string) (manifest.Manifest, *manifest.Layout, error) {
		src, isChannel := manifestSource(cfg, arg)
		var ls []*manifest.Layout
		if cfg != nil {
			path := src.Path
			if src.Ref != "" && !filepath.IsAbs(path) {
				path = filepath.Join(repo, path) // REF:PATH is relative to the project directory
			}
			if ls, err = fileLayouts(cfg, path); err != nil {
				return nil, nil, err
			}
		}
		data, err := manifest.Read(ctx, repo, src)
		if isChannel && errors.Is(err, fs.ErrNotExist) {
			var l *manifest.Layout
			if len(ls) > 0 {
				l = ls[0]
			}
			return manifest.Manifest{}, l, nil // a channel never written is empty
		}
		if src.Ref != "" && errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("manifest diff %s: %s has no file %s (paths are relative to %s)", arg, src.Ref, src.Path, repo)
		}
		if err != nil {
			return nil, nil, explainGit(err, repo, "manifest diff "+arg)
		}
		return manifest.DecodeAny(arg, data, ls...)
	}
	ma, la, err := read(a)
	if err != nil {
		return err
	}
	mb, lb, err := read(b)
	if err != nil {
		return err
	}
	changes := manifest.DiffLayouts(ma, la, mb, lb)
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
