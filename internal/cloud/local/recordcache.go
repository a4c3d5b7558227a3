package local

import (
	"os"
	"sync"
	"time"
)

// recordCache keeps decoded image records so that listing a region again
// costs one stat per record instead of a read and a JSON decode. An entry
// is valid while the file at its path has the same inode, size and
// modification time. Every record write gives the new file a modification
// time later, to the nanosecond, than the file it replaces
// (nextVersionTime), so a new version never looks like a cached one, even
// when the filesystem reuses the inode number.
type recordCache struct {
	mu sync.Mutex
	m  map[string]cachedRecord // by record path
}

type cachedRecord struct {
	key fileKey
	rec *imageRecord // shared: never modified
}

func newRecordCache() *recordCache { return &recordCache{m: make(map[string]cachedRecord)} }

func (c *recordCache) get(path string, key fileKey) *imageRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[path]; ok && e.key == key {
		return e.rec
	}
	return nil
}

func (c *recordCache) put(path string, key fileKey, rec *imageRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[path] = cachedRecord{key: key, rec: rec}
}

// retain drops the entries of paths not in keep, after a full scan.
func (c *recordCache) retain(keep map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.m {
		if !keep[p] {
			delete(c.m, p)
		}
	}
}

// nextVersionTime returns the modification time for a new version of the
// file at path: now, or one nanosecond after the current version's when
// the clock has not moved past it. It reads the real clock, not the
// backend's, which tests may fix.
func nextVersionTime(path string) time.Time {
	now := time.Now().Round(0)
	if fi, err := os.Lstat(path); err == nil {
		if prev := fi.ModTime(); !now.After(prev) {
			return prev.Add(time.Nanosecond)
		}
	}
	return now
}

// readRecordShared returns the record of id for reading only, from the
// cache when the file is unchanged. Absent records are (nil, nil).
func (r *region) readRecordShared(id string) (*imageRecord, error) {
	path := r.recordPath(id)
	fi, err := os.Lstat(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if key, ok := keyOf(fi); ok {
		if rec := r.cache.get(path, key); rec != nil {
			return rec, nil
		}
	}
	// Read through one descriptor so the key describes what was read.
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil // removed since the stat
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, err
	}
	rec, err := decodeRecord(path, id, data)
	if err != nil {
		return nil, err
	}
	if key, ok := keyOf(fi); ok {
		r.cache.put(path, key, rec)
	}
	return rec, nil
}
