// Package config turns kiln.yaml into a typed, validated Config.
//
// Decoding is strict: unknown fields, wrong types and invalid values are all
// reported at once, each as "FILE:LINE:COL: field.path: problem", and a file
// with any error yields no Config at all.
package config

import "time"

// Config is a decoded and validated kiln.yaml.
type Config struct {
	// Path is the file the config was read from; Dir is its directory, against
	// which every relative path in the file is resolved.
	Path string `yaml:"-"`
	Dir  string `yaml:"-"`

	Project     string              `yaml:"project"`
	Backend     Backend             `yaml:"backend"`
	Regions     []string            `yaml:"regions"`
	BuildRegion string              `yaml:"build_region"`
	CostTag     CostTag             `yaml:"cost_tag"`
	Naming      Naming              `yaml:"naming"`
	Channels    map[string]Channel  `yaml:"channels"`
	UseCases    map[string]*UseCase `yaml:"use_cases"`
	Cleanup     Cleanup             `yaml:"cleanup"`
	// Destroy holds the rules of kiln destroy (what it keeps, when it asks).
	Destroy Destroy `yaml:"destroy"`
	// Deployments are the named environments that run released images.
	Deployments map[string]*Deployment `yaml:"deployments"`
	// Variables are the recipe's variables (variables.go).
	Variables map[string]*Variable `yaml:"variables"`
	// Serve configures `kiln serve`; Distribution, when set, makes
	// releases downloadable (distribution.go).
	Serve        Serve         `yaml:"serve"`
	Distribution *Distribution `yaml:"distribution"`
	// State is where kiln keeps its local state (journal, build cache, logs),
	// relative to Dir. Default ".kiln".
	State string `yaml:"state"`

	// ManifestFormats are the consumers' own manifest formats that channels
	// may write or read (formats.go).
	ManifestFormats map[string]*ManifestFormat `yaml:"manifest_formats"`

	// Forge is where --merge-request opens requests (forge.go); CI is the
	// pipeline `kiln ci gitlab` writes (ci.go).
	Forge Forge `yaml:"forge"`
	CI    CI    `yaml:"ci"`
}

// Backend selects and configures the cloud backend.
type Backend struct {
	Type  string       `yaml:"type"` // "local" (default) or "aws"
	Local LocalBackend `yaml:"local"`
	AWS   AWSBackend   `yaml:"aws"`
}

// LocalBackend configures the directory-backed local backend.
type LocalBackend struct {
	// Root holds one directory per region; default "<state>/store".
	Root string `yaml:"root"`
	// RegionPaths places individual regions elsewhere (another filesystem).
	RegionPaths map[string]string `yaml:"region_paths"`
	// CacheDir holds the builder's base root filesystems (one tarball per
	// suite, mirror, architecture and package list); default "<state>/cache".
	// Projects may share one.
	CacheDir string `yaml:"cache_dir"`
	// AccountID is the account the local backend acts as; default "000000000000".
	AccountID string `yaml:"account_id"`
	// Mirror is the Debian mirror mmdebstrap uses; default http://deb.debian.org/debian.
	Mirror string `yaml:"mirror"`
	// Accel is the qemu accelerator: "auto" (default: probe KVM, fall back to
	// TCG), "kvm" or "tcg".
	Accel string `yaml:"accel"`
	// BootTimeout bounds one boot test; default 10m.
	BootTimeout Duration `yaml:"boot_timeout"`
	// BlockPublicAccess lists regions where images may not be made public,
	// the local analogue of EC2 image block-public-access.
	BlockPublicAccess []string `yaml:"block_public_access"`
}

// AWSBackend configures the aws backend.
type AWSBackend struct {
	Profile         string            `yaml:"profile"`
	AllowedAccounts []string          `yaml:"allowed_accounts"`
	InstanceType    string            `yaml:"instance_type"` // default t3.micro
	SubnetID        string            `yaml:"subnet_id"`
	UseStack        bool              `yaml:"use_stack"`        // temporary build resources as one CloudFormation stack
	CopyConcurrency int               `yaml:"copy_concurrency"` // default 20
	KMSKeys         map[string]string `yaml:"kms_keys"`         // region -> key id/ARN; set means encrypted copies
	SSMParameters   string            `yaml:"ssm_parameters"`   // e.g. "/kiln/{channel}/{use_case}"; empty: no parameters
	ExportBucket    string            `yaml:"export_bucket"`
	ExportPrefix    string            `yaml:"export_prefix"`
	ExportRoleName  string            `yaml:"export_role_name"`
	BuildTimeout    Duration          `yaml:"build_timeout"` // default 60m
	CopyTimeout     Duration          `yaml:"copy_timeout"`  // default 90m
	TestTimeout     Duration          `yaml:"test_timeout"`  // default 20m: one boot test
	// PollInterval is the first pause of every wait (it grows to six times
	// this); default 5s.
	PollInterval Duration `yaml:"poll_interval"`
	// RetryMaxBackoff caps the pause between retries of throttled or failed
	// requests; default 20s.
	RetryMaxBackoff Duration `yaml:"retry_max_backoff"`
	// Bucket is the project's S3 bucket in the build region: recipe and
	// test bundles are staged there for the instances that fetch them.
	// Empty: bundles travel inline in user data (16 KiB at most).
	Bucket string `yaml:"bucket"`
	// UploadConcurrency bounds the EBS direct block writes in flight at
	// once during a build: {method: upload}; default 64.
	UploadConcurrency int `yaml:"upload_concurrency"`

	// PublishAccounts are other accounts that use cases or regions publish
	// into (accounts.go).
	PublishAccounts []PublishAccount `yaml:"publish_accounts"`
}

// CostTag is the project's cost-allocation tag, put on every asset.
type CostTag struct {
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// Naming holds the rules for image names. Placeholders: {use_case}, {arch},
// {date}, {asset_id}, {version}.
type Naming struct {
	Candidate string `yaml:"candidate"` // default "{use_case}-{arch}-{asset_id}"
	Release   string `yaml:"release"`   // default "{use_case}-{arch}-{version}"
}

// Channel is a named pointer set with its own manifest file.
type Channel struct {
	Manifest string `yaml:"manifest"` // default manifests/<channel>.json, relative to Dir
	// MinInterval is the least time between two promotions into this channel.
	MinInterval Duration `yaml:"min_interval"`
	// Format is the manifest format the channel writes: a name from
	// manifest_formats, or "kiln" (default) for kiln's own.
	Format string `yaml:"format"`
	// Reads are further formats its manifest may be in (older history in
	// git); kiln rewrites it in Format.
	Reads []string `yaml:"reads"`
}

// Cleanup holds the limits of destructive commands.
type Cleanup struct {
	// ConfirmAbove is the plan size above which cleanup asks for confirmation
	// (or --yes). Default 50.
	ConfirmAbove int `yaml:"confirm_above"`
}

// UseCase is an image family: recipe, architectures, regions, publish policy.
type UseCase struct {
	Name          string   `yaml:"-"`
	Description   string   `yaml:"description"`
	Architectures []string `yaml:"architectures"` // x86_64, arm64
	Base          Base     `yaml:"base"`
	Provision     []Step   `yaml:"provision"`
	Tests         []string `yaml:"tests"` // scripts run inside the booted guest
	Regions       []string `yaml:"regions"`
	Publish       Publish  `yaml:"publish"`
	Exports       []string `yaml:"exports"`   // qcow2, vmdk, vhd (local); vmdk, vhd, raw (aws)
	DiskSize      Size     `yaml:"disk_size"` // default 2GiB
	Schedule      string   `yaml:"schedule"`  // cron expression, optional
	Version       string   `yaml:"version"`   // default version for {version}
	Build         Build    `yaml:"build"`     // how the candidate is made (build.go)
	// Attributes are values manifest formats use in keys and fields, such
	// as os: linux, role: ephemeral.
	Attributes map[string]string `yaml:"attributes"`
}

// Base is the starting point of a build. The local backend uses Suite,
// Packages (and the backend's Mirror); the aws backend uses one of AMI,
// NameFilter+Owner or SSMParameter.
type Base struct {
	Suite        string   `yaml:"suite"` // default bookworm
	Packages     []string `yaml:"packages"`
	AMI          string   `yaml:"ami"`
	NameFilter   string   `yaml:"name_filter"`
	Owner        string   `yaml:"owner"`
	SSMParameter string   `yaml:"ssm_parameter"`
	User         string   `yaml:"user"` // aws: login user, informational
}

// Step is one provisioning step; exactly one of Shell, File or Ansible is set.
type Step struct {
	Name    string       `yaml:"name"`
	Shell   string       `yaml:"shell"` // path of a script run inside the image
	File    *FileStep    `yaml:"file"`
	Ansible *AnsibleStep `yaml:"ansible"`
}

// FileStep copies a file or directory into the image.
type FileStep struct {
	Source      string `yaml:"source"`
	Destination string `yaml:"destination"`
	Mode        string `yaml:"mode"`  // octal, e.g. "0644"; default: keep
	Owner       string `yaml:"owner"` // user:group, default root:root
}

// AnsibleStep runs a playbook against the image.
type AnsibleStep struct {
	Playbook  string            `yaml:"playbook"`
	ExtraVars map[string]string `yaml:"extra_vars"`
}

// Publish is a use case's publish policy.
type Publish struct {
	Public              bool     `yaml:"public"`
	Accounts            []string `yaml:"accounts"`
	Organizations       []string `yaml:"organizations"`        // organization ARNs
	OrganizationalUnits []string `yaml:"organizational_units"` // OU ARNs
	DeprecateAfter      Duration `yaml:"deprecate_after"`      // zero: no deprecation
}

// Duration is a time.Duration that also accepts days and weeks ("90d", "2w").
type Duration time.Duration

// Size is a byte count that accepts units ("2GiB", "512MiB", "2G").
type Size int64
