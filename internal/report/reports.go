package report

import (
	"encoding/json"
	"time"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/schedule"
)

// Every report starts with a Schema field holding its registered name; the
// generated JSON Schema pins it to that value.

// Version is kiln version (and kiln --version).
type Version struct {
	Schema    string `json:"schema"`
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"` // GOOS/GOARCH
}

// Init is kiln init: the files written.
type Init struct {
	Schema string   `json:"schema"`
	Dir    string   `json:"dir"`
	Files  []string `json:"files"`
	// Git says whether the project is in a git work tree, which kiln needs
	// for --commit, --git-refs, rollback and the promotion interval.
	Git  bool     `json:"git"`
	Next []string `json:"next"` // commands to run next
}

// Validate is kiln validate.
type Validate struct {
	Schema    string           `json:"schema"`
	Config    string           `json:"config"`
	Backend   string           `json:"backend"`
	UseCases  int              `json:"use_cases"`
	Regions   int              `json:"regions"`
	Manifests []ManifestStatus `json:"manifests"`
}

// ManifestStatus is one channel manifest in kiln validate.
type ManifestStatus struct {
	Channel string `json:"channel"`
	Path    string `json:"path"`
	Entries int    `json:"entries"`
	Exists  bool   `json:"exists"`
}

// ManifestValidate is kiln manifest validate.
type ManifestValidate struct {
	Schema string          `json:"schema"`
	Files  []ManifestCheck `json:"files"`
}

// ManifestCheck is one valid manifest file.
type ManifestCheck struct {
	Path    string `json:"path"`
	Entries int    `json:"entries"`
	// Format is the format the file is in: kiln, or a declared one.
	Format string `json:"format"`
}

// ManifestShow is kiln manifest show.
type ManifestShow struct {
	Schema   string            `json:"schema"`
	Channels []ChannelManifest `json:"channels"`
}

// ChannelManifest is one channel's manifest.
type ChannelManifest struct {
	Channel string `json:"channel"`
	Path    string `json:"path"`
	// Format is the format the file is in: kiln, or a declared one.
	Format string `json:"format"`
	// Manifest is the file's document, as its consumers read it.
	Manifest json.RawMessage `json:"manifest"`
}

// ManifestDiff is kiln manifest diff.
type ManifestDiff struct {
	Schema  string            `json:"schema"`
	A       string            `json:"a"`
	B       string            `json:"b"`
	Changes []manifest.Change `json:"changes"`
}

// Runs is kiln runs: the runs of this machine's journal, newest first; with
// --run, that run alone and its steps.
type Runs struct {
	Schema string         `json:"schema"`
	Runs   []journal.Run  `json:"runs"`
	Steps  []journal.Step `json:"steps"`
}

// Build is kiln build.
type Build struct {
	Schema  string       `json:"schema"`
	Run     pipeline.Run `json:"run"`
	ImageID string       `json:"image_id"`
	Region  string       `json:"region"`
	Name    string       `json:"name"`
}

// Test is kiln test.
type Test struct {
	Schema string `json:"schema"`
	pipeline.TestReport
}

// Replicate is kiln replicate.
type Replicate struct {
	Schema string `json:"schema"`
	pipeline.ReplicateReport
}

// Publish is kiln publish.
type Publish struct {
	Schema string `json:"schema"`
	pipeline.PublishReport
	Commit string `json:"commit,omitempty"` // with --commit: the manifest's commit
}

// Release is kiln release.
type Release struct {
	Schema string `json:"schema"`
	pipeline.ReleaseReport
	Commit string `json:"commit,omitempty"` // with --commit: the manifest's commit
}

// Promote is kiln promote.
type Promote struct {
	Schema string `json:"schema"`
	pipeline.PromoteReport
	Commit string `json:"commit,omitempty"` // with --commit: the manifest's commit
}

// Rollback is kiln rollback.
type Rollback struct {
	Schema string `json:"schema"`
	pipeline.RollbackReport
	Commit string `json:"commit,omitempty"` // with --commit: the manifest's commit
}

// Schedule is kiln schedule: the next release times.
type Schedule struct {
	Schema string        `json:"schema"`
	From   time.Time     `json:"from"`
	Jobs   []ScheduleJob `json:"jobs"`
}

// ScheduleJob is one scheduled use case and architecture with its next
// times.
type ScheduleJob struct {
	schedule.Job
	Next []time.Time `json:"next"`
}

// Assets is kiln assets.
type Assets struct {
	Schema string              `json:"schema"`
	Runs   []assets.RunSummary `json:"runs"`
	Assets []cloud.Asset       `json:"assets"`
}

// Cleanup is kiln cleanup and kiln prune: the plan and, once applied, what
// became of each resource.
type Cleanup struct {
	Schema  string          `json:"schema"`
	Applied bool            `json:"applied"`
	Plan    []assets.Item   `json:"plan"`
	Results []assets.Result `json:"results"` // empty until applied
	// Summary counts the plan's items by action.
	Summary map[assets.Action]int `json:"summary"`
	// Unplanned counts the resources that should be gone and are not: the
	// planned deletions before an apply, the leftovers after.
	Unplanned int `json:"unplanned"`
}

// Drift is kiln drift.
type Drift struct {
	Schema   string   `json:"schema"`
	Channels []string `json:"channels"`
	drift.Report
}

// Reconcile is kiln reconcile.
type Reconcile struct {
	Schema    string          `json:"schema"`
	Applied   bool            `json:"applied"`
	Fixes     []drift.Fix     `json:"fixes"`
	Unfixable []drift.Finding `json:"unfixable"`
	Failed    int             `json:"failed"`
}
