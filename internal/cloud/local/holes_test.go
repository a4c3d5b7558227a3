package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// TestSparseHashAndCopy checks holeReader and copySparse on files with
// holes in different places: the hash and the copy's content must equal a
// plain read, and the copy must not allocate the holes.
func TestSparseHashAndCopy(t *testing.T) {
	const mib = 1 << 20
	type span struct{ off, n int64 } // data written at off
	for _, tc := range []struct {
		name  string
		size  int64
		spans []span
	}{
		{"empty", 0, nil},
		{"all hole", 8 * mib, nil},
		{"dense", 3*mib + 5, []span{{0, 3*mib + 5}}},
		{"data in the middle", 16 * mib, []span{{5 * mib, mib + 123}}},
		{"data at both ends", 16 * mib, []span{{0, 4096}, {16*mib - 10, 10}}},
		{"many extents", 32 * mib, []span{{mib, 10}, {3 * mib, 70000}, {9*mib + 1, 1}, {20 * mib, 2 * mib}}},
		{"zeros written as data", 4 * mib, []span{{mib, -mib}}}, // negative: explicit zeros
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			f, err := os.Create(src)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.spans {
				data := make([]byte, max(s.n, -s.n))
				if s.n > 0 {
					rand.Read(data)
				}
				if _, err := f.WriteAt(data, s.off); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Truncate(tc.size); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			plain, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(plain)
			want := hex.EncodeToString(sum[:])

			got, n, err := hashFile(context.Background(), f)
			if err != nil || got != want || n != tc.size {
				t.Errorf("hashFile = %s, %d, %v; want %s, %d", got, n, err, want, tc.size)
			}

			out, err := os.Create(filepath.Join(dir, "dst"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			got, n, err = copySparse(context.Background(), out, f)
			if err != nil || got != want || n != tc.size {
				t.Errorf("copySparse = %s, %d, %v; want %s, %d", got, n, err, want, tc.size)
			}
			copied, err := os.ReadFile(out.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(copied, plain) {
				t.Errorf("copy differs from the source (%d vs %d bytes)", len(copied), len(plain))
			}
			var data int64
			for _, s := range tc.spans {
				data += max(s.n, 0)
			}
			if alloc := statT(t, out.Name()).Blocks * 512; alloc > data+2*sparseBlock*int64(len(tc.spans)+1) {
				t.Errorf("copy allocates %d bytes for %d bytes of data", alloc, data)
			}
			f.Close()
		})
	}
}
