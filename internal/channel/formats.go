package channel

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Layouts returns the layouts a channel's manifest may be in, bound to the
// project's use cases: the one kiln writes first, then those it reads.
func Layouts(cfg *config.Config, name string) ([]*manifest.Layout, error) {
	if _, err := cfg.ManifestPath(name); err != nil {
		return nil, err
	}
	return layouts(cfg, cfg.ChannelFormats(name))
}

// AllLayouts returns every layout the project's channels write or read,
// each once, in channel order: for a file that belongs to no channel.
func AllLayouts(cfg *config.Config) ([]*manifest.Layout, error) {
	var names []string
	seen := map[string]bool{}
	for _, ch := range cfg.ChannelNames() {
		for _, f := range cfg.ChannelFormats(ch) {
			if !seen[f] {
				seen[f] = true
				names = append(names, f)
			}
		}
	}
	return layouts(cfg, names)
}

func layouts(cfg *config.Config, names []string) ([]*manifest.Layout, error) {
	targets := cfg.ManifestTargets()
	out := make([]*manifest.Layout, 0, len(names))
	for _, n := range names {
		f, ok := cfg.ManifestFormat(n)
		if !ok {
			return nil, fmt.Errorf("manifest format %q: %w", n, config.ErrUnknown)
		}
		l, errs := f.Bind(targets)
		if len(errs) > 0 {
			// kiln.yaml's validation reports these; a config built by hand
			// may still have them.
			return nil, fmt.Errorf("manifest format %s: %w", n, errs[0])
		}
		out = append(out, l)
	}
	return out, nil
}

// LayoutsForFile returns the layouts of the channel whose manifest is at
// path (relative to the project directory or absolute), or every layout
// of the project when no channel's manifest is there.
func LayoutsForFile(cfg *config.Config, path string) ([]*manifest.Layout, error) {
	abs := cfg.Resolve(path)
	for _, ch := range cfg.ChannelNames() {
		if p, _ := cfg.ManifestPath(ch); filepath.Clean(p) == filepath.Clean(abs) {
			return Layouts(cfg, ch)
		}
	}
	return AllLayouts(cfg)
}

// Open reads and validates a channel's manifest and returns it with the
// layout it is in. A channel whose manifest was never written has an empty
// manifest in the layout it writes.
func Open(cfg *config.Config, name string) (manifest.Manifest, *manifest.Layout, error) {
	path, err := cfg.ManifestPath(name)
	if err != nil {
		return nil, nil, err
	}
	ls, err := Layouts(cfg, name)
	if err != nil {
		return nil, nil, err
	}
	m, l, err := manifest.LoadAny(path, Rules(cfg.Backend.Type), ls...)
	if errors.Is(err, fs.ErrNotExist) {
		return manifest.Manifest{}, ls[0], nil
	}
	return m, l, err
}
