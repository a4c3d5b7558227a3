package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// TestCopyToOtherFilesystem copies into a region configured on another
// filesystem: the blob must be a verified, independent, still sparse copy.
func TestCopyToOtherFilesystem(t *testing.T) {
	ctx := context.Background()
	other := otherFilesystem(t)
	cfg := config.LocalBackend{RegionPaths: map[string]string{"away": filepath.Join(other, "away")}}
	b := newBackend(t, cfg, "home", "away")

	// A sparse 64 MiB disk with 1 MiB of data in the middle.
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := writeRandom(t, dir, "data", 1<<20)
	chunk, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(chunk, 20<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want := fileSHA256(t, disk)
	src, err := b.ImportImage(ctx, ImportInput{Region: "home", Name: "sparse", Arch: "x86_64", Token: "imp", Disk: disk})
	if err != nil {
		t.Fatal(err)
	}
	if src.SHA256 != want || src.Size != 64<<20 {
		t.Fatalf("imported %+v, want sha256 %s size %d", src, want, 64<<20)
	}

	cp, err := b.CopyImage(ctx, cloud.CopyInput{SourceRegion: "home", SourceID: src.ID, Region: "away", Token: "cp", Tags: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if cp.State != cloud.StateAvailable || cp.SHA256 != want || cp.Region != "away" {
		t.Fatalf("copy = %+v", cp)
	}
	srcBlob := blobFiles(t, b, "home")[want]
	dstBlob := blobFiles(t, b, "away")[want]
	if dstBlob == "" || !isWithin(dstBlob, other) {
		t.Fatalf("blob %s in region away at %q, want under %s", want, dstBlob, other)
	}
	s, d := statT(t, srcBlob), statT(t, dstBlob)
	if s.Dev == d.Dev {
		t.Fatalf("source and destination blobs on one device %d: the test did not cross filesystems", s.Dev)
	}
	if got := fileSHA256(t, dstBlob); got != want {
		t.Errorf("copied blob sha256 %s, want %s", got, want)
	}
	if d.Size != 64<<20 {
		t.Errorf("copied blob size %d, want %d", d.Size, 64<<20)
	}
	if allocated := d.Blocks * 512; allocated > 4<<20 {
		t.Errorf("copied blob allocates %d bytes for 1 MiB of data: holes were written", allocated)
	}
	// The copy is independent: deleting the source leaves it whole.
	if err := b.DeleteImage(ctx, "home", src.ID); err != nil {
		t.Fatal(err)
	}
	if got := fileSHA256(t, dstBlob); got != want {
		t.Errorf("copy after deleting the source: sha256 %s, want %s", got, want)
	}
	if _, err := os.Stat(srcBlob); !os.IsNotExist(err) {
		t.Errorf("source blob after deleting its only image: %v, want it gone", err)
	}
}

// TestImportFromOtherFilesystem imports files that live on another
// filesystem: they are copied, verified, and removed from where they were.
func TestImportFromOtherFilesystem(t *testing.T) {
	other := otherFilesystem(t)
	b := newBackend(t, config.LocalBackend{}, "home", "away")
	disk, want := writeRandom(t, other, "disk.raw", 3<<20+17)
	vmdk, wantVMDK := writeRandom(t, other, "disk.vmdk", 1<<20)
	img, err := b.ImportImage(context.Background(), ImportInput{
		Region: "home", Name: "from-tmpfs", Arch: "arm64", Disk: disk, Exports: map[string]string{"vmdk": vmdk},
	})
	if err != nil {
		t.Fatal(err)
	}
	if img.SHA256 != want || img.Size != 3<<20+17 || img.Architecture != "arm64" {
		t.Errorf("imported %+v, want sha256 %s", img, want)
	}
	blobs := blobFiles(t, b, "home")
	for _, d := range []string{want, wantVMDK} {
		if p := blobs[d]; p == "" || fileSHA256(t, p) != d {
			t.Errorf("blob %s missing or wrong at %q", d, p)
		}
	}
	for _, p := range []string{disk, vmdk} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("imported file %s still there (%v); an import moves files", p, err)
		}
	}
}

func isWithin(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !filepath.IsAbs(rel) && rel[:min(3, len(rel))] != "../"
}
