package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/config"
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
checks every channel manifest of the project, each in the formats its channel
writes and reads. A file that is a channel's manifest is checked in that
channel's formats, another in any of the project's. With files and no
kiln.yaml it checks kiln's own format and accepts the id and region forms of
both backends.`,
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
		ls, err := fileLayouts(cfg, f)
		if err != nil {
			return err
		}
		m, l, err := manifest.LoadAny(f, rules, ls...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if l.Default() {
			fmt.Fprintf(g.streams.out, "ok  %s: %d entries\n", f, len(m.Entries()))
		} else {
			fmt.Fprintf(g.streams.out, "ok  %s: %d entries in format %s\n", f, len(m.Entries()), l.Format().Name)
		}
	}
	return errors.Join(errs...)
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
	Channel string `json:"channel"`
	Path    string `json:"path"`
	// Format is the format the file is in: kiln, or a declared one.
	Format string `json:"format"`
	// Manifest is the file's document, as its consumers read it.
	Manifest json.RawMessage `json:"manifest"`

	entries []showEntry
}

// showEntry is one row of manifest show's table.
type showEntry struct {
	key string // as the file has it
	manifest.Located
	layout *manifest.Layout
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
		c := channelReport{Channel: ch, Path: path, Format: l.Format().Name, Manifest: doc}
		for _, e := range m.Entries() {
			key, ok := l.FileKey(e.UseCase)
			if !ok {
				key = e.UseCase
			}
			c.entries = append(c.entries, showEntry{key: key, Located: e, layout: l})
		}
		r.Channels = append(r.Channels, c)
	}
	if g.format == output.JSON {
		return output.WriteJSON(g.streams.out, r)
	}
	t := output.NewTable(g.streams.out, "CHANNEL", "USE CASE", "REGION", "ARCH", "ID", "NAME", "PUBLIC", "DEPRECATION")
	for _, c := range r.Channels {
		for _, e := range c.entries {
			// What the file's format does not hold shows as "-".
			held := func(s manifest.FieldSource, v string) string {
				if !e.layout.Binds(s) {
					return "-"
				}
				return v
			}
			t.Row(c.Channel, e.key, e.Region, e.Architecture, e.ID, held(manifest.SourceName, e.Name),
				held(manifest.SourcePublic, fmt.Sprint(e.Public)), held(manifest.SourceDeprecation, e.DeprecationTime))
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
e.g. v1.2.0:manifests/stable.json. Each is read in the formats of the channel
whose manifest it is (any of the project's otherwise, kiln's own without a
kiln.yaml), so two files in different formats compare by use case,
architecture and region and show only what changed, named as B names it.
Exit 0 when they are equal, 1 when they differ, 2 on error.`,
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
	cfg, err := g.loadConfig()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cfg = nil // plain files in kiln's format
	case err != nil:
		return err
	}
	read := func(arg string) (manifest.Manifest, *manifest.Layout, error) {
		src := manifest.ParseSource(arg)
		data, err := manifest.Read(ctx, repo, src)
		if err != nil {
			return nil, nil, err
		}
		var ls []*manifest.Layout
		switch {
		case cfg == nil:
		case src.Ref != "":
			// REF:PATH is relative to the project directory.
			if ls, err = channel.LayoutsForFile(cfg, filepath.Join(repo, src.Path)); err != nil {
				return nil, nil, err
			}
		default:
			if ls, err = fileLayouts(cfg, src.Path); err != nil {
				return nil, nil, err
			}
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
