package config

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	dir := newProject(t)
	c, err := Parse("kiln.yaml", []byte(localBase+"    provision: [{file: {source: f.txt, destination: /f}}]\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	u := c.UseCases["u"]
	for _, tc := range []struct {
		field     string
		got, want any
	}{
		{"backend.type", c.Backend.Type, "local"},
		{"state", c.State, ".kiln"},
		{"backend.local.root", c.Backend.Local.Root, filepath.Join(dir, ".kiln", "store")},
		{"backend.local.account_id", c.Backend.Local.AccountID, "000000000000"},
		{"backend.local.mirror", c.Backend.Local.Mirror, "http://deb.debian.org/debian"},
		{"backend.local.accel", c.Backend.Local.Accel, "auto"},
		{"backend.local.boot_timeout", c.Backend.Local.BootTimeout.Std(), 10 * time.Minute},
		{"backend.aws.instance_type", c.Backend.AWS.InstanceType, "t3.micro"},
		{"backend.aws.copy_concurrency", c.Backend.AWS.CopyConcurrency, 20},
		{"backend.aws.build_timeout", c.Backend.AWS.BuildTimeout.Std(), 60 * time.Minute},
		{"backend.aws.copy_timeout", c.Backend.AWS.CopyTimeout.Std(), 90 * time.Minute},
		{"build_region", c.BuildRegion, "r1"},
		{"naming.candidate", c.Naming.Candidate, "{use_case}-{arch}-{asset_id}"},
		{"naming.release", c.Naming.Release, "{use_case}-{arch}-{version}"},
		{"channels", c.Channels, map[string]Channel{
			"latest": {Manifest: "manifests/latest.json"},
			"stable": {Manifest: "manifests/stable.json"},
		}},
		{"cleanup.confirm_above", c.Cleanup.ConfirmAbove, 50},
		{"use case name", u.Name, "u"},
		{"disk_size", u.DiskSize.Bytes(), int64(2 << 30)},
		{"base.suite", u.Base.Suite, "bookworm"},
		{"file.owner", u.Provision[0].File.Owner, "root:root"},
		{"file.mode", u.Provision[0].File.Mode, ""},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.field, tc.got, tc.want)
		}
	}
}

func TestDefaultsLeaveSetValues(t *testing.T) {
	dir := newProject(t)
	c, err := Parse("kiln.yaml", []byte(localBase+lines(
		"build_region: r2",
		"state: var/kiln",
		"channels: {beta: {}}",
		"cleanup: {confirm_above: 0}",
		"backend:",
		"  local: {root: images, region_paths: {r2: /srv/r2, r1: other/r1}, boot_timeout: 1h}",
	)), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field     string
		got, want any
	}{
		{"build_region", c.BuildRegion, "r2"},
		{"state", c.StateDir(), filepath.Join(dir, "var", "kiln")},
		// The default root follows state only when root is not set.
		{"backend.local.root", c.Backend.Local.Root, filepath.Join(dir, "images")},
		{"backend.local.region_paths", c.Backend.Local.RegionPaths, map[string]string{"r2": "/srv/r2", "r1": filepath.Join(dir, "other", "r1")}},
		{"backend.local.boot_timeout", c.Backend.Local.BootTimeout.Std(), time.Hour},
		{"channels", c.ChannelNames(), []string{"beta"}},
		{"cleanup.confirm_above", c.Cleanup.ConfirmAbove, 0},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.field, tc.got, tc.want)
		}
	}
}

func TestDefaultRootFollowsState(t *testing.T) {
	dir := newProject(t)
	c, err := Parse("kiln.yaml", []byte(localBase+"state: st\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "st", "store"); c.Backend.Local.Root != want {
		t.Errorf("root = %q, want %q", c.Backend.Local.Root, want)
	}
}

// The Debian suite is a local backend setting; an aws base has none.
func TestNoSuiteDefaultForAWS(t *testing.T) {
	c, err := Parse("kiln.yaml", []byte(awsBase), newProject(t))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.UseCases["u"].Base.Suite; s != "" {
		t.Errorf("suite = %q, want none", s)
	}
}
