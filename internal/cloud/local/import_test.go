package local

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// TestImportMovesFiles: files on the store's filesystem are renamed into
// the blob store (same inode, no copy), recorded with their digests and
// gone from where they were.
func TestImportMovesFiles(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, config.LocalBackend{})
	dir := t.TempDir()
	disk, wantDisk := writeRandom(t, dir, "disk.raw", 1<<20+3)
	qcow, wantQcow := writeRandom(t, dir, "disk.qcow2", 4096)
	vhd, wantVhd := writeRandom(t, dir, "disk.vhd", 0)
	inode := statT(t, disk).Ino

	img, err := b.ImportImage(ctx, ImportInput{
		Region: "home-1", Name: "moved", Arch: "x86_64", Token: "tok",
		Tags: map[string]string{cloud.TagPhase: cloud.PhaseBuild}, Disk: disk,
		Exports: map[string]string{"qcow2": qcow, "vhd": vhd},
	})
	if err != nil {
		t.Fatal(err)
	}
	if img.State != cloud.StateAvailable || img.SHA256 != wantDisk || img.Size != 1<<20+3 ||
		!slices.Equal(img.Formats, []string{"qcow2", "raw", "vhd"}) || img.Tags[cloud.TagPhase] != cloud.PhaseBuild ||
		img.Name != "moved" || img.Architecture != "x86_64" || img.Region != "home-1" || img.Created.IsZero() {
		t.Errorf("imported %+v", img)
	}
	blobs := blobFiles(t, b, "home-1")
	for format, want := range map[string]string{"raw": wantDisk, "qcow2": wantQcow, "vhd": wantVhd} {
		p, err := b.DiskFile(ctx, "home-1", img.ID, format)
		if err != nil {
			t.Fatalf("DiskFile(%s): %v", format, err)
		}
		if p != blobs[want] || fileSHA256(t, p) != want {
			t.Errorf("DiskFile(%s) = %s, want the blob %s", format, p, want)
		}
	}
	if _, err := b.DiskFile(ctx, "home-1", img.ID, "vmdk"); err == nil {
		t.Error("DiskFile(vmdk) of an image without vmdk succeeded")
	}
	if got := statT(t, blobs[wantDisk]).Ino; got != inode {
		t.Errorf("raw blob inode %d, the imported file was %d: it was copied, not moved", got, inode)
	}
	for _, p := range []string{disk, qcow, vhd} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after import (%v)", p, err)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(mustDir(t, b, "home-1"), "tmp")); len(left) != 0 {
		t.Errorf("staging files left: %v", left)
	}
}

// TestImportIdempotentByToken: a second import with the token returns the
// first image, makes no second one, and leaves the new files alone.
func TestImportIdempotentByToken(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, config.LocalBackend{})
	dir := t.TempDir()
	disk1, _ := writeRandom(t, dir, "one.raw", 8192)
	first, err := b.ImportImage(ctx, ImportInput{Region: "home-1", Name: "n", Arch: "x86_64", Token: "same", Disk: disk1})
	if err != nil {
		t.Fatal(err)
	}
	disk2, _ := writeRandom(t, dir, "two.raw", 8192)
	second, err := b.ImportImage(ctx, ImportInput{Region: "home-1", Name: "n", Arch: "x86_64", Token: "same", Disk: disk2})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || second.SHA256 != first.SHA256 {
		t.Errorf("second import = %s (%s), first = %s (%s)", second.ID, second.SHA256, first.ID, first.SHA256)
	}
	if _, err := os.Stat(disk2); err != nil {
		t.Errorf("the second import's file was consumed: %v", err)
	}
	// A rerun after a crash that followed the import: the file is gone.
	again, err := b.ImportImage(ctx, ImportInput{Region: "home-1", Name: "n", Arch: "x86_64", Token: "same", Disk: disk1})
	if err != nil || again.ID != first.ID {
		t.Errorf("import rerun with its file gone = %s, %v; want %s", again.ID, err, first.ID)
	}
	imgs, err := b.ListImages(ctx, "home-1", cloud.Filter{})
	if err != nil || len(imgs) != 1 {
		t.Errorf("images after two imports with one token: %d (%v), want 1", len(imgs), err)
	}
	if len(blobFiles(t, b, "home-1")) != 1 {
		t.Errorf("blobs: %v, want one", blobFiles(t, b, "home-1"))
	}
	// The same token in another region makes another image there.
	other, err := b.ImportImage(ctx, ImportInput{Region: "home-2", Name: "n", Arch: "x86_64", Token: "same", Disk: disk2})
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == first.ID {
		t.Errorf("the token made id %s in both regions", other.ID)
	}
	// Without a token every import is new.
	disk3, _ := writeRandom(t, dir, "three.raw", 100)
	disk4, _ := writeRandom(t, dir, "four.raw", 100)
	a, err := b.ImportImage(ctx, ImportInput{Region: "home-1", Name: "n", Arch: "x86_64", Disk: disk3})
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.ImportImage(ctx, ImportInput{Region: "home-1", Name: "n", Arch: "x86_64", Disk: disk4})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == c.ID || !isImageID(a.ID) || !isImageID(c.ID) {
		t.Errorf("imports without token: ids %s and %s", a.ID, c.ID)
	}
}

// TestImageIDs checks the id forms.
func TestImageIDs(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"img-0123456789abcdef0", true},
		{"img-0123456789abcdef", false},
		{"img-0123456789abcdef01", false},
		{"img-0123456789abcdeF0", false},
		{"ami-0123456789abcdef0", false},
		{"img-0123456789abcdeg0", false},
		{"", false},
	} {
		if got := isImageID(tc.id); got != tc.ok {
			t.Errorf("isImageID(%q) = %v, want %v", tc.id, got, tc.ok)
		}
	}
	a, b := tokenImageID("r1", "tok"), tokenImageID("r1", "tok")
	if a != b || !isImageID(a) {
		t.Errorf("tokenImageID not deterministic or malformed: %s, %s", a, b)
	}
	if tokenImageID("r2", "tok") == a || tokenImageID("r1", "tok2") == a {
		t.Error("tokenImageID ignores the region or the token")
	}
	seen := make(map[string]bool)
	for range 1000 {
		id := randomImageID()
		if !isImageID(id) || seen[id] {
			t.Fatalf("randomImageID gave %q (repeat: %v)", id, seen[id])
		}
		seen[id] = true
	}
}

func mustDir(t *testing.T, b *Backend, region string) string {
	t.Helper()
	d, err := b.RegionDir(region)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
