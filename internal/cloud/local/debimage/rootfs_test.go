package debimage

import (
	"archive/tar"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestScanRoot(t *testing.T) {
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	entries := []struct {
		name, link, body string
		typ              byte
	}{
		{name: "./", typ: tar.TypeDir},
		{name: "./boot/", typ: tar.TypeDir},
		{name: "./boot/vmlinuz-6.1.0-9-amd64", body: "kernel 9", typ: tar.TypeReg},
		{name: "./boot/initrd.img-6.1.0-9-amd64", body: "initrd 9", typ: tar.TypeReg},
		{name: "./boot/vmlinuz-6.1.0-10-amd64", body: "kernel 10", typ: tar.TypeReg}, // no initrd
		{name: "./boot/config-6.1.0-9-amd64", body: "config", typ: tar.TypeReg},
		{name: "./vmlinuz", link: "boot/vmlinuz-6.1.0-9-amd64", typ: tar.TypeSymlink},
		{name: "./etc/", typ: tar.TypeDir},
		{name: "./etc/big", body: string(make([]byte, 5000)), typ: tar.TypeReg},
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	f.Close()

	bootDir := filepath.Join(dir, "boot")
	info, err := scanRoot(tarPath, bootDir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.kernels, []string{"6.1.0-9-amd64"}) || info.defKernel != "6.1.0-9-amd64" || info.dirs != 3 {
		t.Errorf("info %+v", info)
	}
	// 4 files of one block and one of two.
	if info.dataBytes != 6*4096 {
		t.Errorf("data %d bytes, want %d", info.dataBytes, 6*4096)
	}
	for name, want := range map[string]string{"vmlinuz-6.1.0-9-amd64": "kernel 9", "initrd.img-6.1.0-9-amd64": "initrd 9"} {
		b, err := os.ReadFile(filepath.Join(bootDir, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(bootDir, "config-6.1.0-9-amd64")); !os.IsNotExist(err) {
		t.Errorf("config copied out too: %v", err)
	}
}

func TestScanDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("boot/vmlinuz-6.1.0-9-amd64", "kernel 9")
	write("boot/initrd.img-6.1.0-9-amd64", "initrd 9")
	write("boot/vmlinuz-6.1.0-10-amd64", "kernel 10") // no initrd
	write("boot/config-6.1.0-9-amd64", "config")
	write("etc/big", string(make([]byte, 5000)))
	if err := os.Symlink("boot/vmlinuz-6.1.0-9-amd64", filepath.Join(dir, "vmlinuz")); err != nil {
		t.Fatal(err)
	}
	// A second name of a file takes no more room.
	if err := os.Link(filepath.Join(dir, "etc/big"), filepath.Join(dir, "etc/big2")); err != nil {
		t.Fatal(err)
	}
	info, err := scanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.kernels, []string{"6.1.0-9-amd64"}) || info.defKernel != "6.1.0-9-amd64" || info.dirs != 3 {
		t.Errorf("info %+v", info)
	}
	if info.dataBytes != 6*4096 {
		t.Errorf("data %d bytes, want %d", info.dataBytes, 6*4096)
	}
}
