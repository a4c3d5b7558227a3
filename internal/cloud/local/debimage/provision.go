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
)

// provision runs the recipe's steps on top of the base tarball and writes
// the result to WorkDir/rootfs.tar.
func (b *builder) provision(ctx context.Context, base string, l layout) (string, error) {
	s := b.s
	out := filepath.Join(s.WorkDir, "rootfs.tar")
	hookDir := filepath.Join(s.WorkDir, "hooks")
	if err := os.MkdirAll(hookDir, 0o755); err != nil {
		return "", err
	}
	fileStep, err := writeFile(hookDir, "file-step")
	if err != nil {
		return "", err
	}
	fstab := filepath.Join(hookDir, "fstab")
	if err := os.WriteFile(fstab, []byte(l.fstab()), 0o644); err != nil {
		return "", err
	}
	varDir, err := writeVarFiles(hookDir, s.Vars, b.steps)
	if err != nil {
		return "", fmt.Errorf("write the recipe's variables: %w", err)
	}
	if varDir != "" {
		// The values are needed only while the hooks run.
		defer os.RemoveAll(varDir)
	}
	hv := hookVars{env: varDir != "" && len(s.Vars) > 0, extra: varDir != ""}
	var nonce [12]byte
	rand.Read(nonce[:])
	w := &stepWatcher{nonce: hex.EncodeToString(nonce[:]), steps: b.steps, progress: b.step}

	args := append(b.mmdebstrapArgs(),
		// Start from the base instead of bootstrapping: no packages, no
		// apt update (steps that install run apt-get update themselves).
		"--variant=custom", "--skip=update",
		"--setup-hook=tar-in "+quote(base)+" /",
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
	args = append(args, s.Suite, out, s.Mirror)

	logPath := filepath.Join(s.WorkDir, "provision.log")
	err = b.mmdebstrap(ctx, logPath, args, w.line)
	w.finish(err)
	if w.failed != nil {
		os.Remove(out)
		return "", w.failed
	}
	if err != nil {
		os.Remove(out)
		return "", fmt.Errorf("provision (log %s): %w", logPath, err)
	}
	return out, nil
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
