package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// flipByte inverts one byte of a (read-only) blob in place.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
}

// TestCopyDetectsCorruptSource flips a byte in a source blob: the copy must
// fail naming the region, the image and both digests, leave no blob of
// that digest in the destination, and mark its record failed. After the
// byte is restored, the same token completes the copy.
func TestCopyDetectsCorruptSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   func(*testing.T) string // a filesystem for region dst, or nil
	}{
		{"hard link", nil},
		{"streamed copy", otherFilesystem},
		{"reflink", reflinkFilesystem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			cfg := config.LocalBackend{}
			if tc.fs != nil {
				dst := tc.fs(t)
				cfg.RegionPaths = map[string]string{"dst": filepath.Join(dst, "dst")}
				if tc.name == "reflink" {
					root = dst // both regions on the reflink filesystem
					cfg.RegionPaths = nil
				}
			}
			b, err := New(cfg, root, []string{"src", "dst"})
			if err != nil {
				t.Fatal(err)
			}
			img := seed(t, b, "src", "victim", nil, 1<<20)
			blob := blobFiles(t, b, "src")[img.SHA256]
			// Warm the digest cache as a real run would, so the test shows
			// the cache does not hide the corruption.
			if _, err := b.digestOf(ctx, blob); err != nil {
				t.Fatal(err)
			}
			flipByte(t, blob, 4096)
			bad := fileSHA256(t, blob)

			in := cloud.CopyInput{SourceRegion: "src", SourceID: img.ID, Region: "dst", Token: "tok", Tags: map[string]string{"k": "v"}}
			_, err = b.CopyImage(ctx, in)
			if err == nil {
				t.Fatal("CopyImage of a corrupt source succeeded")
			}
			var de *DigestError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DigestError", err)
			}
			for _, want := range []string{"src", "dst", img.ID, img.SHA256, bad} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if p, ok := blobFiles(t, b, "dst")[img.SHA256]; ok {
				t.Errorf("destination kept blob %s after a failed copy", p)
			}
			if n := len(blobFiles(t, b, "dst")); n != 0 {
				t.Errorf("destination has %d blobs after a failed copy, want 0: %v", n, blobFiles(t, b, "dst"))
			}
			imgs, err := b.ListImages(ctx, "dst", cloud.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(imgs) != 1 || imgs[0].State != cloud.StateFailed || imgs[0].Tags["k"] != "v" {
				t.Fatalf("destination images after a failed copy: %+v, want one failed, tagged k=v", imgs)
			}
			if _, err := b.WaitImage(ctx, "dst", imgs[0].ID); err == nil || !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("WaitImage of the failed copy: %v, want an error giving the reason", err)
			}

			// Repaired source: the same token retries the failed copy.
			flipByte(t, blob, 4096)
			cp, err := b.CopyImage(ctx, in)
			if err != nil {
				t.Fatalf("CopyImage after repair: %v", err)
			}
			if cp.ID != imgs[0].ID || cp.State != cloud.StateAvailable {
				t.Errorf("copy after repair = %+v, want %s available", cp, imgs[0].ID)
			}
			if p := blobFiles(t, b, "dst")[img.SHA256]; p == "" || fileSHA256(t, p) != img.SHA256 {
				t.Errorf("destination blob after repair missing or wrong: %q", p)
			}
		})
	}
}

// TestCopyReplacesCorruptDestinationBlob: a destination that already holds
// a corrupt blob of the right name gets a good one.
func TestCopyReplacesCorruptDestinationBlob(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, config.LocalBackend{})
	img := seed(t, b, "home-1", "img", nil, 256<<10)
	r2, _ := b.region("home-2")
	if err := r2.ensure(); err != nil {
		t.Fatal(err)
	}
	junk := r2.blobPath(img.SHA256)
	if err := os.MkdirAll(filepath.Dir(junk), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(junk, []byte("not the disk"), 0o444); err != nil {
		t.Fatal(err)
	}
	cp, err := b.CopyImage(ctx, cloud.CopyInput{SourceRegion: "home-1", SourceID: img.ID, Region: "home-2", Token: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fileSHA256(t, junk); got != img.SHA256 || cp.State != cloud.StateAvailable {
		t.Errorf("destination blob sha256 %s, state %s; want %s, available", got, cp.State, img.SHA256)
	}
}
