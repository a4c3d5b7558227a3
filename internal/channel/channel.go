// Package channel reads and writes a project's channel manifests: the
// manifest file of each channel named in kiln.yaml, validated against the
// project's backend, and updated under a lock so that two kiln processes
// publishing at once never lose each other's entries.
package channel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/lockfile"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Rules are the id and region forms of a backend's manifests.
func Rules(backend string) manifest.Rules {
	if backend == "aws" {
		r := manifest.AWSRules
		r.ValidRegion, r.RegionForm = config.ValidAWSRegion, "a known AWS region name such as us-east-1"
		return r
	}
	return manifest.LocalRules
}

// AnyRules accepts the manifests of either backend, for checking files
// outside a kiln project.
func AnyRules() manifest.Rules {
	a, l := manifest.AWSRules, manifest.LocalRules
	return manifest.Rules{
		ValidID:     func(id string) bool { return a.ValidID(id) || l.ValidID(id) },
		IDForm:      a.IDForm + " or " + l.IDForm,
		ValidRegion: func(r string) bool { return config.ValidAWSRegion(r) || l.ValidRegion(r) },
		RegionForm:  "an AWS region name or a local region name",
	}
}

// Load reads and validates a channel's manifest, in whichever of the
// channel's formats it is. A channel whose manifest was never written has
// an empty manifest.
func Load(cfg *config.Config, name string) (manifest.Manifest, error) {
	m, _, err := Open(cfg, name)
	return m, err
}

// LoadFile reads a manifest file and validates it against the project's
// backend, in the formats of the channel it belongs to (any of the
// project's for another file); a missing file is an error matching
// fs.ErrNotExist.
func LoadFile(cfg *config.Config, path string) (manifest.Manifest, error) {
	ls, err := LayoutsForFile(cfg, path)
	if err != nil {
		return nil, err
	}
	m, _, err := manifest.LoadAny(path, Rules(cfg.Backend.Type), ls...)
	return m, err
}

// Update applies fn to a channel's manifest and writes the result
// atomically in the channel's format, holding the channel's lock from read
// to write. It returns the changes fn made, in the terms of the file's
// format; when there are none the file is not rewritten (a file in a
// format the channel only reads stays as it is until something changes).
func Update(ctx context.Context, cfg *config.Config, name string, fn func(manifest.Manifest) error) ([]manifest.Change, error) {
	path, err := cfg.ManifestPath(name)
	if err != nil {
		return nil, err
	}
	unlock, err := lockfile.Lock(ctx, filepath.Join(cfg.StateDir(), "locks", "channel-"+name+".lock"))
	if err != nil {
		return nil, fmt.Errorf("lock channel %s: %w", name, err)
	}
	defer unlock()

	old, oldLayout, err := Open(cfg, name)
	if err != nil {
		return nil, err
	}
	ls, err := Layouts(cfg, name)
	if err != nil {
		return nil, err
	}
	write := ls[0]
	m := clone(old)
	if err := fn(m); err != nil {
		return nil, err
	}
	if err := write.Validate(path, m, Rules(cfg.Backend.Type)); err != nil {
		return nil, fmt.Errorf("refusing to write an invalid manifest: %w", err)
	}
	changes := manifest.DiffLayouts(old, oldLayout, m, write)
	if len(changes) == 0 {
		return nil, nil
	}
	// The manifest, or a directory on its way, may be a symbolic link:
	// kiln writes through one only while it stays in the project.
	if _, err := config.ResolveInside(cfg.Dir, path); err != nil {
		return nil, fmt.Errorf("refusing to write the manifest of channel %s: %w; kiln does not write outside the project directory", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := write.Write(path, m); err != nil {
		return nil, err
	}
	// Remember what kiln wrote: a later --commit tells kiln's uncommitted
	// change from a hand edit by it. Best effort: without the record, a
	// commit refuses the change as someone else's, the safe side.
	os.MkdirAll(filepath.Dir(writtenPath(cfg, name)), 0o755)
	manifest.Write(writtenPath(cfg, name), m)
	return changes, nil
}

// writtenPath is where kiln keeps the last manifest it wrote for a channel.
func writtenPath(cfg *config.Config, name string) string {
	return filepath.Join(cfg.StateDir(), "channels", name+".written.json")
}

// LastWritten returns the manifest kiln last wrote for the channel in this
// project directory, or an empty one.
func LastWritten(cfg *config.Config, name string) manifest.Manifest {
	m, err := manifest.Load(writtenPath(cfg, name))
	if err != nil {
		return manifest.Manifest{}
	}
	return m
}

func clone(m manifest.Manifest) manifest.Manifest {
	c := manifest.Manifest{}
	for _, e := range m.Entries() {
		c.Set(e.UseCase, e.Region, e.Entry)
	}
	return c
}

// UseCaseOf returns the use case and architecture a manifest key stands for
// (see config.UseCase.ManifestKey).
func UseCaseOf(cfg *config.Config, key string) (*config.UseCase, string, bool) {
	for _, name := range cfg.UseCaseNames() {
		u := cfg.UseCases[name]
		for _, arch := range u.Architectures {
			if u.ManifestKey(arch) == key {
				return u, arch, true
			}
		}
	}
	return nil, "", false
}

// LastChange is when a channel's manifest last changed: its newest git
// commit, or the file's modification time when git does not track it (zero:
// never written).
func LastChange(ctx context.Context, cfg *config.Config, name string) (time.Time, error) {
	path, err := cfg.ManifestPath(name)
	if err != nil {
		return time.Time{}, err
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, err
	}
	rel, err := filepath.Rel(cfg.Dir, path)
	if err != nil {
		return st.ModTime(), nil
	}
	revs, err := manifest.History(ctx, cfg.Dir, "./"+filepath.ToSlash(rel), 1)
	if err != nil || len(revs) == 0 {
		return st.ModTime(), nil // not a git repository, or not committed yet
	}
	// A change not committed yet is newer than the last commit. (The
	// file's time alone would not do: a fresh clone makes every file new.)
	if dirty, err := manifest.Uncommitted(ctx, cfg.Dir, "./"+filepath.ToSlash(rel)); err == nil && dirty && st.ModTime().After(revs[0].Date) {
		return st.ModTime(), nil
	}
	return revs[0].Date, nil
}

// Locate returns where the image of a manifest key's entry in region lives:
// the region, or ACCOUNT/REGION when the use case is published into another
// account there (config.Config.Location).
func Locate(cfg *config.Config, key, region string) string {
	if u, _, ok := UseCaseOf(cfg, key); ok {
		return cfg.Location(u, region)
	}
	return region
}
