package debimage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// tree is a provisioned root filesystem, ready to be written to the disk.
type tree struct {
	// dir holds it as a directory (root mode): an overlay mount of the
	// base with the steps' changes on top, or a copy of the base where
	// overlayfs is not available.
	dir string
	// tar holds it as a tarball (unshare mode).
	tar string
	// unmount detaches dir's overlay; nil without one.
	unmount func() error
}

// close unmounts the tree's overlay, if any; the work directory's owner
// removes the rest.
func (t *tree) close() error {
	if t.unmount == nil {
		return nil
	}
	err := t.unmount()
	t.unmount = nil
	return err
}

// provision runs the recipe's steps on top of the base. As root the base
// is a directory the steps never change: they run in an overlay of it at
// WorkDir/rootfs, so a build copies nothing of the base and writes only
// what its steps change. In unshare mode the base is a tarball that
// mmdebstrap unpacks into its chroot, and the result is WorkDir/rootfs.tar.
func (b *builder) provision(ctx context.Context, base string, l layout) (t tree, err error) {
	s := b.s
	hookDir := filepath.Join(s.WorkDir, "hooks")
	if err := os.MkdirAll(hookDir, 0o755); err != nil {
		return t, err
	}
	fileStep, err := writeFile(hookDir, "file-step")
	if err != nil {
		return t, err
	}
	fstab := filepath.Join(hookDir, "fstab")
	if err := os.WriteFile(fstab, []byte(l.fstab()), 0o644); err != nil {
		return t, err
	}
	varDir, err := writeVarFiles(hookDir, s.Vars, b.steps)
	if err != nil {
		return t, fmt.Errorf("write the recipe's variables: %w", err)
	}
	if varDir != "" {
		// The values are needed only while the hooks run.
		defer os.RemoveAll(varDir)
	}
	hv := hookVars{env: varDir != "" && len(s.Vars) > 0, extra: varDir != ""}
	var nonce [12]byte
	rand.Read(nonce[:])
	w := &stepWatcher{nonce: hex.EncodeToString(nonce[:]), steps: b.steps, progress: b.step}

	var args []string
	var target string
	if b.unshare {
		t.tar = filepath.Join(s.WorkDir, "rootfs.tar")
		target = t.tar
		args = append(b.mmdebstrapArgs("tar"), "--setup-hook=tar-in "+quote(base)+" /")
	} else {
		t.dir = filepath.Join(s.WorkDir, "rootfs")
		target = t.dir
		if t.unmount, err = b.overlay(ctx, base, t.dir); err != nil {
			return t, err
		}
		// The target holds the base already.
		args = append(b.mmdebstrapArgs("directory"), "--skip=check/empty")
	}
	defer func() {
		if err != nil {
			t.close()
			if t.tar != "" {
				os.Remove(t.tar)
			}
		}
	}()
	args = append(args,
		// Start from the base instead of bootstrapping: no packages, no
		// apt update (steps that install run apt-get update themselves).
		"--variant=custom", "--skip=update",
		`--customize-hook=chroot "$1" mkdir -p /boot/efi `+strings.Join(scratchDirs(b.steps), " "),
		"--customize-hook=upload "+quote(fileStep)+" "+chrootFileStep,
		// Before the steps, so that they may add to it.
		"--customize-hook=upload "+quote(fstab)+" /etc/fstab",
	)
	if varDir != "" {
		args = append(args, "--customize-hook=copy-in "+quote(varDir)+" "+chrootScratch)
	}
	for _, st := range b.steps {
		for _, h := range st.hooks(w.nonce, hv) {
			args = append(args, "--customize-hook="+h)
		}
	}
	args = append(args, dropUnsafeIO, s.Suite, target, s.Mirror)

	logPath := filepath.Join(s.WorkDir, "provision.log")
	err = b.mmdebstrap(ctx, logPath, args, w.line)
	w.finish(err)
	if w.failed != nil {
		return t, w.failed
	}
	if err != nil {
		return t, fmt.Errorf("provision (log %s): %w", logPath, err)
	}
	if t.dir != "" {
		// As in bootstrapDir: no device nodes in the image.
		if err := emptyDir(filepath.Join(t.dir, "dev")); err != nil {
			return t, err
		}
	}
	return t, nil
}

// overlay makes dir a writable view of the read-only base: an overlay
// mount whose upper layer, in the work directory, takes every change, so
// the base stays as the cache holds it. index=on keeps hard links whole
// when one of their names is changed, as on a plain filesystem. Where
// overlayfs cannot be mounted (a container without it, a path overlayfs
// cannot take), dir becomes a copy of the base instead: slower, same
// result. The returned function unmounts the overlay, nil for a copy.
func (b *builder) overlay(ctx context.Context, base, dir string) (func() error, error) {
	layer := filepath.Join(b.s.WorkDir, "layer")
	upper, work := filepath.Join(layer, "upper"), filepath.Join(layer, "work")
	for _, d := range []string{dir, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	var err error
	if strings.ContainsAny(base+upper+work, ",:\\") {
		err = fmt.Errorf("a path holds one of , : \\")
	} else {
		opts := "lowerdir=" + base + ",upperdir=" + upper + ",workdir=" + work
		if err = unix.Mount("overlay", dir, "overlay", 0, opts+",index=on"); err != nil {
			err = unix.Mount("overlay", dir, "overlay", 0, opts)
		}
	}
	if err == nil {
		return func() error { return unmount(dir) }, nil
	}
	b.log.Info("overlayfs not available; copying the base", "err", err)
	if _, err := run(ctx, b.log, command{name: "cp", args: []string{"-a", "--", base + "/.", dir}}); err != nil {
		return nil, fmt.Errorf("copy base: %w", err)
	}
	return nil, nil
}

// unmount detaches the mount at dir; when something still uses it (a
// process a step left behind), lazily.
func unmount(dir string) error {
	err := unix.Unmount(dir, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(dir, unix.MNT_DETACH)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// stepWatcher follows the provisioning run's output: the begin and end
// lines each step's hook prints mark where its output is, and the end line
// carries its exit status.
type stepWatcher struct {
	nonce    string
	steps    []step
	progress func(name string) func(error)

	cur    *step // running step, if any
	done   func(error)
	out    ring // the running step's last lines
	failed *StepError
}

func (w *stepWatcher) line(l string) {
	marker := "kiln-step " + w.nonce + " "
	i := strings.Index(l, marker)
	if i < 0 {
		if w.cur != nil {
			w.out.add(l)
		}
		return
	}
	// Output that did not end in a newline shares the marker's line.
	if i > 0 && w.cur != nil {
		w.out.add(l[:i])
	}
	var what string
	var n, status int
	fields, err := fmt.Sscan(l[i+len(marker):], &what, &n)
	if err != nil || fields != 2 {
		return
	}
	switch what {
	case "begin":
		w.start(n)
	case "end":
		if _, err := fmt.Sscan(l[i+len(marker):], &what, &n, &status); err != nil {
			return
		}
		w.end(n, status)
	}
}

func (w *stepWatcher) start(n int) {
	if n < 1 || n > len(w.steps) {
		return
	}
	w.cur = &w.steps[n-1]
	w.out = ring{n: outputTail}
	w.done = w.progress(w.cur.label)
}

func (w *stepWatcher) end(n, status int) {
	if w.cur == nil || w.cur.n != n {
		return
	}
	var err error
	if status != 0 {
		w.failed = &StepError{Step: w.cur.label, ExitCode: status, Tail: w.out.String()}
		err = w.failed
	}
	w.done(err)
	w.cur, w.done = nil, nil
}

// finish ends a step that was still running when mmdebstrap stopped.
func (w *stepWatcher) finish(err error) {
	if w.cur == nil {
		return
	}
	if err == nil {
		err = errors.New("provisioning ended inside the step")
	}
	w.done(err)
	w.cur, w.done = nil, nil
}
