package localunit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/unittest"
)

// shellDisk makes a small disk on which the firmware finds no operating
// system and runs its UEFI shell's startup.nsh instead: it prints the
// line the guest agent prints once a real image is up. A real image takes
// a minute to boot under TCG; this disk a few seconds, which lets the
// conformance suite boot it many times. (A real image is deployed by the
// end-to-end test in cmd/kiln.)
func shellDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "fat")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "startup.nsh"), []byte("echo "+readyMarker+"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", "fat:"+src, disk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	return disk
}

// oneDisk serves the same disk for every image.
type oneDisk string

func (d oneDisk) DiskFile(ctx context.Context, region, id, format string) (string, error) {
	return string(d), nil
}

func vmUnit(dir, dep string, variant int) deploy.Unit {
	cfg := &config.Unit{VM: &config.VMUnit{
		Memory: 256 << 20, CPUs: 1, Ports: map[string]int{"http": 8080},
		Restart: "on-failure", StopTimeout: config.Duration(2 * time.Second),
	}}
	if variant == 1 {
		cfg.VM.Memory = 384 << 20
	}
	return testUnit(dir, dep, "web", cfg, dep+"-vm"+string(rune('0'+variant)))
}

// qemuPID is the pid of the qemu process running u, from the process
// table: the one whose command line has the unit's overlay.
func qemuPID(t *testing.T, o Options, u deploy.Unit) int {
	t.Helper()
	overlay := filepath.Join(unitDir(o.StateDir, u), "overlay.qcow2")
	out, _ := exec.Command("pgrep", "-f", "qemu-system-x86_64 .*"+overlay).Output()
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0
	}
	pid := 0
	for _, c := range f[0] {
		pid = pid*10 + int(c-'0')
	}
	return pid
}

func TestVMConformance(t *testing.T) {
	o := testOptions(t)
	o.ReadyTimeout = 3 * time.Minute
	dir := t.TempDir()
	k := NewVM(o, oneDisk(shellDisk(t)), "tcg")
	unittest.Run(t, unittest.Harness{
		Kind: k,
		Unit: func(t *testing.T, dep string, variant int) deploy.Unit { return vmUnit(dir, dep, variant) },
		// Observed from outside: the unit's directory and a qemu process
		// with its overlay.
		Observe: func(t *testing.T, u deploy.Unit) (bool, bool) {
			if _, err := os.Stat(unitDir(o.StateDir, u)); err != nil {
				return false, qemuPID(t, o, u) != 0
			}
			return true, qemuPID(t, o, u) != 0
		},
		Kill: func(t *testing.T, u deploy.Unit) {
			pid := qemuPID(t, o, u)
			if pid == 0 {
				t.Fatal("no qemu to kill")
			}
			syscall.Kill(pid, syscall.SIGKILL)
		},
		Timeout: 4 * time.Minute,
	})
	assertNoSecret(t, o.StateDir)
}

// The VM's settings reach qemu: memory, the forwarded port on loopback,
// the QMP socket, the ready entry and the inputs through a pipe.
func TestVMArguments(t *testing.T) {
	o := testOptions(t)
	dir := t.TempDir()
	m := &vmImpl{disks: oneDisk(shellDisk(t)), accel: "tcg"}
	u := vmUnit(dir, "dev", 0)
	unit := filepath.Join(o.StateDir, "u")
	l, err := m.launch(t.Context(), u, unit, map[string]int{"http": 34567}, true)
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(l.Argv, " ")
	for _, want := range []string{
		"-m 256", "-accel tcg", "hostfwd=tcp:127.0.0.1:34567-:8080", "romfile=",
		"-qmp unix:qmp.sock,server=on,wait=off", "name=opt/kiln/ready,string=1",
		"name=opt/kiln/inputs,file=/dev/fd/3", "overlay.qcow2",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemu arguments lack %q:\n%s", want, args)
		}
	}
	if strings.Contains(args, secretText) {
		t.Error("the secret is on qemu's command line")
	}
	if !strings.Contains(string(l.Inputs), secretText) || !strings.Contains(string(l.Inputs), `"greeting":"hello"`) {
		t.Errorf("inputs %q lack the values", l.Inputs)
	}
	if _, err := os.Stat(filepath.Join(unit, "overlay.qcow2")); err != nil {
		t.Errorf("no overlay: %v", err)
	}
}
