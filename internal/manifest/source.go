package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Source names a manifest: a plain file, or a file as it was at a git ref.
type Source struct {
	Ref  string // tag, branch or commit; "" means a plain file
	Path string // for a ref, relative to the repository directory given to Read
}

// String returns the source as ParseSource takes it: PATH or REF:PATH.
func (s Source) String() string {
	if s.Ref == "" {
		return s.Path
	}
	return s.Ref + ":" + s.Path
}

// ParseSource reads a command-line argument naming a manifest:
// "v1.2.0:manifests/stable.json" is that file at ref v1.2.0, anything else a
// plain file. A path that exists wins over REF:PATH parsing, so a file whose
// name holds a colon can still be named; so does an argument with nothing
// before or after the colon.
func ParseSource(arg string) Source {
	if _, err := os.Lstat(arg); err == nil {
		return Source{Path: arg}
	}
	// Git ref names cannot hold a colon, so the first one separates.
	ref, path, ok := strings.Cut(arg, ":")
	if !ok || ref == "" || path == "" {
		return Source{Path: arg}
	}
	return Source{Ref: ref, Path: path}
}

// Read returns the bytes of the manifest s names. A plain file is read as
// Load reads it (relative to the working directory, not repoDir). For a ref
// it reads the file from the git repository at repoDir, Path being relative
// to repoDir. A file that does not exist (plain, or at that ref) is an
// error matching fs.ErrNotExist; a ref that does not exist is another error.
func Read(ctx context.Context, repoDir string, s Source) ([]byte, error) {
	if s.Ref == "" {
		return readLimited(s.Path)
	}
	data, err := readAtRef(ctx, repoDir, s.Ref, s.Path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s, err)
	}
	return data, nil
}

// readAtRef looks the file up with ls-tree first, which tells "no such
// path at this ref" apart from "no such ref" without parsing git's
// (translatable) messages, and gives the size before anything is read.
func readAtRef(ctx context.Context, repoDir, ref, path string) ([]byte, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	gp, err := gitPath(repoDir, path)
	if err != nil {
		return nil, err
	}
	out, err := runGit(ctx, repoDir, "ls-tree", "-z", "-l", ref, "--", gp)
	if err != nil {
		return nil, err
	}
	// One record: "<mode> SP <type> SP <object> SP+ <size> TAB <path> NUL".
	rec, _, _ := bytes.Cut(out, []byte{0})
	meta, _, _ := bytes.Cut(rec, []byte{'\t'})
	fields := strings.Fields(string(meta))
	if len(fields) != 4 {
		return nil, fs.ErrNotExist
	}
	typ, object := fields[1], fields[2]
	switch typ {
	case "blob":
	case "tree":
		return nil, errors.New("is a directory, not a manifest file")
	default:
		return nil, fmt.Errorf("is a %s, not a manifest file", typ)
	}
	if size, err := strconv.ParseInt(fields[3], 10, 64); err == nil && size > MaxSize {
		return nil, fmt.Errorf("is %d bytes, larger than the %d MiB limit for manifests", size, MaxSize>>20)
	}
	return runGit(ctx, repoDir, "cat-file", "blob", object)
}

// checkRef refuses refs git would take for options.
func checkRef(ref string) error {
	if ref == "" || strings.HasPrefix(ref, "-") {
		return fmt.Errorf("git ref %q: must be a tag, branch or commit and must not start with '-'", ref)
	}
	return nil
}

// gitPath turns path into a pathspec relative to repoDir: "./" makes git
// resolve it from the directory it runs in (-C repoDir) rather than from
// the top of the work tree, so repoDir may be a subdirectory.
func gitPath(repoDir, path string) (string, error) {
	if filepath.IsAbs(path) {
		abs, err := filepath.Abs(repoDir)
		if err != nil {
			return "", err
		}
		rel, err := filepath.Rel(abs, path)
		if err != nil {
			return "", fmt.Errorf("%s is not under %s: %w", path, repoDir, err)
		}
		path = rel
	}
	return "./" + filepath.ToSlash(filepath.Clean(path)), nil
}
