package debimage_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/local/debimage"
	"github.com/kiln-images/kiln/internal/cloud/local/debimage/debimagetest"
	"github.com/kiln-images/kiln/internal/config"
)

func TestDiskPartitions(t *testing.T) {
	f := fixture.Fixture(t)
	g := readGPT(t, f.Result.Disk)
	if g.Label != "gpt" {
		t.Fatalf("label %q, want gpt", g.Label)
	}
	if len(g.Partitions) != 2 {
		t.Fatalf("%d partitions, want 2: %+v", len(g.Partitions), g.Partitions)
	}
	esp, root := g.Partitions[0], g.Partitions[1]
	if !strings.EqualFold(esp.Type, typeESP) || !strings.EqualFold(root.Type, typeLinux) {
		t.Errorf("partition types %s, %s; want ESP %s then Linux %s", esp.Type, root.Type, typeESP, typeLinux)
	}
	if got := esp.Size * g.SectorSize; got != 260<<20 {
		t.Errorf("ESP size %d, want 260 MiB", got)
	}
	if esp.Start*g.SectorSize != 1<<20 || (root.Start*g.SectorSize)%(1<<20) != 0 {
		t.Errorf("partitions start at sectors %d and %d, want 1 MiB alignment", esp.Start, root.Start)
	}
	fi, err := os.Stat(f.Result.Disk)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != f.Spec.DiskSize {
		t.Errorf("disk is %d bytes, want %d", fi.Size(), f.Spec.DiskSize)
	}
}

func TestRootFilesystem(t *testing.T) {
	f := fixture.Fixture(t)
	sum := sha256.Sum256([]byte(debimagetest.Token))
	tokenDigest := hex.EncodeToString(sum[:])
	// The secret variable is nowhere in the disk, the work directory
	// (provisioning log, scratch) or the exports.
	if where := grepTree(t, filepath.Dir(f.Result.Disk), debimagetest.Token); len(where) > 0 {
		t.Errorf("the secret variable's value is in %v", where)
	}
	r := openRoot(t, f.Result.Disk)
	g := readGPT(t, f.Result.Disk)
	rootUUID := strings.ToLower(g.Partitions[1].UUID)

	files := []struct {
		path     string
		typ      string
		mode     int64
		uid, gid int
		content  string // "" means not checked
	}{
		// shell step (sh -e), owner and mode set by the script
		{"/etc/kiln-fixture/shell.txt", "regular", 0o640, 0, 4, "shell step ran\n"},
		// shell step run with its #! line
		{"/etc/kiln-fixture/bash.txt", "regular", 0o644, 0, 0, "bash 5\n"},
		// file step: file, mode given, default owner root:root
		{"/etc/motd", "regular", 0o644, 0, 0, "Welcome to a kiln fixture image.\n"},
		// file step: directory with mode and owner nobody:nogroup
		{"/etc/kiln-fixture/conf.d", "directory", 0o750, 65534, 65534, ""},
		{"/etc/kiln-fixture/conf.d/a.conf", "regular", 0o644, 65534, 65534, "a = 1\n"},
		{`"/etc/kiln-fixture/conf.d/with space.conf"`, "regular", 0o644, 65534, 65534, "spaces = yes\n"},
		// ansible step with an extra var
		{"/etc/kiln-fixture/ansible.txt", "regular", 0o600, 0, 0, debimagetest.Greeting + "\n"},
		// the recipe's variables, in the shell step's environment and as
		// ansible extra vars; of the secret only a digest
		{"/etc/kiln-fixture/flavour.txt", "regular", 0o644, 0, 0, "flavour " + debimagetest.Flavour + "\n"},
		{"/etc/kiln-fixture/token.sha256", "regular", 0o644, 0, 0, tokenDigest + "\n"},
		{"/etc/kiln-fixture/ansible-vars.txt", "regular", 0o644, 0, 0, debimagetest.Flavour + " " + tokenDigest + "\n"},
		// the guest agent, enabled
		{"/usr/lib/kiln/kiln-agent", "regular", 0o755, 0, 0, ""},
		{"/usr/lib/systemd/system/kiln-agent.service", "regular", 0o644, 0, 0, ""},
		{"/etc/systemd/system/multi-user.target.wants/kiln-agent.service", "symlink", 0o777, 0, 0, ""},
		{"/etc/hostname", "regular", 0o644, 0, 0, "localhost\n"},
		{"/boot/efi", "directory", 0o755, 0, 0, ""},
		{"/dev", "directory", 0o755, 0, 0, ""},
	}
	for _, want := range files {
		got, ok := r.stat(want.path)
		if !ok {
			t.Errorf("%s: missing", want.path)
			continue
		}
		if got.typ != want.typ || got.mode != want.mode || got.uid != want.uid || got.gid != want.gid {
			t.Errorf("%s: %s %04o %d:%d, want %s %04o %d:%d", want.path,
				got.typ, got.mode, got.uid, got.gid, want.typ, want.mode, want.uid, want.gid)
		}
		if want.content != "" {
			if c := r.cat(want.path); c != want.content {
				t.Errorf("%s holds %q, want %q", want.path, c, want.content)
			}
		}
	}

	fstab := r.cat("/etc/fstab")
	if !strings.Contains(fstab, "PARTUUID="+rootUUID+" / ext4") {
		t.Errorf("/etc/fstab does not mount PARTUUID=%s on /:\n%s", rootUUID, fstab)
	}
	unit := r.cat("/usr/lib/systemd/system/kiln-agent.service")
	if strings.Contains(unit, "KILN-TEST-RESULT") {
		t.Errorf("the agent unit mentions the result marker, which systemd would echo to the console:\n%s", unit)
	}
	// Nothing of the build's scratch or apt's downloads is left.
	for _, dir := range []string{"/tmp", "/var/cache/apt/archives", "/var/lib/apt/lists"} {
		ls := r.debugfs("ls " + dir)
		for _, bad := range []string{"kiln", ".deb", "_Packages"} {
			if strings.Contains(ls, bad) {
				t.Errorf("%s holds %q:\n%s", dir, bad, ls)
			}
		}
	}
}

func TestESP(t *testing.T) {
	f := fixture.Fixture(t)
	if out := esp(t, f.Result.Disk, "mdir", "-b", "::/EFI/BOOT"); !strings.Contains(out, "BOOTX64.EFI") {
		t.Errorf("no EFI/BOOT/BOOTX64.EFI on the ESP:\n%s", out)
	}
	top := esp(t, f.Result.Disk, "mdir", "-b", "::/")
	for _, name := range []string{"vmlinuz-" + f.Result.Kernel, "initrd.img-" + f.Result.Kernel} {
		if !strings.Contains(top, name) {
			t.Errorf("no %s on the ESP:\n%s", name, top)
		}
	}
	g := readGPT(t, f.Result.Disk)
	entry := esp(t, f.Result.Disk, "mtype", "::/loader/entries/kiln.conf")
	for _, want := range []string{
		"linux /vmlinuz-" + f.Result.Kernel,
		"root=PARTUUID=" + strings.ToLower(g.Partitions[1].UUID) + " rw",
		"console=ttyS0,115200",
	} {
		if !strings.Contains(entry, want) {
			t.Errorf("loader entry lacks %q:\n%s", want, entry)
		}
	}
	if !strings.HasPrefix(f.Result.Kernel, "6.") || !strings.HasSuffix(f.Result.Kernel, "-amd64") {
		t.Errorf("kernel %q, want a bookworm amd64 kernel version", f.Result.Kernel)
	}
}

// TestInitrd checks the initrd on the ESP is the small one the builder
// configures: the root disk's drivers for the machines images run on, not
// Debian's MODULES=most (36 MB, four seconds of a boot under emulation).
func TestInitrd(t *testing.T) {
	f := fixture.Fixture(t)
	dst := filepath.Join(t.TempDir(), "initrd")
	esp(t, f.Result.Disk, "mcopy", "::/initrd.img-"+f.Result.Kernel, dst)
	raw, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 16<<20 {
		t.Errorf("initrd is %d bytes, want the small one (under 16 MiB)", len(raw))
	}
	// Without zstd in the image, initramfs-tools falls back to gzip.
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("initrd: not gzip: %v", err)
	}
	cpio, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("initrd: %v", err)
	}
	names := cpioNames(t, cpio)
	has := func(suffix string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, suffix) })
	}
	for _, want := range []string{
		"/drivers/block/virtio_blk.ko", "/drivers/scsi/virtio_scsi.ko", "/drivers/nvme/host/nvme.ko",
		"/drivers/block/xen-blkfront.ko", "/drivers/ata/ahci.ko", "/drivers/scsi/hv_storvsc.ko",
		"/fs/ext4/ext4.ko",
	} {
		if !has(want) {
			t.Errorf("initrd lacks %s", want)
		}
	}
	for _, unwanted := range []string{"/drivers/net/", "/sound/", "/drivers/gpu/"} {
		if i := slices.IndexFunc(names, func(n string) bool { return strings.Contains(n, unwanted) }); i >= 0 {
			t.Errorf("initrd has %s: MODULES=most, not the builder's list", names[i])
		}
	}
}

// cpioNames lists the names in a newc cpio archive (the initramfs format):
// a 110-byte header of "070701" and 13 hexadecimal fields, the name, the
// data, each padded to 4 bytes, up to the entry TRAILER!!!.
func cpioNames(t *testing.T, b []byte) []string {
	t.Helper()
	field := func(h []byte, i int) int {
		n, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("cpio header field %d: %v", i, err)
		}
		return int(n)
	}
	pad := func(n int) int { return (n + 3) &^ 3 }
	var names []string
	for off := 0; off+110 <= len(b); {
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("cpio: no newc header at %d", off)
		}
		size, nameSize := field(h, 6), field(h, 11)
		if off+110+nameSize > len(b) || nameSize == 0 {
			t.Fatalf("cpio: entry at %d runs past the end", off)
		}
		name := string(b[off+110 : off+110+nameSize-1])
		if name == "TRAILER!!!" {
			return names
		}
		names = append(names, name)
		off = pad(pad(off+110+nameSize) + size)
	}
	t.Fatal("cpio: no TRAILER!!! entry")
	return nil
}

func TestExports(t *testing.T) {
	f := fixture.Fixture(t)
	want := map[string]string{"qcow2": "qcow2", "vmdk": "vmdk", "vhd": "vpc", "raw": "raw"}
	if len(f.Result.Exports) != len(want) {
		t.Errorf("exports %v, want %d", f.Result.Exports, len(want))
	}
	for format, qemuFormat := range want {
		p := f.Result.Exports[format]
		if p == "" || filepath.Dir(p) != f.Spec.WorkDir {
			t.Errorf("export %s at %q, want a file in %s", format, p, f.Spec.WorkDir)
			continue
		}
		// A fixed vhd has its header only at the end, where qemu-img does
		// not probe: name the format.
		out, err := exec.Command("qemu-img", "info", "--output=json", "-f", qemuFormat, p).Output()
		if err != nil {
			t.Errorf("qemu-img info %s: %v", p, err)
			continue
		}
		var info struct {
			Format      string `json:"format"`
			VirtualSize int64  `json:"virtual-size"`
		}
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatal(err)
		}
		if info.Format != qemuFormat || info.VirtualSize != f.Spec.DiskSize {
			t.Errorf("%s: format %s, virtual size %d; want %s, %d", p, info.Format, info.VirtualSize, qemuFormat, f.Spec.DiskSize)
		}
	}
	if cookie := vhdCookie(t, f.Result.Exports["vhd"]); cookie != "conectix" {
		t.Errorf("%s ends in %q, want a vhd footer (cookie \"conectix\")", f.Result.Exports["vhd"], cookie)
	}
	if f.Result.Exports["raw"] != f.Result.Disk {
		t.Errorf("raw export %s, want the disk %s", f.Result.Exports["raw"], f.Result.Disk)
	}
}

// vhdCookie returns the first 8 bytes of the file's last 512, where a
// fixed vhd keeps its footer.
func vhdCookie(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	if _, err := f.ReadAt(b, fi.Size()-512); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFixtureProgress(t *testing.T) {
	f := fixture.Fixture(t)
	bootstrap := "bootstrap (cache miss)"
	if f.Result.CacheHit {
		bootstrap = "bootstrap (cache hit)"
	}
	want := []string{bootstrap, "shell setup.sh", "bash step", "file files/motd", "conf dir", "ansible play.yml",
		"disk", "export qcow2", "export vmdk", "export vhd", "export raw"}
	if got := f.Progress.Names(); !slices.Equal(got, want) {
		t.Errorf("progress steps\n%q\nwant\n%q", got, want)
	}
	for _, s := range f.Progress.Steps() {
		if !s.Ended || s.Err != nil {
			t.Errorf("step %q: ended %v, err %v", s.Name, s.Ended, s.Err)
		}
	}
	if f.Result.CacheKey != debimage.CacheKey(f.Spec) {
		t.Errorf("result cache key %s, CacheKey says %s", f.Result.CacheKey, debimage.CacheKey(f.Spec))
	}
	checkBase(t, f)
}

// A second build whose only change is a provisioning script reuses the
// cached base, and the change shows in the new disk.
func TestCacheHitAfterScriptChange(t *testing.T) {
	f := fixture.Fixture(t)
	dir := t.TempDir()
	recipe := filepath.Join(dir, "recipe")
	if err := debimagetest.WriteRecipe(recipe); err != nil {
		t.Fatal(err)
	}
	script := "mkdir -p /etc/kiln-fixture\necho changed >/etc/kiln-fixture/shell.txt\n"
	if err := os.WriteFile(filepath.Join(recipe, "setup.sh"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	base := f.Result.Base
	before, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}

	s := debimagetest.Spec(recipe, filepath.Join(dir, "work"))
	s.Exports = nil
	p := &debimagetest.Progress{}
	s.Progress = p
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	res, err := debimage.Build(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if !res.CacheHit || res.CacheKey != f.Result.CacheKey {
		t.Errorf("second build: hit %v key %s, want a hit on %s", res.CacheHit, res.CacheKey, f.Result.CacheKey)
	}
	if names := p.Names(); len(names) == 0 || names[0] != "bootstrap (cache hit)" || slices.Contains(names, "bootstrap (cache miss)") {
		t.Errorf("second build's progress %q, want a cache hit and no bootstrap", names)
	}
	after, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the cached base was rewritten")
	}
	if res.Base != base {
		t.Errorf("second build used base %s, the first %s", res.Base, base)
	}
	if got := openRoot(t, res.Disk).cat("/etc/kiln-fixture/shell.txt"); got != "changed\n" {
		t.Errorf("changed script's file holds %q", got)
	}
	// Same input but for a script's content: same layout.
	g1, g2 := readGPT(t, f.Result.Disk), readGPT(t, res.Disk)
	if g1.ID != g2.ID || g1.Partitions[0].UUID != g2.Partitions[0].UUID || g1.Partitions[1].UUID != g2.Partitions[1].UUID {
		t.Errorf("layouts differ: %+v vs %+v", g1, g2)
	}
	if len(res.Exports) != 0 {
		t.Errorf("exports %v, none asked for", res.Exports)
	}
}

func TestFailingStep(t *testing.T) {
	f := fixture.Fixture(t) // for a warm cache
	dir := t.TempDir()
	recipe := filepath.Join(dir, "recipe")
	if err := debimagetest.WriteRecipe(recipe); err != nil {
		t.Fatal(err)
	}
	s := debimagetest.Spec(recipe, filepath.Join(dir, "work"))
	s.Steps = []config.Step{
		{Shell: "setup.sh"},
		{Name: "failing step", Shell: "fail.sh"},
		{Name: "never run", Shell: "bash-step.sh"},
	}
	p := &debimagetest.Progress{}
	s.Progress = p
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	_, err := debimage.Build(ctx, s)
	var se *debimage.StepError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want a *StepError", err, err)
	}
	if se.Step != "failing step" || se.ExitCode != 7 {
		t.Errorf("step %q exit %d, want \"failing step\" exit 7", se.Step, se.ExitCode)
	}
	lines := strings.Split(se.Tail, "\n")
	if len(lines) != 20 || lines[0] != "fixture line 11" || lines[19] != "fixture line 30" {
		t.Errorf("tail has %d lines, %q ... %q; want the last 20, fixture line 11 to 30:\n%s",
			len(lines), lines[0], lines[len(lines)-1], se.Tail)
	}
	if !strings.Contains(err.Error(), "failing step") || !strings.Contains(err.Error(), "7") {
		t.Errorf("message %q names neither step nor status", err)
	}
	var names []string
	for _, st := range p.Steps() {
		names = append(names, st.Name)
		if st.Name == "failing step" && !errors.As(st.Err, &se) {
			t.Errorf("progress for the failing step ended with %v", st.Err)
		}
	}
	if want := []string{"bootstrap (cache hit)", "shell setup.sh", "failing step"}; !slices.Equal(names, want) {
		t.Errorf("progress %q, want %q", names, want)
	}
	if _, err := os.Stat(filepath.Join(s.WorkDir, "rootfs.tar")); !os.IsNotExist(err) {
		t.Errorf("rootfs.tar left after a failed step: %v", err)
	}
	if m := mountsUnder(t, s.WorkDir); len(m) > 0 {
		t.Errorf("mounts left in the work directory after a failed step: %q", m)
	}
	checkBase(t, f)
}

// checkBase checks the fixture's cached base: where the cache keeps it,
// whole, and untouched by the builds that used it (their steps write
// /etc/kiln-fixture).
func checkBase(t *testing.T, f *debimagetest.Fixture) {
	t.Helper()
	base := f.Result.Base
	if filepath.Dir(base) != f.Spec.CacheDir || !strings.HasPrefix(filepath.Base(base), "base-"+f.Result.CacheKey) {
		t.Errorf("base %s, want base-%s in %s", base, f.Result.CacheKey, f.Spec.CacheDir)
	}
	fi, err := os.Stat(base)
	switch {
	case err != nil:
		t.Errorf("base: %v", err)
	case os.Geteuid() != 0:
		if fi.Mode().IsDir() || fi.Size() < 100<<20 {
			t.Errorf("base %s: want a tarball of 100 MiB or more in unshare mode", base)
		}
	case !fi.IsDir():
		t.Errorf("base %s is not a directory", base)
	default:
		if vms, _ := filepath.Glob(filepath.Join(base, "boot", "vmlinuz-*")); len(vms) == 0 {
			t.Errorf("base %s has no kernel", base)
		}
		if _, err := os.Lstat(filepath.Join(base, "etc", "kiln-fixture")); !os.IsNotExist(err) {
			t.Errorf("a build's step wrote into the cached base: %v", err)
		}
		if dev, err := os.ReadDir(filepath.Join(base, "dev")); err != nil || len(dev) > 0 {
			t.Errorf("base /dev holds %d entries (%v), want none", len(dev), err)
		}
	}
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// grepTree returns the files under dir that contain s.
func grepTree(t *testing.T, dir, s string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if ok, err := fileContains(p, []byte(s)); err != nil {
			return err
		} else if ok {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// fileContains streams the file, so that a 2 GiB disk is not read whole.
func fileContains(path string, s []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	var tail []byte
	for {
		n, err := f.Read(buf)
		chunk := append(tail, buf[:n]...)
		if bytes.Contains(chunk, s) {
			return true, nil
		}
		if len(chunk) >= len(s) {
			tail = append([]byte(nil), chunk[len(chunk)-len(s)+1:]...)
		} else {
			tail = chunk
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}
