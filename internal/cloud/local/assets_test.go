package local

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// startProcess starts name with args, failing the test clearly when the
// program is missing, and reaps it at the end.
func startProcess(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("this test needs %s (Debian package qemu-system-x86 for qemu): %v", name, err)
	}
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd
}

// waitGone waits until pid no longer runs (a zombie counts as gone).
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p, err := readProc(pid)
		if errors.Is(err, errNoProcess) || err == nil && !p.alive() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// TestAssets records a build directory and two boot-test instances, one a
// real qemu process and one a process that is not qemu, lists them by tag,
// and deletes them: the qemu process is stopped, the other one is left
// alone, files and records go.
func TestAssets(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, config.LocalBackend{})
	run := map[string]string{cloud.TagManaged: "true", cloud.TagAssetID: "kiln-1"}
	img := seed(t, b, "home-1", "img", run, 4096)

	buildDir := filepath.Join(t.TempDir(), "build")
	if err := os.MkdirAll(filepath.Join(buildDir, "rootfs", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "build-1", Region: "home-1", Tags: run}, buildDir); err != nil {
		t.Fatal(err)
	}
	qemu := startProcess(t, "qemu-system-x86_64", "-nodefaults", "-display", "none", "-machine", "none", "-S")
	qemuDir := filepath.Join(t.TempDir(), "boot")
	os.MkdirAll(qemuDir, 0o755)
	if err := b.PutInstance(ctx, cloud.Asset{Kind: cloud.KindInstance, ID: "boot-1", Region: "home-1", Tags: run, Parent: img.ID}, qemuDir, qemu.Process.Pid); err != nil {
		t.Fatal(err)
	}
	sleeper := startProcess(t, "sleep", "300")
	sleepDir := filepath.Join(t.TempDir(), "boot2")
	os.MkdirAll(sleepDir, 0o755)
	if err := b.PutInstance(ctx, cloud.Asset{Kind: cloud.KindInstance, ID: "boot-2", Region: "home-1", Tags: run}, sleepDir, sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	// Another run's build is not listed.
	if err := b.PutAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "build-9", Region: "home-1", Tags: map[string]string{cloud.TagAssetID: "kiln-9"}}, ""); err != nil {
		t.Fatal(err)
	}

	assets, err := b.ListAssets(ctx, "home-1", cloud.Filter{Tags: map[string]string{cloud.TagAssetID: "kiln-1"}})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		kind              cloud.Kind
		id, state, parent string
	}
	var got []row
	for _, a := range assets {
		got = append(got, row{a.Kind, a.ID, a.State, a.Parent})
		if a.Region != "home-1" || a.Tags[cloud.TagAssetID] != "kiln-1" || a.Created.IsZero() {
			t.Errorf("asset %+v", a)
		}
	}
	want := []row{
		{cloud.KindBuild, "build-1", StatePresent, ""},
		{cloud.KindImage, img.ID, "available", ""},
		{cloud.KindInstance, "boot-1", StateRunning, img.ID},
		{cloud.KindInstance, "boot-2", StateStopped, ""}, // not a qemu process
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListAssets =\n%v\nwant\n%v", got, want)
	}
	byID, err := b.ListAssets(ctx, "home-1", cloud.Filter{IDs: []string{"build-9"}})
	if err != nil || len(byID) != 1 || byID[0].ID != "build-9" {
		t.Errorf("ListAssets(IDs build-9) = %+v, %v", byID, err)
	}

	for _, a := range assets {
		if err := b.DeleteAsset(ctx, a); err != nil {
			t.Fatalf("DeleteAsset(%s %s): %v", a.Kind, a.ID, err)
		}
	}
	if !waitGone(qemu.Process.Pid, 5*time.Second) {
		t.Error("qemu process still runs after DeleteAsset")
	}
	if p, err := readProc(sleeper.Process.Pid); err != nil || !p.alive() {
		t.Errorf("DeleteAsset stopped a process that is not qemu: %+v, %v", p, err)
	}
	for _, dir := range []string{buildDir, qemuDir, sleepDir} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s still exists after DeleteAsset (%v)", dir, err)
		}
	}
	left, err := b.ListAssets(ctx, "home-1", cloud.Filter{Tags: map[string]string{cloud.TagAssetID: "kiln-1"}})
	if err != nil || len(left) != 0 {
		t.Errorf("assets left: %+v, %v", left, err)
	}
	for _, a := range assets {
		if err := b.DeleteAsset(ctx, a); err != nil {
			t.Errorf("DeleteAsset(%s %s) again: %v", a.Kind, a.ID, err)
		}
	}
}

// TestInstanceWithExitedProcess: a recorded pid whose start time does not
// match (the pid was reused) is never signalled.
func TestInstanceWithExitedProcess(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, config.LocalBackend{})
	qemu := startProcess(t, "qemu-system-x86_64", "-nodefaults", "-display", "none", "-machine", "none", "-S")
	a := cloud.Asset{Kind: cloud.KindInstance, ID: "boot", Region: "home-1"}
	if err := b.PutInstance(ctx, a, "", qemu.Process.Pid); err != nil {
		t.Fatal(err)
	}
	// Record a start time that is not the process's: as if the pid now
	// named a newer qemu.
	r, _ := b.region("home-1")
	rec, err := r.readAsset(cloud.KindInstance, "boot")
	if err != nil {
		t.Fatal(err)
	}
	if ours, err := ourProcess(rec.PID, rec.PIDStart); err != nil || !ours {
		t.Fatalf("ourProcess of the recorded qemu = %v, %v", ours, err)
	}
	if ours, _ := ourProcess(rec.PID, rec.PIDStart+1); ours {
		t.Fatal("ourProcess ignores the start time")
	}
	if err := stopProcess(ctx, rec.PID, rec.PIDStart+1); err != nil {
		t.Fatal(err)
	}
	if p, err := readProc(rec.PID); err != nil || !p.alive() {
		t.Fatalf("stopProcess with the wrong start time stopped the process: %+v, %v", p, err)
	}
	qemu.Process.Signal(syscall.SIGKILL)
	waitGone(rec.PID, 5*time.Second)
	if err := b.DeleteAsset(ctx, a); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveAssetKeepsFiles: RemoveAsset forgets the record only.
func TestRemoveAssetKeepsFiles(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, config.LocalBackend{})
	dir := filepath.Join(t.TempDir(), "work")
	os.MkdirAll(dir, 0o755)
	a := cloud.Asset{Kind: cloud.KindBuild, ID: "b1", Region: "home-2"}
	if err := b.PutAsset(ctx, a, dir); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveAsset(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("RemoveAsset removed the directory: %v", err)
	}
	if assets, err := b.ListAssets(ctx, "home-2", cloud.Filter{}); err != nil || len(assets) != 0 {
		t.Errorf("assets after RemoveAsset: %+v, %v", assets, err)
	}
	if err := b.RemoveAsset(ctx, a); err != nil {
		t.Errorf("RemoveAsset again: %v", err)
	}
	// Delete of a build whose directory is already gone still drops the record.
	os.RemoveAll(dir)
	if err := b.PutAsset(ctx, a, dir); err != nil {
		t.Fatal(err)
	}
	if assets, _ := b.ListAssets(ctx, "home-2", cloud.Filter{}); len(assets) != 1 || assets[0].State != StateMissing {
		t.Errorf("build with a missing directory listed as %+v", assets)
	}
	if err := b.DeleteAsset(ctx, cloud.Asset{Kind: cloud.KindBuild, ID: "b1", Region: "home-2"}); err != nil {
		t.Fatal(err)
	}
}
