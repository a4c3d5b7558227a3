package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
)

// digestCache remembers the sha256 of files this process has hashed, keyed
// by inode and modification time. Blobs are immutable, so a hard-linked blob
// is verified once, not once per region that links it; writing to a file
// changes its modification time and so forces a new hash.
type digestCache struct {
	mu sync.Mutex
	m  map[fileKey]string
}

type fileKey struct {
	dev, ino uint64
	size     int64
	mtime    int64 // nanoseconds
}

// maxCached bounds the cache; it is cleared when full.
const maxCached = 4096

func newDigestCache() *digestCache { return &digestCache{m: make(map[fileKey]string)} }

func keyOf(fi fs.FileInfo) (fileKey, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}, false
	}
	return fileKey{dev: uint64(st.Dev), ino: st.Ino, size: fi.Size(), mtime: fi.ModTime().UnixNano()}, true
}

func devOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

func (c *digestCache) get(k fileKey) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[k]
	return d, ok
}

func (c *digestCache) put(k fileKey, d string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		clear(c.m)
	}
	c.m[k] = d
}

// digestOf returns the hex sha256 of the file at path, hashing it unless
// this process hashed the same unmodified inode before.
func (b *Backend) digestOf(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	key, keyed := keyOf(fi)
	if keyed {
		if d, ok := b.digests.get(key); ok {
			return d, nil
		}
	}
	d, _, err := hashFile(ctx, f)
	if err != nil {
		return "", err
	}
	if keyed {
		b.digests.put(key, d)
	}
	return d, nil
}

// remember records that the file open as f has digest d.
func (b *Backend) remember(f *os.File, d string) {
	if fi, err := f.Stat(); err == nil {
		if key, ok := keyOf(fi); ok {
			b.digests.put(key, d)
		}
	}
}

// hashFile returns the hex sha256 of the file open as f, from its start,
// and its length.
func hashFile(ctx context.Context, f *os.File) (string, int64, error) {
	r, err := newHoleReader(f)
	if err != nil {
		return "", 0, err
	}
	return hashReader(ctx, r)
}

// hashReader returns the hex sha256 of everything r yields and its length.
func hashReader(ctx context.Context, r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxReader{ctx, r}, make([]byte, 1<<20))
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ctxReader stops a long read when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
