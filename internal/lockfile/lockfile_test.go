package lockfile

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestLockExcludesAndReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locks", "a.lock")
	if held, err := Held(path); err != nil || held {
		t.Fatalf("Held before any lock = %v, %v", held, err)
	}
	unlock, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open file descriptions, so a second open in
	// this process contends like another process would.
	if held, err := Held(path); err != nil || !held {
		t.Fatalf("Held while locked = %v, %v", held, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock = %v, want deadline exceeded", err)
	}
	if _, ok, err := TryLock(path); ok || err != nil {
		t.Fatalf("TryLock while locked = %v, %v; want false, nil", ok, err)
	}
	unlock()
	if held, _ := Held(path); held {
		t.Fatal("still held after unlock")
	}
	unlock2, err := Lock(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
}

// A lock held by a process that dies is free at once: no stale locks.
func TestLockDiesWithProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.lock")
	cmd := exec.Command("flock", "--close", path, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start flock(1): %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if held, _ := Held(path); held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child never took the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if held, err := Held(path); err != nil || held {
		t.Fatalf("Held after the holder died = %v, %v", held, err)
	}
	_ = os.Remove(path)
}
