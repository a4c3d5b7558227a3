package debimage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-images/kiln/internal/config"
)

// basePath is where the base tarball for key lives in the cache.
func basePath(cacheDir, key string) string {
	return filepath.Join(cacheDir, "base-"+key+".tar")
}

// base returns the path of the base tarball, from the cache or freshly
// bootstrapped, and whether it came from the cache.
func (b *builder) base(ctx context.Context) (string, bool, error) {
	s := b.s
	final := basePath(s.CacheDir, b.key)
	hit := func() (string, bool, error) {
		b.step("bootstrap (cache hit)")(nil)
		return final, true, nil
	}
	if isFile(final) {
		return hit()
	}
	if err := os.MkdirAll(s.CacheDir, 0o755); err != nil {
		return "", false, fmt.Errorf("cache dir: %w", err)
	}
	// One bootstrap per key at a time; whoever waited finds the tarball.
	unlock, err := lockFile(ctx, filepath.Join(s.CacheDir, "base-"+b.key+".lock"))
	if err != nil {
		return "", false, err
	}
	defer unlock()
	if isFile(final) {
		return hit()
	}
	// Leftovers of killed bootstraps of this key; nobody else writes them
	// while we hold the lock.
	old, _ := filepath.Glob(filepath.Join(s.CacheDir, ".base-"+b.key+".tar.*"))
	for _, p := range old {
		os.Remove(p)
	}

	done := b.step("bootstrap (cache miss)")
	err = b.bootstrap(ctx, final)
	done(err)
	if err != nil {
		return "", false, err
	}
	return final, false, nil
}

// bootstrap runs mmdebstrap to make the base tarball and renames it to
// final once complete.
func (b *builder) bootstrap(ctx context.Context, final string) error {
	s := b.s
	agentDir := filepath.Join(s.WorkDir, "agent")
	if err := os.MkdirAll(agentDir, 0o755); err != nil {
		return err
	}
	script, err := writeFile(agentDir, "kiln-agent")
	if err != nil {
		return err
	}
	unit, err := writeFile(agentDir, "kiln-agent.service")
	if err != nil {
		return err
	}
	var suffix [8]byte
	rand.Read(suffix[:])
	tmp := filepath.Join(s.CacheDir, ".base-"+b.key+".tar."+hex.EncodeToString(suffix[:]))
	defer os.Remove(tmp) // gone after the rename; otherwise a failed attempt

	args := append(b.mmdebstrapArgs(),
		"--variant=minbase",
		"--include="+strings.Join(s.packages(), ","),
		// /dev nodes cannot be unpacked in unshare mode; the provisioning
		// run makes /dev itself.
		"--skip=output/dev",
		`--customize-hook=chroot "$1" mkdir -p `+filepath.Dir(agentScript)+" "+filepath.Dir(agentWants),
		"--customize-hook=upload "+quote(script)+" "+agentScript,
		"--customize-hook=upload "+quote(unit)+" "+agentUnit,
		`--customize-hook=chroot "$1" sh -ec 'chmod 0755 `+agentScript+`; chmod 0644 `+agentUnit+`; ln -sf `+agentUnit+" "+agentWants+`'`,
		// Not the build host's name (nor its file mode).
		`--customize-hook=chroot "$1" sh -c 'rm -f /etc/hostname && echo localhost >/etc/hostname'`,
		// mmdebstrap cleans the apt cache only after the hooks.
		`--customize-hook=chroot "$1" apt-get clean`,
		s.Suite, tmp, s.Mirror,
	)
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

// mmdebstrapArgs are the options every run has.
func (b *builder) mmdebstrapArgs() []string {
	mode := "root"
	if b.unshare {
		mode = "unshare"
	}
	return []string{"--mode=" + mode, "--architectures=amd64", "--format=tar"}
}

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
	// Extra vars are secrets: a playbook that prints one must not put it
	// in the log, the progress output or an error.
	w := &lineWriter{log: logf, redact: config.Redactor(config.SecretsOf(b.s.Steps)), fn: func(line string) {
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
