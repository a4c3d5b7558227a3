package channel

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Refs are the manifests whose images must not be deleted: every channel's
// manifest in the working tree and, when asked for, at every git tag
// matching a pattern (each released version of a consumer).
type Refs struct {
	// Manifests maps where a manifest came from ("manifests/stable.json",
	// "v1.2.0:manifests/stable.json") to its content.
	Manifests map[string]manifest.Manifest
	where     map[string]string // region/id -> first place that references it
}

// References loads every channel's manifest from the working tree and, when
// gitRefs is not empty, from each git tag matching it. No tag matching is
// no error: a young project has no release tags yet.
func References(ctx context.Context, cfg *config.Config, gitRefs string) (*Refs, error) {
	r := &Refs{Manifests: map[string]manifest.Manifest{}, where: map[string]string{}}
	var tags []string
	if gitRefs != "" {
		var err error
		if tags, err = manifest.Tags(ctx, cfg.Dir, gitRefs); err != nil {
			return nil, fmt.Errorf("--git-refs %s: %w", gitRefs, err)
		}
	}
	for _, ch := range cfg.ChannelNames() {
		path, err := cfg.ManifestPath(ch)
		if err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(cfg.Dir, path)
		if err != nil {
			rel = path
		}
		m, err := Load(cfg, ch)
		if err != nil {
			return nil, err
		}
		r.add(cfg, rel, m)
		if len(tags) == 0 {
			continue
		}
		ls, err := Layouts(cfg, ch)
		if err != nil {
			return nil, err
		}
		at, err := manifest.AtRefs(ctx, cfg.Dir, "./"+filepath.ToSlash(rel), tags, ls...)
		if err != nil {
			return nil, fmt.Errorf("--git-refs %s: %w", gitRefs, err)
		}
		for ref, m := range at {
			r.add(cfg, ref+":"+rel, m)
		}
	}
	return r, nil
}

func (r *Refs) add(cfg *config.Config, where string, m manifest.Manifest) {
	r.Manifests[where] = m
	for _, e := range m.Entries() {
		k := Locate(cfg, e.UseCase, e.Region) + "/" + e.ID
		if _, ok := r.where[k]; !ok {
			r.where[k] = where
		}
	}
}

// Where returns a place that references the image at a location (a
// region, or ACCOUNT/REGION in another account), or "".
func (r *Refs) Where(region, id string) string { return r.where[region+"/"+id] }

// All returns every manifest, for checks that need them all.
func (r *Refs) All() []manifest.Manifest {
	out := make([]manifest.Manifest, 0, len(r.Manifests))
	for _, m := range r.Manifests {
		out = append(out, m)
	}
	return out
}
