package debimage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/redact"
)

// basePath is where the base for key lives in the cache: a directory as
// root, which provisioning mounts read-only under an overlay, and a
// tarball in unshare mode, which mmdebstrap unpacks into its chroot.
func basePath(cacheDir, key string, unshare bool) string {
	if unshare {
		return filepath.Join(cacheDir, "base-"+key+".tar")
	}
	return filepath.Join(cacheDir, "base-"+key)
}

// base returns the path of the base root filesystem, from the cache or
// freshly bootstrapped, and whether it came from the cache.
func (b *builder) base(ctx context.Context) (string, bool, error) {
	s := b.s
	final := basePath(s.CacheDir, b.key, b.unshare)
	present := func() bool {
		fi, err := os.Stat(final)
		return err == nil && fi.IsDir() == !b.unshare
	}
	hit := func() (string, bool, error) {
		b.step("bootstrap (cache hit)")(nil)
		return final, true, nil
	}
	if present() {
		return hit()
	}
	if err := os.MkdirAll(s.CacheDir, 0o755); err != nil {
		return "", false, fmt.Errorf("cache dir: %w", err)
	}
	// One bootstrap per key at a time; whoever waited finds the base.
	unlock, err := lockFile(ctx, filepath.Join(s.CacheDir, "base-"+b.key+".lock"))
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if present() {
		return hit()
	}
	// Leftovers of killed bootstraps of this key; nobody else writes them
	// while we hold the lock.
	old, _ := filepath.Glob(filepath.Join(s.CacheDir, ".base-"+b.key+".*"))
	for _, p := range old {
		if err := RemoveAll(ctx, p); err != nil {
			return "", false, fmt.Errorf("cache dir: %w", err)
		}
	}

	done := b.step("bootstrap (cache miss)")
	if b.unshare {
		err = b.bootstrapTar(ctx, final)
	} else {
		err = b.bootstrapDir(ctx, final)
	}
	done(err)
	if err != nil {
		return "", false, err
	}
	return final, false, nil
}

// bootstrapArgs are mmdebstrap's arguments for a base in format, up to
// the suite: minbase with what booting needs, a small initrd and the guest
// agent.
func (b *builder) bootstrapArgs(format string) ([]string, error) {
	s := b.s
	agentDir := filepath.Join(s.WorkDir, "agent")
	if err := os.MkdirAll(agentDir, 0o755); err != nil {
		return nil, err
	}
	// The base's files, written out for mmdebstrap to upload: name ->
	// path on this machine.
	src := map[string]string{}
	for _, f := range baseFiles {
		name := path.Base(f)
		p, err := writeFile(agentDir, name)
		if err != nil {
			return nil, err
		}
		src[name] = quote(p)
	}
	return append(b.mmdebstrapArgs(format),
		"--variant=minbase",
		"--include="+strings.Join(s.packages(), ","),
		// Essential hooks run before the included packages are installed:
		// the kernel's installation makes the initrd once, already small.
		`--essential-hook=chroot "$1" mkdir -p `+filepath.Dir(initramfsConf)+" "+filepath.Dir(initramfsHook),
		"--essential-hook=upload "+src["initramfs.conf"]+" "+initramfsConf,
		"--essential-hook=upload "+src["initramfs-hook"]+" "+initramfsHook,
		`--essential-hook=chroot "$1" sh -ec 'chmod 0644 `+initramfsConf+`; chmod 0755 `+initramfsHook+`'`,
		`--customize-hook=chroot "$1" mkdir -p `+filepath.Dir(agentScript)+" "+filepath.Dir(agentWants),
		"--customize-hook=upload "+src["kiln-agent"]+" "+agentScript,
		"--customize-hook=upload "+src["kiln-agent.service"]+" "+agentUnit,
		`--customize-hook=chroot "$1" sh -ec 'chmod 0755 `+agentScript+`; chmod 0644 `+agentUnit+`; ln -sf `+agentUnit+" "+agentWants+`'`,
		// Not the build host's name (nor its file mode).
		`--customize-hook=chroot "$1" sh -c 'rm -f /etc/hostname && echo localhost >/etc/hostname'`,
		// mmdebstrap cleans the apt cache only after the hooks.
		`--customize-hook=chroot "$1" apt-get clean`,
		dropUnsafeIO,
	), nil
}

// bootstrapDir bootstraps into a directory of the work directory, which
// removing the work directory cleans up should kiln die meanwhile (mounts
// included), and moves it into the cache once it is complete and durable.
func (b *builder) bootstrapDir(ctx context.Context, final string) error {
	s := b.s
	dir := filepath.Join(s.WorkDir, "base")
	if err := RemoveAll(ctx, dir); err != nil {
		return err
	}
	args, err := b.bootstrapArgs("directory")
	if err != nil {
		return err
	}
	args = append(args, s.Suite, dir, s.Mirror)
	logPath := filepath.Join(s.WorkDir, "bootstrap.log")
	if err := b.mmdebstrap(ctx, logPath, args, nil); err != nil {
		return fmt.Errorf("bootstrap %s (log %s): %w", s.Suite, logPath, err)
	}
	// mmdebstrap makes device nodes in /dev; images have none there (the
	// kernel mounts devtmpfs), as in unshare mode, where they cannot be
	// made.
	if err := emptyDir(filepath.Join(dir, "dev")); err != nil {
		return err
	}
	// Builds trust whatever the cache holds, so it must be whole on disk
	// before it is there. One syncfs is far cheaper than a sync of each of
	// the tree's files.
	if err := syncFS(dir); err != nil {
		return err
	}
	err = os.Rename(dir, final)
	if errors.Is(err, unix.EXDEV) {
		err = b.copyIntoCache(ctx, dir, final)
	}
	if err != nil {
		return fmt.Errorf("cache base: %w", err)
	}
	return syncDir(s.CacheDir)
}

// copyIntoCache copies dir to final on another filesystem, through a
// temporary name that base removes should the copy not finish.
func (b *builder) copyIntoCache(ctx context.Context, dir, final string) error {
	tmp := filepath.Join(b.s.CacheDir, ".base-"+b.key+"."+randomSuffix())
	if _, err := run(ctx, b.log, command{name: "cp", args: []string{"-a", "--", dir, tmp}}); err != nil {
		return err
	}
	if err := syncFS(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

func randomSuffix() string {
	var suffix [8]byte
	rand.Read(suffix[:])
	return hex.EncodeToString(suffix[:])
}

// bootstrapTar runs mmdebstrap to make the base tarball (unshare mode)
// and renames it to final once complete.
func (b *builder) bootstrapTar(ctx context.Context, final string) error {
	s := b.s
	tmp := filepath.Join(s.CacheDir, ".base-"+b.key+".tar."+randomSuffix())
	defer os.Remove(tmp) // gone after the rename; otherwise a failed attempt

	args, err := b.bootstrapArgs("tar")
	if err != nil {
		return err
	}
	// /dev nodes cannot be unpacked in unshare mode; the provisioning
	// run makes /dev itself.
	args = append(args, "--skip=output/dev", s.Suite, tmp, s.Mirror)
	logPath := filepath.Join(s.WorkDir, "bootstrap.log")
	if err := b.mmdebstrap(ctx, logPath, args, nil); err != nil {
		return fmt.Errorf("bootstrap %s (log %s): %w", s.Suite, logPath, err)
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(s.CacheDir)
}

// mmdebstrapArgs are the options every run has, for output in format.
// dpkg may skip its fsync calls: nothing a build makes is durable before
// the build says so (syncFS, syncFile, the import's fsync), and a build
// that dies starts again from the cache. dropUnsafeIO keeps the option out
// of the image.
func (b *builder) mmdebstrapArgs(format string) []string {
	mode := "root"
	if b.unshare {
		mode = "unshare"
	}
	return []string{"--mode=" + mode, "--architectures=amd64", "--format=" + format, "--dpkgopt=force-unsafe-io"}
}

// dropUnsafeIO is the last customize hook of every run: mmdebstrap leaves
// its --dpkgopt options in the image, and dpkg there must keep its fsync
// calls.
const dropUnsafeIO = `--customize-hook=rm -f "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"`

// mmdebstrap runs mmdebstrap with args, its output going to logPath and,
// line by line, to onLine (when set). A failure's error carries the last
// lines of output.
func (b *builder) mmdebstrap(ctx context.Context, logPath string, args []string, onLine func(string)) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	last := &ring{n: outputTail}
	// Extra vars and secret variables are secrets: a step that prints
	// one must not put it in the log, the progress output or an error.
	secrets := &redact.Secrets{}
	secrets.Add(b.secrets()...)
	w := &lineWriter{log: logf, secrets: secrets, fn: func(line string) {
		last.add(line)
		if onLine != nil {
			onLine(line)
		}
	}}
	var env []string
	if b.tmpDir != "" {
		env = append(env, "TMPDIR="+b.tmpDir)
	}
	_, err = run(ctx, b.log, command{name: "mmdebstrap", args: args, env: env, stream: w, term: true})
	w.Close()
	if err != nil {
		return fmt.Errorf("%w:\n%s", err, last)
	}
	return nil
}

// emptyDir removes everything in dir, keeping dir.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// syncFS flushes the filesystem holding p to disk.
func syncFS(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", p, err)
	}
	return nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return err
	}
	return nil
}

// secrets are the values the build's output must not show: the steps'
// extra vars and the secret variables, longest first so that a secret
// holding another is blanked whole.
func (b *builder) secrets() []string {
	out := config.SecretsOf(b.s.Steps)
	for _, v := range b.s.Vars {
		if v.Secret && v.Value != "" {
			out = append(out, v.Value)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}
