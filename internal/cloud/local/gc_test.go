package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// TestGC: blobs of pending and available records stay, blobs nobody (or
// only a failed record) references go, staging files go once an hour old,
// and an unreadable record stops the collection.
func TestGC(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	root := t.TempDir()
	b, err := New(config.LocalBackend{}, root, []string{"r"}, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	keep := seed(t, b, "r", "keep", nil, 4096)
	drop := seed(t, b, "r", "drop", nil, 4096)
	r, _ := b.region("r")

	// A pending record (a copy in flight) holds a blob; a failed one does not.
	pending, _ := writeRandom(t, t.TempDir(), "p", 100)
	failed, _ := writeRandom(t, t.TempDir(), "f", 100)
	orphan, _ := writeRandom(t, t.TempDir(), "o", 100)
	digests := map[string]string{}
	for name, p := range map[string]string{"pending": pending, "failed": failed, "orphan": orphan} {
		d := fileSHA256(t, p)
		digests[name] = d
		if err := os.MkdirAll(filepath.Dir(r.blobPath(d)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p, r.blobPath(d)); err != nil {
			t.Fatal(err)
		}
	}
	for name, state := range map[string]cloud.ImageState{"pending": cloud.StatePending, "failed": cloud.StateFailed} {
		d := digests[name]
		rec := &imageRecord{ID: randomImageID(), Name: name, Architecture: "x86_64", State: state,
			SHA256: d, Formats: map[string]string{formatRaw: d}}
		if err := r.writeRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	// A staging file just written, and a blob just hard-linked into tmp/
	// (old modification time, fresh change time): both in use.
	written := filepath.Join(r.tmpDir(), "copy-1234567890")
	linked := filepath.Join(r.tmpDir(), "link-0123456789abcdef")
	for _, p := range []string{written, linked} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(linked, now.Add(-48*time.Hour), now.Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}

	if err := b.DeleteImage(ctx, "r", drop.ID); err != nil { // runs GC
		t.Fatal(err)
	}
	blobs := blobFiles(t, b, "r")
	for name, d := range map[string]string{"kept image": keep.SHA256, "pending": digests["pending"]} {
		if _, ok := blobs[d]; !ok {
			t.Errorf("GC removed the blob of the %s record", name)
		}
	}
	for name, d := range map[string]string{"deleted image": drop.SHA256, "failed": digests["failed"], "orphan": digests["orphan"]} {
		if _, ok := blobs[d]; ok {
			t.Errorf("GC kept the %s blob %s", name, d)
		}
	}
	for _, p := range []string{written, linked} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("staging file in use removed: %v", err)
		}
	}
	// An hour later they are stale.
	now = now.Add(StaleTemp + time.Minute)
	st, err := b.GC(ctx, "r")
	if err != nil || st.Temp != 2 {
		t.Errorf("GC an hour later = %+v, %v; want 2 staging files removed", st, err)
	}
	if left, _ := os.ReadDir(r.tmpDir()); len(left) != 0 {
		t.Errorf("staging files left: %v", left)
	}

	// An unreadable record: nothing may be collected.
	orphan2, _ := writeRandom(t, t.TempDir(), "o2", 100)
	d2 := fileSHA256(t, orphan2)
	os.MkdirAll(filepath.Dir(r.blobPath(d2)), 0o755)
	if err := os.Rename(orphan2, r.blobPath(d2)); err != nil {
		t.Fatal(err)
	}
	broken := r.recordPath(randomImageID())
	if err := os.WriteFile(broken, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = b.GC(ctx, "r")
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("GC with a broken record: %v, want an error naming %s", err, broken)
	}
	if _, ok := blobFiles(t, b, "r")[d2]; !ok {
		t.Error("GC removed a blob while a record was unreadable")
	}
	if _, err := b.ListImages(ctx, "r", cloud.Filter{}); err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("ListImages with a broken record: %v, want an error naming %s", err, broken)
	}
	os.Remove(broken)
	st, err = b.GC(ctx, "r")
	if err != nil || st.Blobs != 1 || st.Bytes != 100 {
		t.Errorf("GC after the fix = %+v, %v; want 1 blob of 100 bytes", st, err)
	}
}
