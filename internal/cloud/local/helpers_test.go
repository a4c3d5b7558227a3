package local

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// newBackend returns a backend over a fresh store in a temporary directory
// with the given regions (default two).
func newBackend(t testing.TB, cfg config.LocalBackend, regions ...string) *Backend {
	t.Helper()
	if len(regions) == 0 {
		regions = []string{"home-1", "home-2"}
	}
	b, err := New(cfg, t.TempDir(), regions)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// writeRandom writes size random bytes to a new file in dir and returns
// its path and sha256.
func writeRandom(t testing.TB, dir, name string, size int) (string, string) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return path, hex.EncodeToString(sum[:])
}

// seed imports a random disk (and a qcow2-named export) into region.
func seed(t testing.TB, b *Backend, region, name string, tags map[string]string, size int) cloud.Image {
	t.Helper()
	dir := t.TempDir()
	disk, _ := writeRandom(t, dir, "disk.raw", size)
	export, _ := writeRandom(t, dir, "disk.qcow2", size/4+1)
	img, err := b.ImportImage(context.Background(), ImportInput{
		Region: region, Name: name, Arch: "x86_64", Tags: tags,
		Disk: disk, Exports: map[string]string{"qcow2": export},
	})
	if err != nil {
		t.Fatalf("ImportImage: %v", err)
	}
	return img
}

// blobFiles lists every blob in region as digest -> path.
func blobFiles(t testing.TB, b *Backend, region string) map[string]string {
	t.Helper()
	r, err := b.region(region)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	matches, err := filepath.Glob(filepath.Join(r.blobsDir(), "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range matches {
		out[filepath.Base(m)] = m
	}
	return out
}

// fileSHA256 hashes a file.
func fileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, _, err := hashReader(context.Background(), f) // plain reads: independent of holeReader
	if err != nil {
		t.Fatal(err)
	}
	return d
}
