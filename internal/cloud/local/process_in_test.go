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
