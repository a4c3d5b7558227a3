// Package cloud is the contract between kiln's core (pipeline, drift, assets)
// and its backends. The core knows only these types and interfaces; each
// backend (local, aws) implements them and passes the shared conformance
// suite in package cloudtest.
//
// Every method takes a region explicitly: a backend value serves all the
// regions configured for it. Methods that create things take a Token, a
// deterministic string derived from the run's asset id, the step and the
// region; calling them again with the same Token returns what the first call
// made instead of making a second one.
package cloud

import (
	"context"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/config"
)

// Backend is everything the core needs from a cloud.
type Backend interface {
	// Name is "local" or "aws".
	Name() string
	// Account returns the account the backend acts as (aws: STS
	// GetCallerIdentity). The core refuses to act when it is not allowed.
	Account(ctx context.Context) (string, error)

	Images
	Builder
	Tester
	Inventory
}

// Images is a per-region image store.
type Images interface {
	// ListImages returns the images in region owned by the account that match
	// f, in one paged scan. Deregistered images are not returned.
	ListImages(ctx context.Context, region string, f Filter) ([]Image, error)

	// Image returns one image. An absent image is an error matching
	// ErrNotFound.
	Image(ctx context.Context, region, id string) (Image, error)

	// CopyImage copies an image to another (or the same) region, tagging the
	// copy with in.Tags at creation. It is idempotent by in.Token: a second
	// call returns the image the first made. The copy may still be pending
	// when it returns; use WaitImage.
	CopyImage(ctx context.Context, in CopyInput) (Image, error)

	// WaitImage waits until the image is available and returns it. A failed
	// image is an error (with the backend's reason); an absent one matches
	// ErrNotFound; the wait has a deadline and says what it waited for. On
	// eventually consistent backends it needs several consecutive available
	// reads.
	WaitImage(ctx context.Context, region, id string) (Image, error)

	// LaunchPermissions returns who may launch the image.
	LaunchPermissions(ctx context.Context, region, id string) (LaunchPermissions, error)

	// SetLaunchPermissions makes the image's launch permissions exactly p.
	// Making an image public in a region that blocks public access fails with
	// an error matching ErrPublicAccessBlocked.
	SetLaunchPermissions(ctx context.Context, region, id string, p LaunchPermissions) error

	// SetDeprecation sets the image's deprecation time; the zero time removes it.
	SetDeprecation(ctx context.Context, region, id string, t time.Time) error

	// TagImage adds or replaces tags on an image (status tags such as the
	// test result; creation tags are given at creation).
	TagImage(ctx context.Context, region, id string, tags map[string]string) error

	// DeleteImage deregisters the image and deletes the storage behind it
	// (snapshots, blobs nothing else uses). Deleting an absent image succeeds.
	DeleteImage(ctx context.Context, region, id string) error
}

// PublicAccessChecker is implemented by backends with an account-level switch
// that blocks public images in a region (EC2 image block-public-access).
type PublicAccessChecker interface {
	PublicAccessBlocked(ctx context.Context, region string) (bool, error)
}

// Builder makes candidate images.
type Builder interface {
	// Build makes an image from a recipe in in.Region and returns it
	// available. Every resource it makes, temporary or not, carries in.Tags
	// from creation; temporary resources are removed before it returns
	// successfully. It is idempotent by in.Token: a rerun after a crash
	// reuses or replaces what the first attempt left.
	Build(ctx context.Context, in BuildInput) (Image, error)
}

// BuildChecker is implemented by builders that can tell, before anything is
// made, whether a build and the boot test of its image can succeed: the
// architecture, the recipe, and limits such as the size of user data.
// Release checks it first, so that a run that cannot finish starts no
// resources at all.
type BuildChecker interface {
	// CheckBuild returns an error (matching ErrInvalid for bad input)
	// when Build(in) or a boot test with tests would be refused.
	CheckBuild(ctx context.Context, in BuildInput, tests []string) error
}

// Tester boots images and runs a recipe's tests in them.
type Tester interface {
	// TestImage boots the image without modifying it, runs in.Tests inside
	// it and reports the outcome. A test that ran and failed is a Result with
	// Passed false and a nil error; an error means the test could not run.
	TestImage(ctx context.Context, in TestInput) (TestResult, error)
}

// Inventory lists and deletes every resource kind the backend creates.
type Inventory interface {
	// ListAssets returns the assets in region whose tags match f, each
	// confirmed to exist, plus the untagged children of those assets
	// (snapshots of an image, resources of a stack) with Parent set.
	ListAssets(ctx context.Context, region string, f Filter) ([]Asset, error)

	// DeleteAsset deletes one asset. Deleting an absent asset succeeds. An
	// error matching ErrNotYet means a dependency still holds it (retry
	// later); other errors are final.
	DeleteAsset(ctx context.Context, a Asset) error
}

// Parameters is implemented by backends that can hold channel pointers as
// parameters (aws: SSM parameters of data type aws:ec2:image).
type Parameters interface {
	// PutParameters writes name -> image id in each region, all or none: if
	// one region fails, the regions already written are restored.
	PutParameters(ctx context.Context, values []Parameter) error
}

// ExportLister is implemented by backends whose images carry their exports
// with them (local: the disk in other formats, made by the build): the
// exports of one image, by format.
type ExportLister interface {
	ImageExports(ctx context.Context, region, id string) ([]Export, error)
}

// Exporter is implemented by backends that export images to files elsewhere
// (aws: ExportImage to S3).
type Exporter interface {
	ExportImage(ctx context.Context, in ExportInput) (Export, error)
}

// UsageChecker is implemented by backends that can tell which images are in
// use (aws: by running instances and launch templates), so prune keeps them.
type UsageChecker interface {
	// ImagesInUse maps the ids of images in use in region to what uses them.
	ImagesInUse(ctx context.Context, region string) (map[string]string, error)
}

// SnapshotUsageChecker is implemented by backends whose images are backed by
// snapshots another image may share (aws: an image someone registered from
// a kiln snapshot), so that cleanup keeps a snapshot still in use.
type SnapshotUsageChecker interface {
	// SnapshotUsers maps the ids of the snapshots behind the account's
	// images in region to those images' ids.
	SnapshotUsers(ctx context.Context, region string) (map[string][]string, error)
}

// AssetTagger is implemented by backends that can add tags to an asset
// after its creation, for adopting assets an older kiln made.
type AssetTagger interface {
	// TagAsset adds or replaces tags on a. An asset whose kind cannot be
	// tagged after creation is an error matching ErrInvalid.
	TagAsset(ctx context.Context, a Asset, tags map[string]string) error
}

// Progress receives the steps of long operations, for display. Step returns
// a function to call when the step ends.
type Progress interface {
	Step(name string) (done func(err error))
}

// Filter selects images or assets. All set fields must match.
type Filter struct {
	// Tags must all be present with these values; an empty value matches any
	// value of that key.
	Tags map[string]string
	// IDs, when set, limits the result to these ids.
	IDs []string
}

// ImageState is the lifecycle state of an image.
type ImageState string

const (
	StatePending   ImageState = "pending"
	StateAvailable ImageState = "available"
	StateFailed    ImageState = "failed"
)

// Image is a machine image in one region.
type Image struct {
	ID           string            `json:"id"`
	Region       string            `json:"region"`
	Name         string            `json:"name"`
	Architecture string            `json:"architecture"`
	State        ImageState        `json:"state"`
	Created      time.Time         `json:"created"`
	Tags         map[string]string `json:"tags,omitempty"`
	// Public is whether anyone may launch it; the full permissions come
	// from LaunchPermissions.
	Public      bool      `json:"public"`
	Deprecation time.Time `json:"deprecation,omitzero"`
	Size        int64     `json:"size,omitempty"`
	// SHA256 is the digest of the raw disk (local backend).
	SHA256  string   `json:"sha256,omitempty"`
	Formats []string `json:"formats,omitempty"`
	// Snapshots are the block storage behind the image (aws).
	Snapshots []string `json:"snapshots,omitempty"`
}

// LaunchPermissions says who may launch an image.
type LaunchPermissions struct {
	Public              bool     `json:"public"`
	Accounts            []string `json:"accounts,omitempty"`
	Organizations       []string `json:"organizations,omitempty"`
	OrganizationalUnits []string `json:"organizational_units,omitempty"`
}

// CopyInput describes an image copy.
type CopyInput struct {
	SourceRegion string
	SourceID     string
	Region       string // destination
	Name         string
	Description  string
	Tags         map[string]string
	Token        string
	// Fresh: as BuildInput.Fresh, for this copy.
	Fresh bool
	// SourceTags are the source image's tags when the caller has them;
	// they tell a backend how the source was made (an uploaded disk is
	// already in every region, waiting to be registered).
	SourceTags map[string]string
}

// BuildInput describes a build.
type BuildInput struct {
	Region   string
	Name     string
	Arch     string
	UseCase  *config.UseCase
	Dir      string // resolves the recipe's relative paths
	StateDir string // kiln's local state directory (caches, logs)
	Tags     map[string]string
	Token    string
	Progress Progress // may be nil
	// Vars are the recipe's variables, each with its value: shell steps
	// get them as environment variables, Ansible steps as extra vars.
	// Secret values never reach a command line, a log or a file that
	// outlives the build.
	Vars []Var
	// Fresh says no earlier call with Token can have been made (the run
	// was made in this process, which has not tried this build before):
	// the backend need not look for what an earlier attempt left.
	Fresh bool
	// Regions are the regions the image will be released to. A backend
	// that can place the disk there while it builds (aws with build
	// method upload) does, so that CopyImage has nothing to copy.
	Regions []string
}

// Var is a recipe variable with its value.
type Var struct {
	Name   string
	Value  string
	Secret bool
}

// StepVars returns the variables a build's steps get: the recipe's
// (Vars), then, from the build's creation tags, KILN_USE_CASE, KILN_ARCH,
// KILN_VERSION and KILN_ASSET_ID, so that an image can know what it is
// (the example's web service answers its version). They reach the steps
// the way the recipe's variables do, never on a command line.
func (in BuildInput) StepVars() []Var {
	vars := slices.Clone(in.Vars)
	for _, e := range []struct{ name, tag string }{
		{"KILN_USE_CASE", TagUseCase}, {"KILN_ARCH", TagArch}, {"KILN_VERSION", TagVersion}, {"KILN_ASSET_ID", TagAssetID},
	} {
		v, ok := in.Tags[e.tag]
		if ok && !slices.ContainsFunc(vars, func(x Var) bool { return x.Name == e.name }) {
			vars = append(vars, Var{Name: e.name, Value: v})
		}
	}
	return vars
}

// TestInput describes a boot test.
type TestInput struct {
	Region   string
	ImageID  string
	Tests    []string // script paths, relative to Dir
	Dir      string
	StateDir string // kiln's local state directory (scratch files)
	LogPath  string // where the console log is kept
	Tags     map[string]string
	Token    string
	Timeout  time.Duration // 0: the backend's default
	Progress Progress
	// Secrets are values to mask in the console log the backend keeps.
	Secrets []string
	// Arch is the image's architecture when the caller knows it.
	Arch string
	// Fresh: as BuildInput.Fresh, for this test.
	Fresh bool
}

// TestResult is the outcome of a boot test.
type TestResult struct {
	Passed   bool
	Reason   string // why it failed: timeout, kernel panic, FAIL marker, no marker
	Duration time.Duration
	LogPath  string
}

// Parameter is one channel pointer in one region.
type Parameter struct {
	Region  string
	Name    string
	ImageID string
	Tags    map[string]string
}

// ExportInput describes an image export.
type ExportInput struct {
	Region  string
	ImageID string
	Format  string // vmdk, vhd, raw
	Tags    map[string]string
	Token   string
}

// Export is a finished export.
type Export struct {
	Format   string `json:"format"`   // vmdk, vhd, raw, qcow2
	Location string `json:"location"` // a file path (local) or s3://bucket/prefix/export-ami-123.vmdk
	Size     int64  `json:"size"`     // bytes; 0 when the backend cannot tell
	SHA256   string `json:"sha256"`   // hex digest of the file; "" when the backend cannot tell
}

// Kind is the kind of an asset. The constants are listed in the order
// cleanup deletes them: each kind only after the ones before it.
type Kind string

const (
	KindStack         Kind = "stack"          // holds instance, key pair, security group
	KindInstance      Kind = "instance"       // build or test machine
	KindObject        Kind = "object"         // staged file (recipe bundle), after the instance reading it
	KindExport        Kind = "export"         // exported objects
	KindParameter     Kind = "parameter"      // channel pointer
	KindImage         Kind = "image"          // before its snapshots
	KindSnapshot      Kind = "snapshot"       // after the image using it
	KindVolume        Kind = "volume"         // after the instance using it
	KindKeyPair       Kind = "key-pair"       // after the instance using it
	KindSecurityGroup Kind = "security-group" // after the instance using it
	KindBuild         Kind = "build"          // local: a build's work directory
)

// DeleteOrder is the order in which cleanup deletes asset kinds.
var DeleteOrder = []Kind{
	KindStack, KindInstance, KindObject, KindExport, KindParameter, KindImage,
	KindSnapshot, KindVolume, KindKeyPair, KindSecurityGroup, KindBuild,
}

// Asset is any resource a run created.
type Asset struct {
	Kind    Kind              `json:"kind"`
	ID      string            `json:"id"`
	Region  string            `json:"region"`
	State   string            `json:"state,omitempty"`
	Created time.Time         `json:"created,omitzero"`
	Tags    map[string]string `json:"tags,omitempty"`
	// Parent is the asset this one belongs to when it is an untagged
	// child (a snapshot of an image, a resource of a stack).
	Parent string `json:"parent,omitempty"`
	// Retain marks a resource its owner keeps on delete (a stack resource
	// with DeletionPolicy Retain).
	Retain bool `json:"retain,omitempty"`
	// Exports are the files exported from an image (local: its other disk
	// formats), or the file an export asset is (aws: the S3 object).
	Exports []Export `json:"exports,omitempty"`
}
