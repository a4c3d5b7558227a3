package debimage

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/config"
)

func TestCacheKey(t *testing.T) {
	base := Spec{Arch: "x86_64", Suite: "bookworm", Mirror: DefaultMirror, Packages: []string{"curl", "python3"}}
	key := CacheKey(base)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(key) {
		t.Fatalf("key %q is not a sha256 in hex", key)
	}
	same := []struct {
		name   string
		change func(*Spec)
	}{
		{"package order", func(s *Spec) { s.Packages = []string{"python3", "curl"} }},
		{"duplicate package", func(s *Spec) { s.Packages = []string{"curl", "python3", "curl"} }},
		{"package the builder adds anyway", func(s *Spec) { s.Packages = append(s.Packages, "systemd-sysv") }},
		{"default suite", func(s *Spec) { s.Suite = "" }},
		{"default mirror", func(s *Spec) { s.Mirror = "" }},
		{"steps", func(s *Spec) { s.Steps = []config.Step{{Shell: "x.sh"}} }},
		{"disk size and exports", func(s *Spec) { s.DiskSize, s.Exports = 8<<30, []string{"vmdk"} }},
		{"work and cache dirs", func(s *Spec) { s.WorkDir, s.CacheDir = "/a", "/b" }},
	}
	for _, tt := range same {
		s := base
		s.Packages = append([]string(nil), base.Packages...)
		tt.change(&s)
		if got := CacheKey(s); got != key {
			t.Errorf("%s changed the key", tt.name)
		}
	}
	differ := []struct {
		name   string
		change func(*Spec)
	}{
		{"suite", func(s *Spec) { s.Suite = "trixie" }},
		{"mirror", func(s *Spec) { s.Mirror = "http://ftp.de.debian.org/debian" }},
		{"arch", func(s *Spec) { s.Arch = "arm64" }},
		{"extra package", func(s *Spec) { s.Packages = append(s.Packages, "vim") }},
		{"fewer packages", func(s *Spec) { s.Packages = []string{"curl"} }},
		// Length-prefixed fields: moving a boundary changes the key.
		{"package split differently", func(s *Spec) { s.Packages = []string{"curlpython3"} }},
	}
	for _, tt := range differ {
		s := base
		s.Packages = append([]string(nil), base.Packages...)
		tt.change(&s)
		if got := CacheKey(s); got == key {
			t.Errorf("%s did not change the key", tt.name)
		}
	}
}

func TestLayoutDeterministic(t *testing.T) {
	s := Spec{DiskSize: 2 << 30}
	steps := []step{{n: 1, kind: "shell", label: "shell a.sh"}}
	a, b := newLayout(s, "key", steps), newLayout(s, "key", steps)
	if a != b {
		t.Fatalf("same input, different layouts:\n%+v\n%+v", a, b)
	}
	if c := newLayout(s, "other key", steps); c.diskUUID == a.diskUUID || c.rootUUID == a.rootUUID {
		t.Errorf("different input, same UUIDs")
	}
	uuids := []string{a.diskUUID, a.espUUID, a.rootUUID, a.fsUUID, a.hashSeed}
	seen := map[string]bool{}
	for _, u := range uuids {
		if !regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-8[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`).MatchString(u) {
			t.Errorf("%s is not a version 8 UUID", u)
		}
		if seen[u] {
			t.Errorf("UUID %s used twice", u)
		}
		seen[u] = true
	}
	if !regexp.MustCompile(`^[0-9A-F]{8}$`).MatchString(a.espVolumeID) {
		t.Errorf("ESP volume id %q", a.espVolumeID)
	}
}

// sfdisk takes the partition script and writes the layout it describes.
func TestSfdiskScript(t *testing.T) {
	l := newLayout(Spec{DiskSize: 1 << 30}, "k", nil)
	disk := filepath.Join(t.TempDir(), "d.raw")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(l.size)
	f.Close()
	cmd := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk)
	cmd.Stdin = strings.NewReader(l.sfdiskScript())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	parts, err := partitions(t.Context(), disk)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 {
		t.Fatalf("partitions %+v", parts)
	}
	esp, root := parts[0], parts[1]
	if esp.start != mib || esp.size != espSize || esp.typ != typeESP || esp.uuid != l.espUUID {
		t.Errorf("ESP %+v", esp)
	}
	if root.start != mib+espSize || root.typ != typeLinux || root.uuid != l.rootUUID || root.name != "root" {
		t.Errorf("root %+v", root)
	}
	// The root runs to the end, less the backup GPT, aligned to 1 MiB.
	if end := root.start + root.size; end > l.size-33*512 || end < l.size-mib-33*512 {
		t.Errorf("root ends at %d of %d", end, l.size)
	}
}

func TestRootInfoFits(t *testing.T) {
	ri := rootInfo{dataBytes: 700 * mib, dirs: 5000}
	if err := ri.fits(1800*mib, 2<<30); err != nil {
		t.Errorf("700 MiB into 1800 MiB: %v", err)
	}
	err := ri.fits(700*mib, 1<<30)
	if err == nil || !strings.Contains(err.Error(), "disk size 1024 MiB is too small") {
		t.Errorf("700 MiB into 700 MiB: %v", err)
	}
}

func TestKernelChoice(t *testing.T) {
	tests := []struct {
		ri   rootInfo
		want string
		err  string
	}{
		{rootInfo{kernels: []string{"6.1.0-9-amd64"}}, "6.1.0-9-amd64", ""},
		{rootInfo{kernels: []string{"6.1.0-10-amd64", "6.1.0-9-amd64"}, defKernel: "6.1.0-9-amd64"}, "6.1.0-9-amd64", ""},
		{rootInfo{kernels: []string{"6.1.0-10-amd64", "6.1.0-9-amd64"}}, "", "several kernels"},
		{rootInfo{}, "", "no kernel"},
		// /vmlinuz naming a kernel without an initrd does not count.
		{rootInfo{kernels: []string{"6.1.0-9-amd64"}, defKernel: "6.1.0-10-amd64"}, "6.1.0-9-amd64", ""},
	}
	for _, tt := range tests {
		got, err := tt.ri.kernel()
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: %q, %v; want %q, %q", tt.ri, got, err, tt.want, tt.err)
		}
	}
}

func writeExec(p, body string) error { return os.WriteFile(p, []byte(body), 0o755) }
