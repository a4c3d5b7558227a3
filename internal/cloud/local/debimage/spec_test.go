package debimage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

func goodSpec(t *testing.T) Spec {
	dir := t.TempDir()
	return Spec{Arch: "x86_64", DiskSize: 2 << 30, Dir: dir, WorkDir: filepath.Join(dir, "work"), CacheDir: filepath.Join(dir, "cache")}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Spec)
		want   string // in the error; "" means none
	}{
		{"good", func(*Spec) {}, ""},
		{"arm64", func(s *Spec) { s.Arch = "arm64" }, `arch "arm64": not supported by the local builder yet`},
		{"unknown arch", func(s *Spec) { s.Arch = "riscv" }, `arch "riscv": unknown architecture (supported: x86_64)`},
		{"empty arch", func(s *Spec) { s.Arch = "" }, `arch "": unknown architecture`},
		{"bad suite", func(s *Spec) { s.Suite = "Book Worm" }, `suite "Book Worm"`},
		{"mirror without scheme", func(s *Spec) { s.Mirror = "deb.debian.org/debian" }, `mirror "deb.debian.org/debian"`},
		{"ftp mirror", func(s *Spec) { s.Mirror = "ftp://deb.debian.org/debian" }, `mirror "ftp://deb.debian.org/debian"`},
		{"deb line as mirror", func(s *Spec) { s.Mirror = "deb http://x/debian bookworm main" }, "mirror"},
		{"file mirror", func(s *Spec) { s.Mirror = "file:///srv/mirror" }, ""},
		{"package with comma", func(s *Spec) { s.Packages = []string{"vim,emacs"} }, `package "vim,emacs"`},
		{"package option", func(s *Spec) { s.Packages = []string{"--yes"} }, `package "--yes"`},
		{"package with version", func(s *Spec) { s.Packages = []string{"curl=7.88.1-10+deb12u8", "vim/bookworm-backports"} }, ""},
		{"small disk", func(s *Spec) { s.DiskSize = 512 << 20 }, "disk size 536870912 bytes: too small"},
		{"unknown export", func(s *Spec) { s.Exports = []string{"qcow2", "ova"} }, `export format "ova": unknown (supported: qcow2, raw, vhd, vmdk)`},
		{"no work dir", func(s *Spec) { s.WorkDir = "" }, "work dir: empty"},
		{"no cache dir", func(s *Spec) { s.CacheDir = "" }, "cache dir: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := goodSpec(t)
			tt.change(&s)
			n, err := s.normalize()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !errors.Is(err, cloud.ErrInvalid) {
				t.Errorf("%v does not match cloud.ErrInvalid", err)
			}
			_ = n
		})
	}
}

func TestNormalizeDefaults(t *testing.T) {
	s := goodSpec(t)
	s.DiskSize = 2_000_000_000 // "2G": not a whole number of MiB
	s.Exports = []string{"vmdk", "qcow2", "vmdk"}
	n, err := s.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if n.Suite != "bookworm" || n.Mirror != "http://deb.debian.org/debian" || n.Log == nil {
		t.Errorf("defaults not applied: %+v", n)
	}
	if n.DiskSize != 1908*mib {
		t.Errorf("disk size %d, want it rounded up to 1908 MiB", n.DiskSize)
	}
	if !slices.Equal(n.Exports, []string{"vmdk", "qcow2"}) {
		t.Errorf("exports %v, want the duplicate dropped", n.Exports)
	}
}

// All the errors come at once, so that one run shows every mistake.
func TestNormalizeReportsAll(t *testing.T) {
	s := goodSpec(t)
	s.Arch, s.DiskSize, s.Exports = "arm64", 1, []string{"zip"}
	_, err := s.normalize()
	for _, want := range []string{"arch", "disk size", "export format"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestParseSteps(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"plain.sh": "echo hi\n", "bang.sh": "#!/bin/bash\necho hi\n", "play.yml": "- hosts: all\n", "f.txt": "x"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := func(src, dst, mode, owner string) config.Step {
		return config.Step{File: &config.FileStep{Source: src, Destination: dst, Mode: mode, Owner: owner}}
	}
	// Links that lead out of the project, and one that stays in it.
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "passwd"), []byte("root:x:0:0"), 0o644)
	os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(dir, "passwd-link"))
	os.Symlink(outside, filepath.Join(dir, "outdir"))
	os.Symlink("f.txt", filepath.Join(dir, "inside-link"))
	tests := []struct {
		name  string
		step  config.Step
		want  string // error text; "" means valid
		check func(*testing.T, step)
	}{
		{"shell", config.Step{Shell: "plain.sh"}, "", func(t *testing.T, st step) {
			if st.label != "shell plain.sh" || st.shebang || st.src != filepath.Join(dir, "plain.sh") {
				t.Errorf("%+v", st)
			}
		}},
		{"shell with #!", config.Step{Name: "bash it", Shell: "bang.sh"}, "", func(t *testing.T, st step) {
			if st.label != "bash it" || !st.shebang {
				t.Errorf("%+v", st)
			}
		}},
		{"absolute shell path", config.Step{Shell: filepath.Join(dir, "plain.sh")}, "", nil},
		{"file defaults", file("f.txt", "/etc/f.txt", "", ""), "", func(t *testing.T, st step) {
			if st.dest != "/etc/f.txt" || st.owner != "root:root" || st.mode != "" || st.label != "file f.txt" {
				t.Errorf("%+v", st)
			}
		}},
		{"file into a directory", file("f.txt", "/etc/x/", "0600", "www-data:adm"), "", func(t *testing.T, st step) {
			if st.dest != "/etc/x/f.txt" || st.mode != "0600" || st.owner != "www-data:adm" {
				t.Errorf("%+v", st)
			}
		}},
		{"directory", file("conf", "/etc/conf", "755", "1000:1000"), "", nil},
		{"ansible", config.Step{Ansible: &config.AnsibleStep{Playbook: "play.yml", ExtraVars: map[string]string{"a_b": "1"}}}, "", func(t *testing.T, st step) {
			if st.label != "ansible play.yml" || st.vars["a_b"] != "1" {
				t.Errorf("%+v", st)
			}
		}},
		{"nothing set", config.Step{Name: "empty"}, `step 1 ("empty"): exactly one of shell, file and ansible must be set, found 0`, nil},
		{"two set", config.Step{Shell: "plain.sh", Ansible: &config.AnsibleStep{Playbook: "play.yml"}}, "found 2", nil},
		{"missing script", config.Step{Shell: "gone.sh"}, `step 1: shell "gone.sh": stat ` + filepath.Join(dir, "gone.sh"), nil},
		{"script is a directory", config.Step{Shell: "conf"}, "is a directory, want a file", nil},
		{"relative destination", file("f.txt", "etc/f.txt", "", ""), `file.destination "etc/f.txt": want an absolute path`, nil},
		{"root destination", file("f.txt", "/", "", ""), "", nil}, // "/" + base name
		{"replace root", file("conf", "/.", "", ""), "cannot replace the root directory", nil},
		{"bad mode", file("f.txt", "/f", "rw-r--r--", ""), `file.mode "rw-r--r--": want 3 or 4 octal digits`, nil},
		{"mode with 8", file("f.txt", "/f", "0648", ""), `file.mode "0648"`, nil},
		{"bad owner", file("f.txt", "/f", "", "root;rm -rf /"), `file.owner "root;rm -rf /"`, nil},
		{"empty source", file("", "/f", "", ""), "file.source: empty", nil},
		{"missing playbook", config.Step{Ansible: &config.AnsibleStep{Playbook: "nope.yml"}}, `ansible.playbook "nope.yml"`, nil},
		{"bad var name", config.Step{Ansible: &config.AnsibleStep{Playbook: "play.yml", ExtraVars: map[string]string{"a-b": "1"}}}, `"a-b" is not a valid variable name`, nil},
		{"control character in name", config.Step{Name: "a\nb", Shell: "plain.sh"}, "control characters", nil},
		{"source up and out", file("../../../../../../../../etc/hostname", "/f", "", ""), "leads outside the project", nil},
		{"absolute source outside", file("/etc/shadow", "/f", "", ""), "leads outside the project", nil},
		{"source through a link", file("passwd-link", "/f", "", ""), "leads outside the project", nil},
		{"source in a linked directory", file("outdir/passwd", "/f", "", ""), "leads outside the project", nil},
		{"shell outside", config.Step{Shell: "/etc/passwd"}, "leads outside the project", nil},
		{"playbook outside", config.Step{Ansible: &config.AnsibleStep{Playbook: "passwd-link"}}, "leads outside the project", nil},
		{"link inside the project", file("inside-link", "/f", "", ""), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := parseSteps(dir, []config.Step{tt.step})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tt.check != nil {
					tt.check(t, steps[0])
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !errors.Is(err, cloud.ErrInvalid) {
				t.Errorf("%v does not match cloud.ErrInvalid", err)
			}
		})
	}
}
