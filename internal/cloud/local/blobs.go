package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DigestError reports a blob whose content does not match the digest its
// image record gives: the blob is corrupt.
type DigestError struct {
	Region string // region of the image whose record gives Want
	Image  string // that image
	Path   string // the blob read
	Want   string
	Got    string
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("blob %s of image %s in region %s is corrupt: its sha256 is %s, the record says %s",
		e.Path, e.Image, e.Region, e.Got, e.Want)
}

// transfer methods, for logs and tests.
const (
	viaPresent = "present" // the destination already had a verified blob
	viaClone   = "reflink"
	viaLink    = "hardlink"
	viaCopy    = "copy"
)

// transferBlob makes the blob digest present and verified in dst, taking it
// from the image srcID in src. It runs without the lock: the caller's pending
// record keeps the blob from garbage collection once it lands. It never
// leaves a blob that does not match digest in dst's blob store; a corrupt
// source is a *DigestError.
func (b *Backend) transferBlob(ctx context.Context, src *region, srcID string, dst *region, digest string) (string, error) {
	srcPath, dstPath := src.blobPath(digest), dst.blobPath(digest)
	srcInfo, err := os.Stat(srcPath)
	if err != nil {
		return "", fmt.Errorf("source blob of image %s in region %s: %w", srcID, src.name, err)
	}
	corrupt := func(path, got string) error {
		return &DigestError{Region: src.name, Image: srcID, Path: path, Want: digest, Got: got}
	}

	if dstInfo, err := os.Stat(dstPath); err == nil {
		got, err := b.digestOf(ctx, dstPath)
		if err != nil {
			return "", err
		}
		if got == digest {
			return viaPresent, nil
		}
		if os.SameFile(srcInfo, dstInfo) {
			return "", corrupt(srcPath, got)
		}
		// A bad blob from some earlier accident: replace it by rename below.
		b.log.Warn("replacing corrupt blob", "region", dst.name, "path", dstPath, "sha256", got)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dstPath), 0o755); err != nil {
		return "", err
	}
	tmpDev, err := statDev(dst.tmpDir())
	if err != nil {
		return "", err
	}
	if devOf(srcInfo) == tmpDev {
		tmp, ok, err := b.cloneBlob(ctx, srcPath, dst, digest, corrupt)
		if err != nil {
			return "", err
		}
		if ok {
			return viaClone, land(tmp, dstPath)
		}
		tmp, ok, err = b.linkBlob(ctx, srcPath, dst, digest, corrupt)
		if err != nil {
			return "", err
		}
		if ok {
			return viaLink, land(tmp, dstPath)
		}
	}
	tmp, err := b.streamBlob(ctx, srcPath, dst, digest, corrupt)
	if err != nil {
		return "", err
	}
	return viaCopy, land(tmp, dstPath)
}

// cloneBlob reflinks src to a staging file in dst and verifies it. ok is
// false when the filesystem cannot clone.
func (b *Backend) cloneBlob(ctx context.Context, src string, dst *region, digest string, corrupt func(path, got string) error) (tmp string, ok bool, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", false, err
	}
	defer in.Close()
	out, err := os.CreateTemp(dst.tmpDir(), "clone-*")
	if err != nil {
		return "", false, err
	}
	defer func() {
		out.Close()
		if !ok || err != nil {
			os.Remove(out.Name())
		}
	}()
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
		b.log.Debug("reflink not possible, trying a hard link", "from", src, "err", err)
		return "", false, nil
	}
	// A clone is a new inode: hash what landed.
	got, _, err := hashFile(ctx, out)
	if err != nil {
		return "", false, err
	}
	if got != digest {
		return "", false, corrupt(src, got)
	}
	b.remember(out, got)
	return out.Name(), true, finish(out)
}

// linkBlob hard-links src into dst's staging directory after verifying src:
// the link is the same inode, so verifying src verifies what lands. ok is
// false when the filesystem refuses the link.
func (b *Backend) linkBlob(ctx context.Context, src string, dst *region, digest string, corrupt func(path, got string) error) (tmp string, ok bool, err error) {
	got, err := b.digestOf(ctx, src)
	if err != nil {
		return "", false, err
	}
	if got != digest {
		return "", false, corrupt(src, got)
	}
	tmp = filepath.Join(dst.tmpDir(), "link-"+randomHex(8))
	if err := os.Link(src, tmp); err != nil {
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EMLINK) || errors.Is(err, unix.EPERM) {
			b.log.Debug("hard link not possible, copying", "from", src, "err", err)
			return "", false, nil
		}
		return "", false, err
	}
	return tmp, true, nil
}

// streamBlob copies src into a staging file in dst, hashing on the way.
func (b *Backend) streamBlob(ctx context.Context, src string, dst *region, digest string, corrupt func(path, got string) error) (tmp string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dst.tmpDir(), "copy-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	got, _, err := copySparse(ctx, out, in)
	if err != nil {
		return "", fmt.Errorf("copy %s to %s: %w", src, out.Name(), err)
	}
	if got != digest {
		return "", corrupt(src, got)
	}
	b.remember(out, got)
	return out.Name(), finish(out)
}

// finish makes a staged blob read-only and durable, and closes it.
func finish(f *os.File) error {
	if err := f.Chmod(0o444); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// land renames a verified staging file to its blob path, replacing any blob
// there (same digest, possibly a corrupt copy), and makes the rename
// durable.
func land(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	// When tmp and path were already links to one inode, rename does
	// nothing and tmp is still there.
	os.Remove(tmp)
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(filepath.Dir(path)))
}

// sparseBlock is the unit copySparse checks for zeros.
const sparseBlock = 64 << 10

// copySparse copies src to the start of dst, returning the hex sha256 of
// every byte and the length. Blocks of zeros are skipped, not written, so a
// sparse disk stays sparse; dst is truncated to the length at the end.
func copySparse(ctx context.Context, dst *os.File, src *os.File) (string, int64, error) {
	r, err := newHoleReader(src)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	buf := make([]byte, 4<<20)
	zero := make([]byte, sparseBlock)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", n, err
		}
		m, rerr := io.ReadFull(r, buf)
		if m > 0 {
			h.Write(buf[:m])
			if err := writeNonZero(dst, buf[:m], n, zero); err != nil {
				return "", n, err
			}
			n += int64(m)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return "", n, rerr
		}
	}
	if err := dst.Truncate(n); err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// writeNonZero writes p at offset off, one write per run of non-zero
// blocks.
func writeNonZero(dst *os.File, p []byte, off int64, zero []byte) error {
	start := -1 // start of the current run of data, or -1
	for i := 0; i < len(p); i += sparseBlock {
		end := min(i+sparseBlock, len(p))
		if bytes.Equal(p[i:end], zero[:end-i]) {
			if start >= 0 {
				if _, err := dst.WriteAt(p[start:i], off+int64(start)); err != nil {
					return err
				}
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		if _, err := dst.WriteAt(p[start:], off+int64(start)); err != nil {
			return err
		}
	}
	return nil
}
