package config

import "time"

// CI configures the pipeline `kiln ci gitlab` writes. ci: in kiln.yaml.
type CI struct {
	// File is where the pipeline is written, relative to this file's
	// directory; default .gitlab-ci.yml.
	File string `yaml:"file"`
	// Kiln is how jobs run kiln: a command on the runners' PATH or a path
	// in the repository; default kiln.
	Kiln string `yaml:"kiln"`
	// Image is the container image of every job; default none (the
	// runner's own: shell executors).
	Image string `yaml:"image"`
	// Tags are the runner tags of every job: runners with kiln's tools
	// and credentials.
	Tags []string `yaml:"tags"`
	// Document is how jobs that write a channel record its manifest: push
	// (a commit onto the pipeline's branch), merge-request, or none (the
	// manifest is a job artifact). Default push.
	Document string `yaml:"document"`
	// ReleaseChannel is the channel release jobs publish to; default
	// latest (without a channel of that name: the first in name order).
	ReleaseChannel string `yaml:"release_channel"`
	// Channels say whether the job that writes each channel runs on its
	// own (automatic) or waits for a person (manual). Default: the
	// release channel automatic, the others manual.
	Channels map[string]string `yaml:"channels"`
	// GitRefs are the git tags whose manifests the scheduled drift check
	// and orphan cleanup respect; default "v*".
	GitRefs string `yaml:"git_refs"`
	// CleanupOlderThan is the age below which the scheduled orphan
	// cleanup leaves an orphan alone; default 2d.
	CleanupOlderThan Duration `yaml:"cleanup_older_than"`
}

// The ways a pipeline's jobs record a manifest change (ci.document).
const (
	DocumentPush         = "push"
	DocumentMergeRequest = "merge-request"
	DocumentNone         = "none"
)

// When a channel's job runs (ci.channels).
const (
	RunAutomatic = "automatic"
	RunManual    = "manual"
)

// ChannelRun returns when the pipeline's job that writes channel runs.
func (c *Config) ChannelRun(channel string) string {
	if w, ok := c.CI.Channels[channel]; ok {
		return w
	}
	if channel == c.CI.ReleaseChannel {
		return RunAutomatic
	}
	return RunManual
}

// applyCIDefaults fills in forge: and ci:. A string given as "" stays
// empty, so that validation can say what is wrong with it (git_refs: ""
// means no tags).
func applyCIDefaults(c *Config, d *decoder) {
	set := func(field string, p *string, v string) {
		if !d.isSet(field) {
			*p = v
		}
	}
	set("forge.remote", &c.Forge.Remote, "origin")
	ci := &c.CI
	set("ci.file", &ci.File, ".gitlab-ci.yml")
	set("ci.kiln", &ci.Kiln, "kiln")
	set("ci.document", &ci.Document, DocumentPush)
	// The channel publish writes by default, else the first one.
	release := "latest"
	if _, ok := c.Channels[release]; !ok && len(c.Channels) > 0 {
		release = c.ChannelNames()[0]
	}
	set("ci.release_channel", &ci.ReleaseChannel, release)
	set("ci.git_refs", &ci.GitRefs, "v*")
	if !d.isSet("ci.cleanup_older_than") {
		ci.CleanupOlderThan = Duration(48 * time.Hour)
	}
}
