package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// TestCopySharesBlocks copies a 64 MiB image between two regions on one
// filesystem and checks that the copy shares the source's blocks (hard link
// or reflink) and that the filesystem lost almost no free space.
func TestCopySharesBlocks(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, config.LocalBackend{})
	src := seed(t, b, "home-1", "big", nil, 64<<20)
	srcBlob := blobFiles(t, b, "home-1")[src.SHA256]
	dstDir, _ := b.RegionDir("home-2")
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		t.Fatal(err)
	}

	// Other processes may write to the same filesystem meanwhile: a copy
	// that really wrote 64 MiB fails every attempt, noise only some.
	const limit = 8 << 20
	var used int64
	var cp cloud.Image
	for attempt := range 3 {
		if attempt > 0 {
			if err := b.DeleteImage(ctx, "home-2", cp.ID); err != nil {
				t.Fatal(err)
			}
		}
		unix.Sync()
		before := freeBytes(t, dstDir)
		var err error
		cp, err = b.CopyImage(ctx, cloud.CopyInput{SourceRegion: "home-1", SourceID: src.ID, Region: "home-2", Token: "share"})
		if err != nil {
			t.Fatal(err)
		}
		unix.Sync()
		used = before - freeBytes(t, dstDir)
		if used < limit {
			break
		}
		t.Logf("attempt %d: free space fell by %d bytes", attempt, used)
	}
	if used >= limit {
		t.Errorf("copying a 64 MiB image used %d bytes of free space, want under %d", used, limit)
	}
	if cp.State != cloud.StateAvailable || cp.SHA256 != src.SHA256 {
		t.Fatalf("copy = %+v", cp)
	}

	dstBlob := blobFiles(t, b, "home-2")[src.SHA256]
	if dstBlob == "" {
		t.Fatalf("no blob %s in home-2", src.SHA256)
	}
	s, d := statT(t, srcBlob), statT(t, dstBlob)
	switch {
	case s.Ino == d.Ino && s.Dev == d.Dev:
		if s.Nlink < 2 {
			t.Errorf("hard-linked blob has %d links", s.Nlink)
		}
		t.Logf("blob shared by hard link (inode %d, %d links)", s.Ino, s.Nlink)
	case allShared(t, dstBlob):
		t.Logf("blob shared by reflink")
	default:
		t.Errorf("destination blob %s (inode %d) shares nothing with %s (inode %d)", dstBlob, d.Ino, srcBlob, s.Ino)
	}
	if got := fileSHA256(t, dstBlob); got != src.SHA256 {
		t.Errorf("destination blob sha256 %s, want %s", got, src.SHA256)
	}
	if d.Mode&0o222 != 0 {
		t.Errorf("blob mode %o is writable", d.Mode&0o777)
	}
}

// TestCopyReflinks copies between two regions on a filesystem with
// reflinks: the copy must be a clone (its own inode, every extent shared),
// verified, and cost almost no space.
func TestCopyReflinks(t *testing.T) {
	ctx := context.Background()
	root := reflinkFilesystem(t)
	b, err := New(config.LocalBackend{}, root, []string{"x", "y"})
	if err != nil {
		t.Fatal(err)
	}
	// The source lives on the XFS filesystem too: import moves it there.
	dir := filepath.Join(root, "work")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	disk, want := writeRandom(t, dir, "disk.raw", 64<<20)
	src, err := b.ImportImage(ctx, ImportInput{Region: "x", Name: "big", Arch: "x86_64", Disk: disk})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	before := freeBytes(t, root)
	cp, err := b.CopyImage(ctx, cloud.CopyInput{SourceRegion: "x", SourceID: src.ID, Region: "y", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	// Only this test writes to this filesystem: no noise to allow for.
	if used := before - freeBytes(t, root); used > 4<<20 {
		t.Errorf("reflink copy of 64 MiB used %d bytes", used)
	}
	srcBlob, dstBlob := blobFiles(t, b, "x")[want], blobFiles(t, b, "y")[want]
	if cp.SHA256 != want || dstBlob == "" {
		t.Fatalf("copy %+v, blob %q", cp, dstBlob)
	}
	if statT(t, srcBlob).Ino == statT(t, dstBlob).Ino {
		t.Errorf("copy is a hard link; want a reflink on XFS")
	}
	if !allShared(t, dstBlob) {
		t.Errorf("copy's extents are not shared")
	}
	if got := fileSHA256(t, dstBlob); got != want {
		t.Errorf("copy's sha256 %s, want %s", got, want)
	}
}

// allShared reports whether every extent of path is shared (FIEMAP), as
// after a reflink.
func allShared(t *testing.T, path string) bool {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const n = 64
	const fiemapIoctl = 0xC020660B // FS_IOC_FIEMAP
	type extent struct {
		logical, physical, length uint64
		_                         [2]uint64
		flags                     uint32
		_                         [3]uint32
	}
	type request struct {
		start, length        uint64
		flags, mapped, count uint32
		_                    uint32
		extents              [n]extent
	}
	const extentShared = 0x2000
	req := request{length: ^uint64(0), count: n}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fiemapIoctl, uintptr(unsafe.Pointer(&req))); errno != 0 {
		t.Logf("FIEMAP %s: %v", path, errno)
		return false
	}
	if req.mapped == 0 {
		return false
	}
	for _, e := range req.extents[:req.mapped] {
		if e.flags&extentShared == 0 {
			return false
		}
	}
	return true
}
