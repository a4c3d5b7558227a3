package distribute

import (
	"fmt"
	"path"
	"time"
)

// Release is one published run of a use case and architecture, as the
// index records it in one channel.
type Release struct {
	Channel string
	UseCase string
	Title   string // the use case's description (release_title); default its name
	Arch    string
	Version string // kiln's version: the directory name and the label
	Name    string // the image's release name
	AssetID string
	Created time.Time         // the run's start, which keys the version
	Images  map[string]string // region -> image id, as the manifest has them
	Files   []SourceFile
	Notes   []byte // release notes (markdown); nil when the project keeps none
}

// SourceFile is one export of the release's image and where to take it
// from.
type SourceFile struct {
	Format string // qcow2, vmdk, vhd, raw
	Source Source
	// SHA256 is what the (uncompressed) content must hash to, when the
	// source knows it; empty takes what is read.
	SHA256 string
}

// formatSpec says how an export format is published: the file's suffix,
// its simplestreams ftype, and whether it is compressed. Disks that are
// full-size files (raw, fixed vhd) are gzipped where kiln writes them
// itself; qcow2 and vmdk are sparse formats already. LXD takes the qcow2
// as its disk-kvm.img.
func formatSpec(format string, compress bool) (suffix, ftype string, gz bool, err error) {
	switch format {
	case "qcow2":
		return ".qcow2", "disk-kvm.img", false, nil
	case "vmdk":
		return ".vmdk", "vmdk", false, nil
	case "vhd", "raw":
		if compress {
			return "." + format + ".gz", format + ".gz", true, nil
		}
		return "." + format, format, false, nil
	}
	return "", "", false, fmt.Errorf("export format %q cannot be published; kiln publishes qcow2, vmdk, vhd and raw", format)
}

// Item types of the files kiln adds to a version.
const (
	ftypeLXD      = "lxd.tar.xz"
	ftypeNotes    = "release-notes"
	ftypeSums     = "sha256sums"
	ftypeSumsSig  = "sha256sums.minisig"
	ftypeDiskKVM  = "disk-kvm.img"
	notesFile     = "release-notes.md"
	lxdMetaSuffix = ".lxd.tar.xz"
)

// ProductKey is the key of a product: project, use case and architecture.
func ProductKey(project, useCase, arch string) string {
	return project + ":" + useCase + ":" + arch
}

// Serial is the version key of a run that started at t.
func Serial(t time.Time) string { return t.UTC().Format(serialLayout) }

// VersionDir is where a version's files live.
func VersionDir(useCase, arch, version string) string {
	return path.Join("images", useCase, arch, version)
}

// check refuses a release whose names cannot be paths of the tree.
func (r *Release) check() error {
	for what, v := range map[string]string{"use case": r.UseCase, "architecture": r.Arch, "version": r.Version, "channel": r.Channel} {
		if !segmentRE.MatchString(v) {
			return fmt.Errorf("release %s: %s %q cannot be a directory of the download tree; use letters, digits, . _ + - (not starting with a dot)", r.AssetID, what, v)
		}
	}
	if r.Created.IsZero() || r.AssetID == "" {
		return fmt.Errorf("release of %s %s %s: no run (asset id and start time)", r.UseCase, r.Arch, r.Version)
	}
	return nil
}
