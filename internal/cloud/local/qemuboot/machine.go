package qemuboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Machine is the qemu machine kiln boots its images in, for boot tests
// (Run) and for the VMs of deployments (package localunit): q35 with OVMF
// (the code read-only, a copy of the variable store in WorkDir), one
// virtio disk that is a qcow2 overlay in WorkDir backed by the image's raw
// disk, which qemu only reads, no display, and the first serial port
// written to a file.
type Machine struct {
	Name    string // qemu's -name
	Disk    string // the raw disk the overlay is backed by; never written
	WorkDir string // holds overlay.qcow2 and OVMF_VARS.fd
	LogPath string // the serial console
	Accel   string // "kvm" or "tcg" (resolve "auto" with ResolveAccel first)
	Memory  int    // MiB
	CPUs    int
	// OVMFCode and OVMFVars are the firmware and its variable store
	// template; defaults DefaultOVMFCode and DefaultOVMFVars.
	OVMFCode, OVMFVars string
}

// Overlay is the path of the machine's overlay disk.
func (m Machine) Overlay() string { return filepath.Join(m.WorkDir, "overlay.qcow2") }

// Prepare writes the overlay and the firmware variable store into
// WorkDir and returns qemu's arguments for the machine. With fresh, both
// are made anew (a boot test starts from the image as published); without,
// those an earlier boot left are kept, so that a VM keeps its disk across
// restarts.
func (m Machine) Prepare(ctx context.Context, fresh bool) ([]string, error) {
	if m.OVMFCode == "" {
		m.OVMFCode = DefaultOVMFCode
	}
	if m.OVMFVars == "" {
		m.OVMFVars = DefaultOVMFVars
	}
	if m.CPUs == 0 {
		m.CPUs = 1
	}
	disk, err := filepath.Abs(m.Disk)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(m.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	overlay := m.Overlay()
	if fresh || !exists(overlay) {
		// Made beside its final name and renamed, so that a crash never
		// leaves a half-written overlay a later boot would keep.
		tmp := overlay + ".tmp"
		os.Remove(tmp)
		out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", disk, tmp).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("overlay for %s: qemu-img: %v: %s", disk, err, bytes.TrimSpace(out))
		}
		if err := os.Rename(tmp, overlay); err != nil {
			return nil, fmt.Errorf("overlay for %s: %w", disk, err)
		}
	}
	vars := filepath.Join(m.WorkDir, "OVMF_VARS.fd")
	if fresh || !exists(vars) {
		if err := copyFile(m.OVMFVars, vars+".tmp"); err != nil {
			return nil, fmt.Errorf("firmware variables: %w", err)
		}
		if err := os.Rename(vars+".tmp", vars); err != nil {
			return nil, fmt.Errorf("firmware variables: %w", err)
		}
	}
	args := []string{
		"-name", m.Name,
		"-nodefaults", "-display", "none",
		"-machine", "q35", "-accel", m.Accel,
		"-m", strconv.Itoa(m.Memory), "-smp", strconv.Itoa(m.CPUs),
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + qemuPath(m.OVMFCode),
		"-drive", "if=pflash,format=raw,unit=1,file=" + qemuPath(vars),
		// The disk is the only boot device: a machine with a network card
		// (a deployment's VM) never tries to boot from the network.
		"-drive", "if=none,id=disk,format=qcow2,file=" + qemuPath(overlay),
		"-device", "virtio-blk-pci,drive=disk,bootindex=1",
		"-chardev", "file,id=console,path=" + qemuPath(m.LogPath),
		"-serial", "chardev:console",
	}
	if m.Accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	return args, nil
}

// ResolveAccel turns "auto" into "kvm" when ProbeKVM says KVM works here,
// else "tcg"; other values are returned as they are.
func ResolveAccel(ctx context.Context, accel string) string {
	if accel != "auto" && accel != "" {
		return accel
	}
	if ProbeKVM(ctx) {
		return "kvm"
	}
	return "tcg"
}

// QemuPath escapes a path for a qemu option list, where commas separate
// options.
func QemuPath(p string) string { return qemuPath(p) }

func exists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, os.ErrNotExist)
}
