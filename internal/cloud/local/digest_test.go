package local

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-images/kiln/internal/config"
)

// TestDigestRecordedOnTheInode: an import leaves each blob's sha256 on its
// inode, a later process (a fresh backend) takes it from there instead of
// reading the blob, and anything that may have changed the content voids
// it: a write (new modification time) or a copy to another inode that keeps
// the attribute.
func TestDigestRecordedOnTheInode(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	b, err := New(config.LocalBackend{}, root, []string{"home-1"})
	if err != nil {
		t.Fatal(err)
	}
	img := seed(t, b, "home-1", "img", nil, 1<<20)
	blob := blobFiles(t, b, "home-1")[img.SHA256]
	buf := make([]byte, 256)
	n, err := unix.Getxattr(blob, xattrDigest, buf)
	if err != nil {
		t.Fatalf("imported blob has no %s: %v", xattrDigest, err)
	}
	fi, err := os.Stat(blob)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := keyOf(fi)
	if got, want := string(buf[:n]), digestRecord(key, img.SHA256); got != want {
		t.Errorf("%s = %q, want %q", xattrDigest, got, want)
	}

	fresh := func() *Backend {
		t.Helper()
		nb, err := New(config.LocalBackend{}, root, []string{"home-1"})
		if err != nil {
			t.Fatal(err)
		}
		return nb
	}
	// The record is taken as it is: a change that kept the size and the
	// modification time (which nothing but a deliberate touch does) is not
	// seen. That it is not seen proves the blob was not read.
	flipByte(t, blob, 100)
	if err := os.Chtimes(blob, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if d, err := fresh().digestOf(ctx, blob); err != nil || d != img.SHA256 {
		t.Errorf("with the record intact: digest %s, %v; want the recorded %s", d, err, img.SHA256)
	}

	// A write moves the modification time: the record no longer counts.
	if err := os.Chtimes(blob, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	want := fileSHA256(t, blob)
	if d, err := fresh().digestOf(ctx, blob); err != nil || d != want {
		t.Errorf("after a change: digest %s, %v; want %s, read from the file", d, err, want)
	}

	// A copy with attributes and times kept is another inode: hashed anew.
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", blob, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	if n, err := unix.Getxattr(cp, xattrDigest, buf); err != nil || n == 0 {
		t.Fatalf("cp -a did not keep %s (%v); the test needs it", xattrDigest, err)
	}
	flipByte(t, cp, 200)
	cfi, _ := os.Stat(blob)
	os.Chtimes(cp, cfi.ModTime(), cfi.ModTime())
	want = fileSHA256(t, cp)
	if d, err := fresh().digestOf(ctx, cp); err != nil || d != want {
		t.Errorf("copy to another inode: digest %s, %v; want %s, read from the file", d, err, want)
	}
}
