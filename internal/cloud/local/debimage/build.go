package debimage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// builder is one build in progress.
type builder struct {
	s       Spec
	steps   []step
	key     string
	unshare bool   // mmdebstrap unshare mode (not root)
	tmpDir  string // TMPDIR for mmdebstrap's scratch chroot; "" for the default
	log     *slog.Logger
}

// Check reports, without building anything, what Build would refuse of s
// before it starts: the fields (architecture, suite, packages, sizes,
// exports), the recipe's steps and the files they name, and the tools the
// build runs. Errors about s match cloud.ErrInvalid.
func Check(s Spec) error {
	s, err := s.normalize()
	if err != nil {
		return err
	}
	steps, err := parseSteps(s.Dir, s.Steps)
	if err != nil {
		return err
	}
	b := &builder{s: s, steps: steps, unshare: os.Geteuid() != 0, log: s.Log}
	if err := b.checkTools(); err != nil {
		return err
	}
	return b.checkUnshareAccess()
}

// Build makes a bootable disk image as s describes, in s.WorkDir. Bad input
// is an error matching cloud.ErrInvalid that names the field and value; a
// failed provisioning step is a *StepError.
func Build(ctx context.Context, s Spec) (Result, error) {
	s, err := s.normalize()
	if err != nil {
		return Result{}, err
	}
	steps, err := parseSteps(s.Dir, s.Steps)
	if err != nil {
		return Result{}, err
	}
	b := &builder{s: s, steps: steps, key: CacheKey(s), unshare: os.Geteuid() != 0, log: s.Log}
	if err := b.checkTools(); err != nil {
		return Result{}, err
	}
	if err := b.checkUnshareAccess(); err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(s.WorkDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("work dir: %w", err)
	}
	if b.tmpDir, err = b.scratchDir(); err != nil {
		return Result{}, err
	}
	start := time.Now()

	base, hit, err := b.base(ctx)
	if err != nil {
		return Result{}, err
	}
	b.log.Info("base root filesystem", "cache", map[bool]string{true: "hit", false: "miss"}[hit],
		"key", b.key, "path", base)

	l := newLayout(s, b.key, steps)
	rootfs, err := b.provision(ctx, base, l)
	if err != nil {
		return Result{}, err
	}

	res := Result{CacheKey: b.key, CacheHit: hit, Base: base, Exports: map[string]string{}}
	done := b.step("disk")
	res.Disk, res.Kernel, err = b.disk(ctx, rootfs, l)
	if cerr := rootfs.close(); err == nil {
		err = cerr
	}
	done(err)
	if err != nil {
		return Result{}, err
	}
	for _, f := range s.Exports {
		done := b.step("export " + f)
		p, err := b.export(ctx, res.Disk, f)
		done(err)
		if err != nil {
			return Result{}, err
		}
		res.Exports[f] = p
	}
	b.log.Info("image built", "disk", res.Disk, "kernel", res.Kernel, "took", time.Since(start).Round(time.Second))
	return res, nil
}

// disk writes WorkDir/disk.raw from the provisioned tree and returns its
// path and the kernel it boots.
func (b *builder) disk(ctx context.Context, t tree, l layout) (string, string, error) {
	disk := filepath.Join(b.s.WorkDir, "disk.raw")
	var info rootInfo
	var bootDir string
	var err error
	if t.tar != "" {
		bootDir = filepath.Join(b.s.WorkDir, "boot")
		info, err = scanRoot(t.tar, bootDir)
	} else {
		bootDir = filepath.Join(t.dir, "boot")
		info, err = scanDir(t.dir)
	}
	if err != nil {
		return "", "", err
	}
	kernel, err := info.kernel()
	if err != nil {
		return "", "", err
	}
	esp, root, err := b.partition(ctx, disk, l)
	if err != nil {
		return "", "", err
	}
	if err := info.fits(root.size, l.size); err != nil {
		return "", "", err
	}
	if err := b.writeRoot(ctx, t, disk, root, l); err != nil {
		return "", "", err
	}
	if err := b.writeESP(ctx, disk, esp, l, bootDir, kernel); err != nil {
		return "", "", err
	}
	// The import syncs the disk before it enters the store; starting the
	// writing now lets the disk take it while the exports are made.
	startWriteback(disk)
	return disk, kernel, nil
}

// startWriteback asks the kernel to start writing p's dirty pages to disk,
// without waiting. Only an optimization: errors are ignored.
func startWriteback(p string) {
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

// step reports the start of a step to the Progress, if any, and returns
// the function that reports its end.
func (b *builder) step(name string) func(error) {
	b.log.Debug("step", "name", name)
	if b.s.Progress == nil {
		return func(error) {}
	}
	return b.s.Progress.Step(name)
}

// checkTools names every missing program at once, with its Debian package.
func (b *builder) checkTools() error {
	tools := [][2]string{
		{"mmdebstrap", "mmdebstrap"}, {"tar", "tar"}, {"sfdisk", "fdisk"},
		{"mkfs.ext4", "e2fsprogs"}, {"mkfs.vfat", "dosfstools"},
		{"mmd", "mtools"}, {"mcopy", "mtools"},
	}
	if slices.ContainsFunc(b.s.Exports, func(f string) bool { return f != "raw" }) {
		tools = append(tools, [2]string{"qemu-img", "qemu-utils"})
	}
	if slices.ContainsFunc(b.steps, func(st step) bool { return st.kind == "ansible" }) {
		tools = append(tools, [2]string{"ansible-playbook", "ansible"})
	}
	if b.unshare {
		tools = append(tools, [2]string{"unshare", "util-linux"}, [2]string{"newuidmap", "uidmap"})
	}
	var missing []string
	for _, t := range tools {
		if _, err := lookTool(t[0]); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", t[0], t[1]))
		}
	}
	if !isFile(systemdBoot) {
		missing = append(missing, systemdBoot+" (package systemd-boot-efi)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the local image builder needs: %s", strings.Join(missing, ", "))
	}
	return nil
}

// checkUnshareAccess makes sure, in unshare mode, that the namespace's root
// (which maps to a subordinate id, not the user) can read the ansible
// playbooks ansible-playbook reads in place.
func (b *builder) checkUnshareAccess() error {
	if !b.unshare {
		return nil
	}
	var errs []error
	for _, st := range b.steps {
		if st.kind != "ansible" {
			continue
		}
		if err := worldReadable(st.src); err != nil {
			errs = append(errs, fmt.Errorf("step %d (%s): in unshare mode the playbook must be readable by others: %w", st.n, st.label, err))
		}
	}
	return errors.Join(errs...)
}

// worldReadable checks that others may read p and enter every directory
// above it.
func worldReadable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o004 == 0 {
		return fmt.Errorf("%s is not readable by others (mode %v)", p, fi.Mode().Perm())
	}
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("directory %s cannot be entered by others (mode %v)", d, fi.Mode().Perm())
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

// scratchDir picks mmdebstrap's TMPDIR: WorkDir/tmp as root, so that the
// scratch chroot is in the caller's work directory and on its filesystem.
// In unshare mode the namespace's root must be able to use it, which a
// private work directory does not allow, so mmdebstrap keeps its default.
func (b *builder) scratchDir() (string, error) {
	if b.unshare {
		return "", nil
	}
	dir := filepath.Join(b.s.WorkDir, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}
