package qemuboot

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// probeDeadline bounds a probe. Under KVM the firmware and shell take a few
// seconds (five of them the shell's startup countdown).
const probeDeadline = 40 * time.Second

// ProbeKVM reports whether qemu can boot a guest with KVM here. It starts
// the same firmware Run uses, with -accel kvm -cpu host, and has the UEFI
// shell run a script that prints a random word and powers off; KVM works if
// the word shows on the serial console and qemu exits by itself within a
// deadline. On some hosts /dev/kvm opens fine and a guest still stops with
// a KVM internal error, which is why the device file is not enough. Every
// call probes anew; a caller that boots often can probe once and pass
// Accel "kvm" or "tcg".
func ProbeKVM(ctx context.Context) bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return probe(ctx, "kvm", DefaultOVMFCode, DefaultOVMFVars) == nil
}

// probe boots the firmware into its shell with accel and returns nil if the
// probe script ran.
func probe(ctx context.Context, accel, code, vars string) error {
	dir, err := os.MkdirTemp("", "kiln-qemu-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var nonce [8]byte
	rand.Read(nonce[:])
	word := "kiln-probe-" + hex.EncodeToString(nonce[:])
	// The shell runs startup.nsh from the first filesystem it finds: here
	// a host directory qemu shows as a FAT disk.
	fat := filepath.Join(dir, "fat")
	if err := os.Mkdir(fat, 0o755); err != nil {
		return err
	}
	script := "echo " + word + "\r\nreset -s\r\n"
	if err := os.WriteFile(filepath.Join(fat, "startup.nsh"), []byte(script), 0o644); err != nil {
		return err
	}
	varsCopy := filepath.Join(dir, "vars.fd")
	if err := copyFile(vars, varsCopy); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "console.log")

	ctx, cancel := context.WithTimeout(ctx, probeDeadline)
	defer cancel()
	args := []string{
		"-nodefaults", "-display", "none", "-no-reboot", "-machine", "q35", "-accel", accel, "-m", "256",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + qemuPath(code),
		"-drive", "if=pflash,format=raw,unit=1,file=" + qemuPath(varsCopy),
		"-drive", "if=virtio,format=raw,readonly=on,file=fat:" + qemuPath(fat),
		"-chardev", "file,id=console,path=" + qemuPath(logPath), "-serial", "chardev:console",
	}
	if accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// qemu stops the guest, and waits, on a KVM internal error: end the
	// probe as soon as it says so.
	stderr := &watchBuffer{tailBuffer: tailBuffer{max: 8 << 10}, word: kvmInternalError, seen: cancel}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	err = cmd.Run()
	console, _ := os.ReadFile(logPath)
	ran := bytes.Contains(bytes.ReplaceAll(console, []byte("\r"), nil), []byte("\n"+word+"\n"))
	switch {
	case err == nil && ran:
		return nil
	case strings.Contains(stderr.String(), kvmInternalError):
		return fmt.Errorf("probe with %s: %s", accel, kvmInternalError)
	case ctx.Err() != nil:
		return fmt.Errorf("probe with %s: the firmware did not run the probe within %s", accel, probeDeadline)
	case err != nil:
		return fmt.Errorf("probe with %s: qemu: %v: %s", accel, err, strings.TrimSpace(stderr.String()))
	default:
		return errors.New("probe with " + accel + ": qemu exited but the probe script did not run")
	}
}

// kvmInternalError is what qemu prints when KVM cannot run the guest.
const kvmInternalError = "KVM internal error"

// watchBuffer is a tailBuffer that calls seen once word shows up.
type watchBuffer struct {
	tailBuffer
	word string
	seen func()
}

func (w *watchBuffer) Write(p []byte) (int, error) {
	n, err := w.tailBuffer.Write(p)
	if strings.Contains(w.tailBuffer.String(), w.word) {
		w.seen()
	}
	return n, err
}
