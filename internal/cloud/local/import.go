package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kiln-images/kiln/internal/cloud"
)

// ImportInput describes files to turn into an image: what the builder
// hands over when a build is done.
type ImportInput struct {
	Region string
	Name   string
	Arch   string
	// Token makes the import idempotent: the image id is derived from the
	// region and the token.
	Token string
	Tags  map[string]string
	// Disk is the path of the raw disk file.
	Disk string
	// Exports maps an export format (qcow2, vmdk, vhd) to its file.
	Exports map[string]string
}

// ImportImage moves the disk and export files into the region's blob store
// and records an available image tagged with in.Tags. Files on the store's
// filesystem are renamed, others are copied and then removed; either way
// the caller no longer has them. With in.Token set a second call returns
// the first call's image and leaves its files alone.
func (b *Backend) ImportImage(ctx context.Context, in ImportInput) (cloud.Image, error) {
	img, err := b.importImage(ctx, in)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("local: import image %q into region %s: %w", in.Name, show(in.Region), err)
	}
	return img, nil
}

// importFile is one file of an import on its way into the blob store.
type importFile struct {
	format string
	path   string // the caller's file
	digest string
	key    fileKey // identity of the caller's file when it was hashed
	staged string  // a verified copy in the region's tmp dir, until it lands
	copied bool    // the file was copied, not renamed: remove it when done
}

func (b *Backend) importImage(ctx context.Context, in ImportInput) (cloud.Image, error) {
	r, err := b.region(in.Region)
	if err != nil {
		return cloud.Image{}, err
	}
	if err := errors.Join(checkName(in.Name), checkArch(in.Arch), checkTags(in.Tags), checkToken(in.Token)); err != nil {
		return cloud.Image{}, err
	}
	// A rerun finds the image before looking at the files: a first attempt
	// that died after recording the image has already moved them away.
	id := ""
	if in.Token != "" {
		id = tokenImageID(r.name, in.Token)
		if rec, err := r.readRecord(id); err == nil && rec.State == cloud.StateAvailable {
			return rec.image(r.name), nil
		}
	}
	files := []importFile{{format: formatRaw, path: in.Disk}}
	for _, f := range slices.Sorted(maps.Keys(in.Exports)) {
		if err := checkFormat(f); err != nil {
			return cloud.Image{}, err
		}
		if f == formatRaw {
			return cloud.Image{}, invalidf("exports[raw]: the raw disk is given as disk, not as an export")
		}
		files = append(files, importFile{format: f, path: in.Exports[f]})
	}
	seen := make(map[string]string) // cleaned path -> field
	for _, f := range files {
		field := "disk"
		if f.format != formatRaw {
			field = "exports[" + f.format + "]"
		}
		if f.path == "" {
			return cloud.Image{}, invalidf("%s: no file given", field)
		}
		if other, dup := seen[filepath.Clean(f.path)]; dup {
			return cloud.Image{}, invalidf("%s %s: the same file as %s", field, f.path, other)
		}
		seen[filepath.Clean(f.path)] = field
		if b.inStore(f.path) {
			return cloud.Image{}, invalidf("%s %s: the file is inside the image store", field, f.path)
		}
		if _, err := statRegular(f.path); err != nil {
			return cloud.Image{}, cloud.Mark(fmt.Errorf("%s: %w", field, err), cloud.ErrInvalid)
		}
	}

	if err := r.ensure(); err != nil {
		return cloud.Image{}, err
	}
	defer func() {
		for _, f := range files {
			if f.staged != "" {
				os.Remove(f.staged) // left only when the import failed or was not needed
			}
		}
	}()
	// All at once: the disk and its exports are hashed (and synced) in
	// the time of the largest rather than of all together.
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i := range files {
		wg.Go(func() { errs[i] = b.hashImportFile(ctx, r, &files[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return cloud.Image{}, err
	}

	unlock, err := r.lock(ctx)
	if err != nil {
		return cloud.Image{}, err
	}
	defer unlock()
	if id != "" {
		rec, err := r.readRecord(id)
		if err == nil && rec.State == cloud.StateAvailable {
			return rec.image(r.name), nil // a concurrent import finished first
		}
		if err != nil && !errors.Is(err, cloud.ErrNotFound) {
			return cloud.Image{}, err
		}
	} else {
		for id == "" || fileExists(r.recordPath(id)) {
			id = randomImageID()
		}
	}
	rec := &imageRecord{
		ID:           id,
		Name:         in.Name,
		Architecture: in.Arch,
		State:        cloud.StateAvailable,
		Created:      b.now().UTC().Round(0),
		Tags:         maps.Clone(in.Tags),
		Formats:      make(map[string]string),
		Token:        in.Token,
	}
	for i := range files {
		f := &files[i]
		if err := b.commitImportFile(ctx, r, f); err != nil {
			return cloud.Image{}, err
		}
		rec.Formats[f.format] = f.digest
	}
	rec.SHA256 = rec.Formats[formatRaw]
	rec.Size = files[0].key.size
	// Only now, with every blob durably in place, does the record appear.
	if err := r.writeRecord(rec); err != nil {
		return cloud.Image{}, err
	}
	for _, f := range files {
		if f.copied {
			if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				b.log.Warn("imported file not removed", "path", f.path, "err", err)
			}
		}
	}
	return rec.image(r.name), nil
}

// hashImportFile computes f's digest. A file on the region's filesystem is
// hashed and synced in place, to be renamed later; another is copied into
// the region's tmp dir while hashing.
func (b *Backend) hashImportFile(ctx context.Context, r *region, f *importFile) error {
	in, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	f.key, _ = keyOf(fi)
	tmpDev, err := statDev(r.tmpDir())
	if err != nil {
		return err
	}
	if devOf(fi) == tmpDev {
		if f.digest, err = b.digestOf(ctx, f.path); err != nil {
			return fmt.Errorf("hash %s: %w", f.path, err)
		}
		return in.Sync()
	}
	return b.stageCopy(ctx, r, f, in)
}

// stageCopy copies f into the region's tmp dir, hashing on the way.
func (b *Backend) stageCopy(ctx context.Context, r *region, f *importFile, in *os.File) error {
	out, err := os.CreateTemp(r.tmpDir(), "import-*")
	if err != nil {
		return err
	}
	f.staged, f.copied = out.Name(), true
	digest, _, err := copySparse(ctx, out, in)
	if err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", f.path, out.Name(), err)
	}
	f.digest = digest
	b.remember(out, digest)
	return finish(out)
}

// commitImportFile puts f into the blob store. The caller holds the lock.
func (b *Backend) commitImportFile(ctx context.Context, r *region, f *importFile) error {
	target := r.blobPath(f.digest)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if f.staged == "" {
		if err := os.Chmod(f.path, 0o444); err != nil {
			return err
		}
		err := os.Rename(f.path, target)
		if errors.Is(err, unix.EXDEV) {
			// Same device number, different mount (a bind mount): copy.
			in, err := os.Open(f.path)
			if err != nil {
				return err
			}
			defer in.Close()
			want := f.digest
			if err := b.stageCopy(ctx, r, f, in); err != nil {
				return err
			}
			if f.digest != want {
				return fmt.Errorf("%s changed while importing it: sha256 %s, then %s", f.path, want, f.digest)
			}
			err = land(f.staged, target)
			f.staged = ""
			return err
		}
		if err != nil {
			return err
		}
		// The caller hands the file over; if it was still being written
		// while we hashed it, the blob would not match its name.
		fi, err := os.Stat(target)
		if err != nil {
			return err
		}
		if key, _ := keyOf(fi); key != f.key {
			os.Remove(target)
			return fmt.Errorf("%s changed while importing it", f.path)
		}
		if err := syncDir(filepath.Dir(target)); err != nil {
			return err
		}
		return syncDir(filepath.Dir(filepath.Dir(target)))
	}
	err := land(f.staged, target)
	f.staged = ""
	return err
}

// statRegular returns path's FileInfo, or an error when it is not a regular
// file.
func statRegular(path string) (fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type())
	}
	return fi, nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
