package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// digestCache remembers the sha256 of files this process has hashed, keyed
// by inode and modification time. Blobs are immutable, so a hard-linked blob
// is verified once, not once per region that links it; writing to a file
// changes its modification time and so forces a new hash. Across processes
// the same record travels with the inode itself (see xattrDigest).
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

// xattrDigest is the extended attribute in which a file kiln hashed keeps
// its sha256, so that a later process (a `kiln replicate` after `kiln
// build`) need not read the whole blob again to verify a hard link of it:
// a link is the same inode, and a verified inode is verified. The value
// names the inode, size and modification time it was computed for; a
// write to the file changes the modification time and voids it, as does a
// copy to another inode that keeps the attribute (cp -a, rsync -X).
// Writing the attribute leaves the modification time alone.
const xattrDigest = "user.kiln.sha256"

// digestRecord is xattrDigest's value for the file k with digest d.
func digestRecord(k fileKey, d string) string {
	return fmt.Sprintf("%s ino=%d size=%d mtime=%d", d, k.ino, k.size, k.mtime)
}

// recordedDigest returns the digest f's xattrDigest gives for k, if it
// was computed for k.
func recordedDigest(f *os.File, k fileKey) (string, bool) {
	buf := make([]byte, 256)
	n, err := unix.Fgetxattr(int(f.Fd()), xattrDigest, buf)
	if err != nil {
		return "", false
	}
	d, rest, ok := strings.Cut(string(buf[:n]), " ")
	if !ok || len(d) != sha256.Size*2 || rest != strings.TrimPrefix(digestRecord(k, d), d+" ") {
		return "", false
	}
	if _, err := hex.DecodeString(d); err != nil {
		return "", false
	}
	return d, true
}

// recordDigest stores d as f's xattrDigest, best effort: a filesystem
// without user attributes, or a read-only blob of another user, only means
// the next process hashes it again.
func recordDigest(f *os.File, k fileKey, d string) {
	unix.Fsetxattr(int(f.Fd()), xattrDigest, []byte(digestRecord(k, d)), 0)
}

// digestOf returns the hex sha256 of the file at path, hashing it unless
// this process hashed the same unmodified inode before, or the inode
// carries a record of its digest for its present state.
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
		if d, ok := recordedDigest(f, key); ok {
			b.digests.put(key, d)
			return d, nil
		}
	}
	d, _, err := hashFile(ctx, f)
	if err != nil {
		return "", err
	}
	if keyed {
		b.digests.put(key, d)
		recordDigest(f, key, d)
	}
	return d, nil
}

// remember records that the file open as f has digest d.
func (b *Backend) remember(f *os.File, d string) {
	if fi, err := f.Stat(); err == nil {
		if key, ok := keyOf(fi); ok {
			b.digests.put(key, d)
			recordDigest(f, key, d)
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
