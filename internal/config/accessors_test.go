package config

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

func TestAccessors(t *testing.T) {
	dir := newProject(t)
	c, err := Parse("kiln.yaml", []byte(lines(
		"project: demo",
		"regions: [r1, r2, r3]",
		"build_region: r2",
		"cost_tag: {key: team, value: images}",
		"channels: {latest: {}, stable: {manifest: out/stable.json}}",
		"use_cases:",
		"  one: {architectures: [x86_64], tests: [t.sh]}",
		"  two: {architectures: [x86_64, arm64], tests: [t.sh], regions: [r3, r2]}",
		"  three: {architectures: [arm64], tests: [t.sh], regions: [r3, r1]}",
	)), dir)
	if err != nil {
		t.Fatal(err)
	}

	if got := c.UseCaseNames(); !slices.Equal(got, []string{"one", "three", "two"}) {
		t.Errorf("UseCaseNames = %q", got)
	}
	if got := c.ChannelNames(); !slices.Equal(got, []string{"latest", "stable"}) {
		t.Errorf("ChannelNames = %q", got)
	}

	u, err := c.UseCase("two")
	if err != nil || u.Name != "two" {
		t.Errorf("UseCase(two) = %v, %v", u, err)
	}
	_, err = c.UseCase("four")
	if want := `use case "four": not defined in the config; known use cases: one, three, two`; err == nil || err.Error() != want || !errors.Is(err, ErrUnknown) {
		t.Errorf("UseCase(four) error = %v, want %q matching ErrUnknown", err, want)
	}

	for ch, want := range map[string]string{
		"latest": filepath.Join(dir, "manifests", "latest.json"),
		"stable": filepath.Join(dir, "out", "stable.json"),
	} {
		if got, err := c.ManifestPath(ch); err != nil || got != want {
			t.Errorf("ManifestPath(%s) = %q, %v; want %q", ch, got, err, want)
		}
	}
	_, err = c.ManifestPath("beta")
	if want := `channel "beta": not defined in the config; known channels: latest, stable`; err == nil || err.Error() != want || !errors.Is(err, ErrUnknown) {
		t.Errorf("ManifestPath(beta) error = %v, want %q matching ErrUnknown", err, want)
	}

	if got, want := c.StateDir(), filepath.Join(dir, ".kiln"); got != want {
		t.Errorf("StateDir = %q, want %q", got, want)
	}
	for p, want := range map[string]string{
		"scripts/a.sh": filepath.Join(dir, "scripts", "a.sh"),
		"./a/../b":     filepath.Join(dir, "b"),
		"/abs//x":      "/abs/x",
	} {
		if got := c.Resolve(p); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", p, got, want)
		}
	}

	for name, want := range map[string][]string{
		"one":   {"r2", "r1", "r3"}, // all regions, build region first
		"two":   {"r2", "r3"},       // its own, build region first
		"three": {"r3", "r1"},       // its own, without the build region
	} {
		if got := c.TargetRegions(c.UseCases[name]); !slices.Equal(got, want) {
			t.Errorf("TargetRegions(%s) = %q, want %q", name, got, want)
		}
	}
	// TargetRegions must not reorder the config's own lists.
	if !slices.Equal(c.Regions, []string{"r1", "r2", "r3"}) || !slices.Equal(c.UseCases["two"].Regions, []string{"r3", "r2"}) {
		t.Errorf("TargetRegions changed the config: %q, %q", c.Regions, c.UseCases["two"].Regions)
	}

	if got := c.Tags(); len(got) != 1 || got["team"] != "images" {
		t.Errorf("Tags = %v", got)
	}
	if got := (&Config{}).Tags(); got == nil || len(got) != 0 {
		t.Errorf("Tags without a cost tag = %#v, want an empty map", got)
	}

	if got := c.UseCases["one"].ManifestKey("x86_64"); got != "one" {
		t.Errorf("ManifestKey of a single-arch use case = %q", got)
	}
	if got := c.UseCases["two"].ManifestKey("arm64"); got != "two-arm64" {
		t.Errorf("ManifestKey of a multi-arch use case = %q", got)
	}
}

func TestStepKindAndLabel(t *testing.T) {
	for _, tc := range []struct {
		step        Step
		kind, label string
	}{
		{Step{Shell: "scripts/setup.sh"}, "shell", "shell scripts/setup.sh"},
		{Step{Name: "setup", Shell: "scripts/setup.sh"}, "shell", "setup"},
		{Step{File: &FileStep{Source: "files/motd", Destination: "/etc/motd"}}, "file", "file files/motd -> /etc/motd"},
		{Step{Ansible: &AnsibleStep{Playbook: "site.yml"}}, "ansible", "ansible site.yml"},
		{Step{}, "", "empty step"},
	} {
		if got := tc.step.Kind(); got != tc.kind {
			t.Errorf("%+v: Kind = %q, want %q", tc.step, got, tc.kind)
		}
		if got := tc.step.Label(); got != tc.label {
			t.Errorf("%+v: Label = %q, want %q", tc.step, got, tc.label)
		}
	}
}

func TestFileStepPerm(t *testing.T) {
	for _, tc := range []struct {
		mode string
		perm uint32
		ok   bool
	}{
		{"", 0, false},
		{"0644", 0o644, true},
		{"755", 0o755, true},
		{"4755", 0o4755, true},
		{"0000", 0, true},
		{"0x44", 0, false},
	} {
		perm, ok := (&FileStep{Mode: tc.mode}).Perm()
		if perm != tc.perm || ok != tc.ok {
			t.Errorf("Perm(%q) = %o, %v; want %o, %v", tc.mode, perm, ok, tc.perm, tc.ok)
		}
	}
}
