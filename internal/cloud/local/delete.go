package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DeleteImage removes the image's record and then the blobs no other image
// in the region uses. Deleting an absent image succeeds.
func (b *Backend) DeleteImage(ctx context.Context, region, id string) error {
	if err := b.deleteImage(ctx, region, id); err != nil {
		return fmt.Errorf("local: delete image %s in region %s: %w", show(id), show(region), err)
	}
	return nil
}

func (b *Backend) deleteImage(ctx context.Context, region, id string) error {
	r, err := b.region(region)
	if err != nil {
		return err
	}
	if err := checkImageID("image id", id); err != nil {
		return err
	}
	if !fileExists(r.recordPath(id)) {
		return nil
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	// Record first, blobs after: a crash in between leaves unreferenced
	// blobs for the next collection, never a record without its blobs.
	if err := removeDurably(r.recordPath(id)); err != nil {
		return err
	}
	_, err = b.gc(ctx, r)
	return err
}

// GCStats says what a garbage collection removed.
type GCStats struct {
	Blobs int   // unreferenced blobs removed
	Bytes int64 // their size
	Temp  int   // stale staging files removed
}

// StaleTemp is the age after which garbage collection removes a staging
// file: a transfer still using it would be far younger.
const StaleTemp = time.Hour

// GC removes the blobs in region that no pending or available image
// references and staging files older than StaleTemp. DeleteImage runs it;
// it is exported for maintenance and tests.
func (b *Backend) GC(ctx context.Context, region string) (GCStats, error) {
	r, err := b.region(region)
	if err != nil {
		return GCStats{}, fmt.Errorf("local: gc: %w", err)
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return GCStats{}, fmt.Errorf("local: gc: %w", err)
	}
	defer unlock()
	st, err := b.gc(ctx, r)
	if err != nil {
		return st, fmt.Errorf("local: gc region %s: %w", region, err)
	}
	return st, nil
}

// gc collects garbage in r. The caller holds r's lock, so no record
// appears or changes while it runs (see the package comment).
func (b *Backend) gc(ctx context.Context, r *region) (GCStats, error) {
	var st GCStats
	recs, err := r.scanRecords(ctx, nil)
	if err != nil {
		// Without every record we cannot know what is referenced.
		return st, fmt.Errorf("blobs kept: %w", err)
	}
	live := make(map[string]bool)
	for _, rec := range recs {
		if rec.holdsBlobs() {
			for _, d := range rec.Formats {
				live[d] = true
			}
		}
	}
	subdirs, err := os.ReadDir(r.blobsDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return st, err
	}
	for _, sub := range subdirs {
		dir := filepath.Join(r.blobsDir(), sub.Name())
		blobs, err := os.ReadDir(dir)
		if err != nil {
			return st, err
		}
		removed := false
		for _, e := range blobs {
			d := e.Name()
			if !isDigest(d) || d[:2] != sub.Name() || live[d] {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue // gone already
			}
			if err := os.Remove(filepath.Join(dir, d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return st, err
			}
			b.log.Debug("removed unreferenced blob", "region", r.name, "sha256", d)
			st.Blobs++
			st.Bytes += fi.Size()
			removed = true
		}
		if removed {
			if err := syncDir(dir); err != nil {
				return st, err
			}
		}
	}
	// Subdirectories stay: a transfer outside the lock may be about to use
	// one.
	st.Temp, err = b.removeStaleTemp(r)
	return st, err
}

// removeStaleTemp removes staging files unchanged for StaleTemp. It goes
// by the inode change time, which writing and linking both set: a blob
// hard-linked into tmp/ keeps its old modification time. Only regular
// files with the names kiln gives staging files are removed: whatever else
// is there is not kiln's to delete.
func (b *Backend) removeStaleTemp(r *region) (int, error) {
	entries, err := os.ReadDir(r.tmpDir())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cutoff := b.now().Add(-StaleTemp)
	n := 0
	for _, e := range entries {
		if !stagingName.MatchString(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || !changeTime(fi).Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(r.tmpDir(), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, err
		}
		n++
	}
	return n, nil
}

// changeTime returns the inode change time of fi (its modification time
// where the system does not say).
func changeTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix())
	}
	return fi.ModTime()
}
