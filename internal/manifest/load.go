package manifest

import (
	"fmt"
	"io"
	"os"
)

// MaxSize is the largest manifest Load and Decode accept. Real manifests are
// a few KiB; the limit stops a wrong path (a disk image, a device) from
// filling memory.
const MaxSize = 16 << 20

// Load reads and decodes the manifest at path. A missing file is an error
// matching fs.ErrNotExist; problems with the content are Errors naming path.
func Load(path string) (Manifest, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return Decode(path, data)
}

// LoadValid reads, decodes and validates the manifest at path, with line
// and column in validation errors too.
func LoadValid(path string, r Rules) (Manifest, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return Check(path, data, r)
}

// readLimited reads a file of at most MaxSize bytes; a directory or a
// larger file is an Errors naming path.
func readLimited(path string) ([]byte, error) {
	// A FIFO or device would block the open until someone writes to it.
	if st, err := os.Stat(path); err == nil && !st.IsDir() && !st.Mode().IsRegular() {
		return nil, Errors{{File: path, Msg: "is not a regular file (a pipe, socket or device), not a manifest file"}}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	if fi.IsDir() {
		return nil, Errors{{File: path, Msg: "is a directory, not a manifest file"}}
	}
	if fi.Size() > MaxSize {
		return nil, Errors{tooBig(path, fi.Size())}
	}
	// Size can be 0 for special files; the limit still holds.
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	if len(data) > MaxSize {
		return nil, Errors{tooBig(path, -1)}
	}
	return data, nil
}

func tooBig(name string, size int64) *Error {
	msg := fmt.Sprintf("is larger than the %d MiB limit for manifests", MaxSize>>20)
	if size >= 0 {
		msg = fmt.Sprintf("is %d bytes, larger than the %d MiB limit for manifests", size, MaxSize>>20)
	}
	return &Error{File: name, Msg: msg}
}
