package debimage

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// Defaults applied to an empty Spec field.
const (
	DefaultSuite  = "bookworm"
	DefaultMirror = "http://deb.debian.org/debian"
)

// MinDiskSize is the smallest disk the builder accepts: the ESP takes
// 261 MiB and a minimal root filesystem with a kernel about 700 MiB.
const MinDiskSize = 1 << 30

// Spec describes one image build.
type Spec struct {
	Arch     string        // x86_64; arm64 is not supported by the local builder yet
	Suite    string        // Debian suite, e.g. bookworm; default DefaultSuite
	Mirror   string        // http(s) or file URL of a Debian mirror; default DefaultMirror
	Packages []string      // the recipe's packages; the builder adds what booting needs
	Steps    []config.Step // provisioning, paths relative to Dir
	Vars     []cloud.Var   // the recipe's variables: shell steps' environment, Ansible's extra vars
	Dir      string        // resolves the steps' relative paths
	DiskSize int64         // bytes, at least MinDiskSize; rounded up to a whole MiB
	Exports  []string      // qcow2, vmdk, vhd, raw
	// WorkDir is a scratch directory the caller owns and removes; all output
	// goes here. It is created if missing.
	WorkDir string
	// CacheDir holds base root filesystem tarballs, one per CacheKey.
	CacheDir string
	Progress cloud.Progress // may be nil
	Log      *slog.Logger   // may be nil
}

// Result is a finished build. All paths are inside Spec.WorkDir.
type Result struct {
	Disk     string            // raw disk: GPT, ESP, ext4 root
	Exports  map[string]string // format -> path; "raw" is Disk itself
	CacheKey string            // key of the base used
	Base     string            // the base in the cache: a directory, or in unshare mode a tarball
	CacheHit bool              // whether the base came from the cache
	Kernel   string            // version of the kernel the disk boots, e.g. 6.1.0-26-amd64
}

// StepError is a provisioning step that failed.
type StepError struct {
	Step     string // the step's label (its name, or kind and path)
	ExitCode int    // its exit status
	Tail     string // the last lines of its output
}

func (e *StepError) Error() string {
	return fmt.Sprintf("provisioning step %q failed with exit status %d:\n%s", e.Step, e.ExitCode, e.Tail)
}

// Exports the builder can write, besides the raw disk itself.
var exportFormats = []string{"qcow2", "raw", "vhd", "vmdk"}

const (
	espSize = 260 << 20 // bytes; the least size at which FAT32 works with 4 KiB clusters everywhere
	mib     = 1 << 20
)

var (
	suiteRE   = regexp.MustCompile(`^[a-z][a-z0-9.-]*$`)
	packageRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+|/[a-z0-9.-]+)?$`)
)

// normalize returns s with defaults applied, or an error naming every bad
// field. Errors match cloud.ErrInvalid.
func (s Spec) normalize() (Spec, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch s.Arch {
	case "x86_64":
	case "arm64":
		bad("arch %q: not supported by the local builder yet (supported: x86_64)", s.Arch)
	default:
		bad("arch %q: unknown architecture (supported: x86_64)", s.Arch)
	}
	if s.Suite == "" {
		s.Suite = DefaultSuite
	} else if !suiteRE.MatchString(s.Suite) {
		bad("suite %q: not a Debian suite name (lower-case letters, digits, '.', '-')", s.Suite)
	}
	if s.Mirror == "" {
		s.Mirror = DefaultMirror
	} else if u, err := url.Parse(s.Mirror); err != nil || u.Host == "" && u.Scheme != "file" ||
		!slices.Contains([]string{"http", "https", "file"}, u.Scheme) || strings.ContainsAny(s.Mirror, " \t\n") {
		bad("mirror %q: want an http, https or file URL of a Debian mirror", s.Mirror)
	}
	for _, p := range s.Packages {
		if !packageRE.MatchString(p) {
			bad("package %q: not a Debian package name (optionally with =version or /suite)", p)
		}
	}
	if s.DiskSize < MinDiskSize {
		bad("disk size %d bytes: too small, the local builder needs at least %d (1GiB)", s.DiskSize, int64(MinDiskSize))
	}
	s.DiskSize = (s.DiskSize + mib - 1) / mib * mib
	var exports []string
	for _, f := range s.Exports {
		if !slices.Contains(exportFormats, f) {
			bad("export format %q: unknown (supported: %s)", f, strings.Join(exportFormats, ", "))
			continue
		}
		if !slices.Contains(exports, f) {
			exports = append(exports, f)
		}
	}
	s.Exports = exports
	if s.WorkDir == "" {
		bad("work dir: empty")
	}
	if s.CacheDir == "" {
		bad("cache dir: empty")
	}
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if err := errors.Join(errs...); err != nil {
		return s, cloud.Mark(err, cloud.ErrInvalid)
	}
	return s, nil
}

// packages is the sorted, de-duplicated list of packages the base gets: the
// recipe's plus what booting and the guest agent need.
func (s Spec) packages() []string {
	pkgs := append([]string{
		"linux-image-amd64", // kernel and, through initramfs-tools, an initrd
		"systemd-sysv",      // init
		"udev",
		"kmod", // modprobe, for the agent's qemu_fw_cfg
		// systemd-logind needs it to run; logind powers the machine off
		// on the ACPI power button, which is how a deployment's VM (and
		// an EC2 instance) is asked to shut down cleanly.
		"dbus",
	}, s.Packages...)
	slices.Sort(pkgs)
	return slices.Compact(pkgs)
}
