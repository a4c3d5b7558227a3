package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// UseCase returns the use case called name.
func (c *Config) UseCase(name string) (*UseCase, error) {
	if u, ok := c.UseCases[name]; ok {
		return u, nil
	}
	return nil, fmt.Errorf("use case %q: %w; known use cases: %s", name, ErrUnknown, strings.Join(c.UseCaseNames(), ", "))
}

// ManifestPath returns the absolute path of a channel's manifest.
func (c *Config) ManifestPath(channel string) (string, error) {
	ch, ok := c.Channels[channel]
	if !ok {
		return "", fmt.Errorf("channel %q: %w; known channels: %s", channel, ErrUnknown, strings.Join(c.ChannelNames(), ", "))
	}
	return c.Resolve(ch.Manifest), nil
}

// ChannelNames returns the names of the channels, sorted.
func (c *Config) ChannelNames() []string { return sortedKeys(c.Channels) }

// UseCaseNames returns the names of the use cases, sorted.
func (c *Config) UseCaseNames() []string { return sortedKeys(c.UseCases) }

// StateDir returns the absolute path of kiln's local state directory.
func (c *Config) StateDir() string { return c.Resolve(c.State) }

// Resolve returns the absolute path of p, which is relative to the config's
// directory unless it is absolute already.
func (c *Config) Resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.Dir, p)
}

// TargetRegions returns where a use case is released to: its own regions
// or else all the config's regions, with the build region moved first when
// it is among them (the candidate is there already; copies start from it).
// A region published into another account (backend.aws.publish_accounts)
// is given as its location, ACCOUNT/REGION (see Location).
func (c *Config) TargetRegions(u *UseCase) []string {
	regions := slices.Clone(u.Regions)
	if len(regions) == 0 {
		regions = slices.Clone(c.Regions)
	}
	if i := slices.Index(regions, c.BuildRegion); i > 0 {
		regions = slices.Insert(slices.Delete(regions, i, i+1), 0, c.BuildRegion)
	}
	for i, r := range regions {
		regions[i] = c.Location(u, r)
	}
	return regions
}

// Tags returns the cost-allocation tag as a map, empty when none is set.
func (c *Config) Tags() map[string]string {
	tags := map[string]string{}
	if c.CostTag.Key != "" {
		tags[c.CostTag.Key] = c.CostTag.Value
	}
	return tags
}

// ManifestKey returns the key of the use case's entry in a channel
// manifest: its name when it has one architecture, else name-arch.
func (u *UseCase) ManifestKey(arch string) string {
	if len(u.Architectures) == 1 {
		return u.Name
	}
	return u.Name + "-" + arch
}

// Kind returns "shell", "file" or "ansible": which kind of step s is, or
// "" for a step that sets none (validation rejects those).
func (s Step) Kind() string {
	switch {
	case s.Shell != "":
		return "shell"
	case s.File != nil:
		return "file"
	case s.Ansible != nil:
		return "ansible"
	}
	return ""
}

// Label names the step in progress output and errors: its Name, or its
// kind and path, such as "shell scripts/setup.sh".
func (s Step) Label() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Shell != "":
		return "shell " + s.Shell
	case s.File != nil:
		return "file " + s.File.Source + " -> " + s.File.Destination
	case s.Ansible != nil:
		return "ansible " + s.Ansible.Playbook
	}
	return "empty step"
}

// Perm returns the permission bits of the file step's mode, with setuid,
// setgid and sticky bits in their Unix places (04000, 02000, 01000); ok is
// false when no mode is set and the source's mode is kept.
func (f *FileStep) Perm() (perm uint32, ok bool) {
	if f.Mode == "" {
		return 0, false
	}
	var p uint32
	for _, r := range f.Mode {
		if r < '0' || r > '7' {
			return 0, false
		}
		p = p<<3 | uint32(r-'0')
	}
	return p & 0o7777, true
}
