package qemuboot

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

func TestSpecErrors(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	test := filepath.Join(dir, "ok.sh")
	other := filepath.Join(dir, "sub", "ok.sh")
	for _, p := range []string{disk, test, other} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := Spec{Disk: disk, Tests: []string{test}, WorkDir: dir, LogPath: filepath.Join(dir, "log")}
	tests := []struct {
		name   string
		change func(*Spec)
		want   string // in the error; "" means no error
	}{
		{"good", func(*Spec) {}, ""},
		{"missing disk", func(s *Spec) { s.Disk = filepath.Join(dir, "nope.raw") }, `disk "` + dir + `/nope.raw"`},
		{"disk is a directory", func(s *Spec) { s.Disk = dir }, "not a regular file"},
		{"relative test", func(s *Spec) { s.Tests = []string{"ok.sh"} }, `test "ok.sh": want an absolute path`},
		{"missing test", func(s *Spec) { s.Tests = []string{filepath.Join(dir, "gone.sh")} }, "gone.sh"},
		{"same name twice", func(s *Spec) { s.Tests = []string{test, other} }, "same name"},
		{"name with a space", func(s *Spec) { s.Tests = []string{filepath.Join(dir, "a b.sh")} }, `the name "a b.sh"`},
		{"bad accel", func(s *Spec) { s.Accel = "hvf" }, `accel "hvf": want auto, kvm or tcg`},
		{"tiny memory", func(s *Spec) { s.Memory = 16 }, "memory 16 MiB"},
		{"no cpus", func(s *Spec) { s.CPUs = -1 }, "cpus -1"},
		{"negative timeout", func(s *Spec) { s.Timeout = -time.Second }, "timeout -1s"},
		{"short test timeout", func(s *Spec) { s.TestTimeout = time.Millisecond }, "test timeout 1ms"},
		{"no log path", func(s *Spec) { s.LogPath = "" }, "log path: empty"},
		{"no work dir", func(s *Spec) { s.WorkDir = "" }, "work dir: empty"},
		{"missing firmware", func(s *Spec) { s.OVMFCode = "/nonexistent/OVMF.fd" }, `firmware "/nonexistent/OVMF.fd"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			tt.change(&s)
			n, err := s.normalize()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if n.Accel != "auto" || n.Memory != 1024 || n.CPUs != defaultCPUs(runtime.NumCPU()) || n.Timeout != DefaultTimeout || n.TestTimeout != DefaultTimeout {
					t.Errorf("defaults not applied: %+v", n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !errors.Is(err, cloud.ErrInvalid) {
				t.Errorf("error %v does not match cloud.ErrInvalid", err)
			}
		})
	}
}

func TestDefaultCPUs(t *testing.T) {
	for _, tt := range []struct{ host, want int }{{0, 1}, {1, 1}, {2, 2}, {64, DefaultCPUs}} {
		if got := defaultCPUs(tt.host); got != tt.want {
			t.Errorf("defaultCPUs(%d) = %d, want %d", tt.host, got, tt.want)
		}
	}
}
