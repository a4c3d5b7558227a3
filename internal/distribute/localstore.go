package distribute

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-images/kiln/internal/lockfile"
)

// Names inside a local tree that are kiln's own.
const (
	markerFile  = ".kiln-dist"   // says the directory is a kiln tree
	lockFile    = ".kiln-lock"   // publishers' flock
	generations = ".generations" // streams files, one directory per generation
	streamsLink = "streams"      // symlink to the current generation
	tmpPrefix   = ".tmp-"        // staging files, next to their destination
)

// LocalStore is a distribution tree in a local directory, served by
// `kiln serve` or any static web server.
type LocalStore struct {
	Dir string
	// Keep is how many older generations of streams files stay next to
	// the current one, for readers that fetched an index just before a
	// switch; default 1.
	Keep int
}

var _ Store = (*LocalStore)(nil)

func (s *LocalStore) Name() string { return s.Dir }

// Init makes Dir a kiln tree if it is empty or absent, and refuses a
// directory with other content: kiln removes files it no longer indexes,
// and must never do that in a directory that is not its own.
func (s *LocalStore) Init() error {
	if _, err := os.Stat(filepath.Join(s.Dir, markerFile)); err == nil {
		return nil
	}
	entries, err := os.ReadDir(s.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return err
		}
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("distribution directory %s is not empty and is not a kiln tree (no %s): kiln removes files it no longer indexes, so it uses only a directory of its own; choose another distribution.dir", s.Dir, markerFile)
	}
	return writeFileAtomic(filepath.Join(s.Dir, markerFile), []byte("This directory is a kiln distribution tree; kiln rewrites and removes files in it.\n"))
}

func (s *LocalStore) Lock(ctx context.Context) (func(), error) {
	if err := s.Init(); err != nil {
		return nil, err
	}
	return lockfile.Lock(ctx, filepath.Join(s.Dir, lockFile))
}

// local turns a tree path into a file path, refusing anything that is not
// a path kiln writes.
func (s *LocalStore) local(p string) (string, error) {
	if err := checkPath(p); err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, filepath.FromSlash(p)), nil
}

func (s *LocalStore) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	fp, err := s.local(p)
	if err != nil {
		return nil, err
	}
	return os.Open(fp)
}

func (s *LocalStore) Size(ctx context.Context, p string) (int64, error) {
	fp, err := s.local(p)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(fp)
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", fp)
	}
	return fi.Size(), nil
}

// Put places src at p. A local file is shared where the filesystem
// allows (a reflink, else a hard link: store blobs never change), else
// copied; compressed content is streamed through gzip.
func (s *LocalStore) Put(ctx context.Context, p string, src Source) error {
	dst, err := s.local(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	switch {
	case src.Object != "":
		return fmt.Errorf("put %s: a local tree cannot take %s", p, src.Object)
	case src.File != "" && !src.Gzip:
		return shareFile(ctx, src.File, dst)
	}
	var r io.Reader
	if src.File != "" {
		f, err := os.Open(src.File)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	} else {
		r = bytes.NewReader(src.Bytes)
	}
	return writeStream(ctx, dst, r, src.Gzip)
}

// shareFile makes dst the content of src: a reflink, else a hard link,
// else a copy, landing by rename.
func shareFile(ctx context.Context, src, dst string) error {
	if si, err := os.Stat(src); err != nil {
		return err
	} else if di, err := os.Stat(dst); err == nil && os.SameFile(si, di) {
		return nil // a rerun: already the same inode
	}
	tmp := tmpName(dst)
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err == nil {
		return landFile(out, tmp, dst)
	}
	out.Close()
	os.Remove(tmp)
	if err := os.Link(src, tmp); err == nil {
		return landLink(tmp, dst)
	}
	return writeStream(ctx, dst, in, false)
}

// writeStream writes r (gzip-compressed when asked) to a staging file and
// renames it to dst.
func writeStream(ctx context.Context, dst string, r io.Reader, compress bool) error {
	tmp := tmpName(dst)
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	var w io.Writer = out
	var zw *gzip.Writer
	if compress {
		// BestSpeed: disks are large and mostly zeros, which any level
		// compresses well. No name or time in the header, so the same
		// input makes the same bytes.
		zw, _ = gzip.NewWriterLevel(out, gzip.BestSpeed)
		w = zw
	}
	_, err = io.CopyBuffer(w, ctxReader{ctx, r}, make([]byte, 1<<20))
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err != nil {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return landFile(out, tmp, dst)
}

func landFile(out *os.File, tmp, dst string) error {
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return landLink(tmp, dst)
}

func landLink(tmp, dst string) error {
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	os.Remove(tmp) // rename of two links to one inode leaves tmp
	return syncDir(filepath.Dir(dst))
}

func tmpName(dst string) string {
	var b [6]byte
	rand.Read(b[:]) // never fails on Linux
	return filepath.Join(filepath.Dir(dst), tmpPrefix+hex.EncodeToString(b[:])+"-"+filepath.Base(dst))
}

// Streams reads the current generation's files.
func (s *LocalStore) Streams(ctx context.Context) (map[string][]byte, error) {
	gen, err := os.Readlink(filepath.Join(s.Dir, streamsLink))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(s.Dir, streamsLink), err)
	}
	return readGeneration(filepath.Join(s.Dir, gen))
}

// readGeneration reads the streams files of a generation directory.
func readGeneration(dir string) (map[string][]byte, error) {
	v1 := filepath.Join(dir, "v1")
	entries, err := os.ReadDir(v1)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(v1, e.Name()))
		if err != nil {
			return nil, err
		}
		out["streams/v1/"+e.Name()] = data
	}
	return out, nil
}

// Commit writes files as a new generation and switches the streams
// symlink to it with one rename, then removes generations older than the
// Keep before it.
func (s *LocalStore) Commit(ctx context.Context, files map[string][]byte) error {
	sum := sha256.New()
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if err := checkPath(p); err != nil || !strings.HasPrefix(p, "streams/v1/") {
			return fmt.Errorf("commit %s: not a streams file", p)
		}
		sum.Write([]byte(p))
		sum.Write(files[p])
	}
	id := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(sum.Sum(nil))[:12]
	genRel := path.Join(generations, id)
	v1 := filepath.Join(s.Dir, generations, id, "v1")
	if err := os.MkdirAll(v1, 0o755); err != nil {
		return err
	}
	for p, data := range files {
		if err := writeFileAtomic(filepath.Join(v1, path.Base(p)), data); err != nil {
			return err
		}
	}
	if err := syncDir(v1); err != nil {
		return err
	}
	link := filepath.Join(s.Dir, streamsLink)
	tmp := tmpName(link)
	if err := os.Symlink(genRel, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncDir(s.Dir); err != nil {
		return err
	}
	return s.pruneGenerations(id)
}

// pruneGenerations removes generations but the current one and the Keep
// newest before it. Names sort by time.
func (s *LocalStore) pruneGenerations(current string) error {
	keep := s.Keep
	if keep <= 0 {
		keep = 1
	}
	dir := filepath.Join(s.Dir, generations)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var older []string
	for _, e := range entries {
		if e.IsDir() && e.Name() < current {
			older = append(older, e.Name())
		}
	}
	slices.Sort(older)
	for len(older) > keep {
		if err := os.RemoveAll(filepath.Join(dir, older[0])); err != nil {
			return err
		}
		older = older[1:]
	}
	return nil
}

// List walks images/ and returns every regular file, staging files of
// interrupted writes included (they start with .tmp-).
func (s *LocalStore) List(ctx context.Context) ([]string, error) {
	root := filepath.Join(s.Dir, "images")
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == root {
			return fs.SkipDir
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(s.Dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

// Remove deletes files and then the directories they leave empty.
func (s *LocalStore) Remove(ctx context.Context, paths []string) error {
	dirs := map[string]bool{}
	for _, p := range paths {
		fp := filepath.Join(s.Dir, filepath.FromSlash(p))
		rel, err := filepath.Rel(s.Dir, fp)
		if err != nil || !filepath.IsLocal(rel) || !strings.HasPrefix(filepath.ToSlash(rel), "images/") {
			return fmt.Errorf("remove %q: not a file under images/", p)
		}
		if err := os.Remove(fp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for d := filepath.Dir(fp); d != filepath.Join(s.Dir, "images") && strings.HasPrefix(d, s.Dir); d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	// Deepest first; a directory that still holds something stays.
	for _, d := range slices.SortedFunc(maps.Keys(dirs), func(a, b string) int { return len(b) - len(a) }) {
		os.Remove(d)
	}
	return nil
}

// writeFileAtomic writes data to path through a staging file and rename.
func writeFileAtomic(p string, data []byte) error {
	tmp := tmpName(p)
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := out.Write(data); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	return landFile(out, tmp, p)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// ctxReader stops a long copy when ctx ends.
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
