package config

import (
	"path/filepath"
	"time"
)

// Default values, applied after decoding and before validation.
const (
	defaultState        = ".kiln"
	defaultAccountID    = "000000000000"
	defaultMirror       = "http://deb.debian.org/debian"
	defaultSuite        = "bookworm"
	defaultCandidate    = "{use_case}-{arch}-{asset_id}"
	defaultRelease      = "{use_case}-{arch}-{version}"
	defaultInstanceType = "t3.micro"
	defaultOwner        = "root:root"
	defaultDiskSize     = Size(2 << 30)
)

// applyDefaults fills in what the document left out. Numbers and durations
// count as left out only when absent or null, so that an explicit 0 is
// checked rather than replaced.
func applyDefaults(c *Config, d *decoder) {
	setString := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	setString(&c.Backend.Type, "local")
	setString(&c.State, defaultState)
	if len(c.Regions) > 0 {
		setString(&c.BuildRegion, c.Regions[0])
	}
	setString(&c.Naming.Candidate, defaultCandidate)
	setString(&c.Naming.Release, defaultRelease)
	if !d.isSet("cleanup.confirm_above") {
		c.Cleanup.ConfirmAbove = 50
	}

	l := &c.Backend.Local
	setString(&l.Root, filepath.Join(c.State, "store"))
	setString(&l.CacheDir, filepath.Join(c.State, "cache"))
	setString(&l.AccountID, defaultAccountID)
	setString(&l.Mirror, defaultMirror)
	setString(&l.Accel, "auto")
	if !d.isSet("backend.local.boot_timeout") {
		l.BootTimeout = Duration(10 * time.Minute)
	}

	a := &c.Backend.AWS
	setString(&a.InstanceType, defaultInstanceType)
	if !d.isSet("backend.aws.copy_concurrency") {
		// Each copy is one CopyImage sent to its destination region's
		// endpoint, which limits requests on its own: copies to different
		// regions do not compete for one region's request rate. At least
		// as many as the regions a project usually has (AWS enables 17 by
		// default) copies and publishes them all at once, not in waves.
		a.CopyConcurrency = 20
	}
	if !d.isSet("backend.aws.build_timeout") {
		a.BuildTimeout = Duration(60 * time.Minute)
	}
	if !d.isSet("backend.aws.copy_timeout") {
		a.CopyTimeout = Duration(90 * time.Minute)
	}
	if !d.isSet("backend.aws.test_timeout") {
		a.TestTimeout = Duration(20 * time.Minute)
	}
	if !d.isSet("backend.aws.retry_max_backoff") {
		a.RetryMaxBackoff = Duration(20 * time.Second)
	}
	if !d.isSet("backend.aws.poll_interval") {
		a.PollInterval = Duration(5 * time.Second)
	}

	if len(c.Channels) == 0 && !d.failed["channels"] {
		c.Channels = map[string]Channel{}
		for _, name := range []string{"latest", "stable"} {
			c.Channels[name] = Channel{}
		}
	}
	for name, ch := range c.Channels {
		if ch.Manifest == "" {
			ch.Manifest = "manifests/" + name + ".json"
			c.Channels[name] = ch
		}
	}

	applyBuildDefaults(c, d)
	for name, v := range c.Variables {
		v.Name = name
	}
	applyFormatDefaults(c, d)
	applyCIDefaults(c, d)
	applyDistributionDefaults(c, d)

	for name, u := range c.UseCases {
		u.Name = name
		path := joinPath("use_cases", name)
		if !d.isSet(path + ".disk_size") {
			u.DiskSize = defaultDiskSize
		}
		if c.Backend.Type == "local" {
			setString(&u.Base.Suite, defaultSuite)
		}
		for _, s := range u.Provision {
			if s.File != nil {
				setString(&s.File.Owner, defaultOwner)
			}
		}
	}
	applyDeploymentDefaults(c, d)
	applyDestroyDefaults(c, d)
}

// absolutize resolves the local backend's directories against Dir, so the
// backend, which does not know Dir, can use them as they are.
func (c *Config) absolutize() {
	l := &c.Backend.Local
	l.Root = c.Resolve(l.Root)
	l.CacheDir = c.Resolve(l.CacheDir)
	for r, p := range l.RegionPaths {
		l.RegionPaths[r] = c.Resolve(p)
	}
}
