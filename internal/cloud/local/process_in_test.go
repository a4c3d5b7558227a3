package local

import (
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A killed build's tools keep running; removing their directory first
// stops every process working in it, and only those.
func TestStopProcessesIn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "work", "build-x")
	other := t.TempDir()
	start := func(cwd string, args ...string) *exec.Cmd {
		c := exec.Command(args[0], args[1:]...)
		c.Dir = cwd
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	if err := exec.Command("mkdir", "-p", filepath.Join(dir, "sub")).Run(); err != nil {
		t.Fatal(err)
	}
	byCwd := start(filepath.Join(dir, "sub"), "sleep", "300")
	byArg := start(other, "sh", "-c", "sleep 300; : $0", dir+"/out.tar")
	bystander := start(other, "sleep", "300")
	waitFor := func(c *exec.Cmd) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- c.Wait() }()
		return ch
	}
	cwdDone, argDone := waitFor(byCwd), waitFor(byArg)
	time.Sleep(100 * time.Millisecond)

	if err := removeWorkDir(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan error{"process in the directory": cwdDone, "process writing to it": argDone} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Errorf("%s still runs", name)
		}
	}
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("an unrelated process was killed: %v", err)
	}
	if _, err := exec.Command("test", "-e", dir).CombinedOutput(); err == nil {
		t.Errorf("%s still exists", dir)
	}
}

// Mounts a killed build leaves in its chroot are detached before removal.
func TestRemoveWorkDirUnmounts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "work", "build-y")
	shm := filepath.Join(dir, "tmp", "chroot", "dev", "shm")
	if err := exec.Command("mkdir", "-p", shm).Run(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "tmpfs", shm).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (the tests run as root): %v\n%s", err, out)
	}
	if err := removeWorkDir(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if m, _ := mountsUnder(dir); len(m) > 0 {
		t.Fatalf("still mounted: %v", m)
	}
	if _, err := exec.Command("test", "-e", dir).CombinedOutput(); err == nil {
		t.Errorf("%s still exists", dir)
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/tmp/a\040b/c`); got != "/tmp/a b/c" {
		t.Fatalf("got %q", got)
	}
}
