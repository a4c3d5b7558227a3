package local

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// holeReader reads a file from its start and yields the zeros of its holes
// without reading them (SEEK_DATA/SEEK_HOLE). Disk images are mostly
// holes; reading those through the page cache would cost as much as
// reading data.
type holeReader struct {
	f    *os.File
	off  int64
	size int64
	// [off, zeroEnd) is known to be a hole and [zeroEnd, dataEnd) data.
	zeroEnd, dataEnd int64
}

func newHoleReader(f *os.File) (*holeReader, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &holeReader{f: f, size: fi.Size()}, nil
}

func (h *holeReader) Read(p []byte) (int, error) {
	if h.off >= h.size {
		return 0, io.EOF
	}
	if h.off >= h.dataEnd {
		h.locate()
	}
	if h.off < h.zeroEnd {
		n := int(min(int64(len(p)), h.zeroEnd-h.off))
		clear(p[:n])
		h.off += int64(n)
		return n, nil
	}
	n, err := h.f.ReadAt(p[:min(int64(len(p)), h.dataEnd-h.off)], h.off)
	h.off += int64(n)
	if errors.Is(err, io.EOF) {
		// The file shrank while read: report what was read.
		if n > 0 {
			return n, nil
		}
		return 0, io.ErrUnexpectedEOF
	}
	return n, err
}

// locate finds the hole and the data region that start at h.off. Where the
// filesystem cannot say, everything counts as data.
func (h *holeReader) locate() {
	fd := int(h.f.Fd())
	h.zeroEnd, h.dataEnd = h.off, h.size
	data, err := unix.Seek(fd, h.off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO): // no data after off
		h.zeroEnd = h.size
		return
	case err != nil:
		return
	}
	h.zeroEnd = min(data, h.size)
	if hole, err := unix.Seek(fd, data, unix.SEEK_HOLE); err == nil {
		h.dataEnd = min(hole, h.size)
	}
	if h.dataEnd <= h.zeroEnd {
		h.dataEnd = h.size
	}
}
