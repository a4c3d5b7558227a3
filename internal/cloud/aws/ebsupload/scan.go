// Package ebsupload writes a local disk image into EBS snapshots, in
// several regions at once, with the EBS direct APIs: the blocks that hold
// data (an all-zero block is left out: a snapshot reads zeros where it has
// none), each with its SHA-256, in parallel up to a bound shared by all
// regions, and CompleteSnapshot with the block count and the checksum of
// the checksums, so that EBS itself vouches that every block arrived.
//
// The disk is read twice: once to find its blocks and their digests (Scan,
// which reads only data, skipping the holes of a sparse file), then by
// each region's uploads, block by block, from the page cache. Digests are
// computed once for every region. What was learned by Bottlerocket's
// coldsnap, which does the same for one region, is kept: 512 KiB blocks
// (the only size the APIs take), the last block padded with zeros, a
// PutSnapshotBlock retried while a snapshot that was just started is not
// yet visible, and the LINEAR aggregate checksum.
package ebsupload

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// BlockSize is the size of an EBS snapshot block: the only one the EBS
// direct APIs accept.
const BlockSize = 512 << 10

// GiB is the unit of snapshot (volume) sizes.
const GiB = 1 << 30

// Block is a block of the disk that holds data.
type Block struct {
	Index  int32
	Sum    [sha256.Size]byte
	Length int // bytes of the file in the block; the rest is padding
}

// Checksum is the block's SHA-256, base64, as PutSnapshotBlock takes it.
func (b Block) Checksum() string { return base64.StdEncoding.EncodeToString(b.Sum[:]) }

// Disk is a scanned disk image: its size and the blocks that hold data,
// by index.
type Disk struct {
	Path   string
	Size   int64
	Blocks []Block
}

// VolumeSize is the size of a snapshot of the disk, in GiB (EBS sizes are
// whole GiB).
func (d Disk) VolumeSize() int64 { return max((d.Size+GiB-1)/GiB, 1) }

// DataBytes is how many bytes an upload to one region sends.
func (d Disk) DataBytes() int64 { return int64(len(d.Blocks)) * BlockSize }

// Checksum is the aggregate checksum CompleteSnapshot takes with the
// LINEAR aggregation method: the SHA-256 of the blocks' SHA-256s, in
// block order, base64.
func (d Disk) Checksum() string {
	h := sha256.New()
	for _, b := range d.Blocks {
		h.Write(b.Sum[:])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// maxBlocks is the most blocks a snapshot may have with int32 indexes: a
// 1 PiB disk. EBS volumes end at 64 TiB.
const maxBlocks = 1 << 31

// Scan reads the disk at path and returns its blocks that hold data.
// Holes (SEEK_HOLE) are skipped without reading; blocks read as all zeros
// are left out too.
func Scan(path string) (Disk, error) {
	f, err := os.Open(path)
	if err != nil {
		return Disk{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Disk{}, err
	}
	if !fi.Mode().IsRegular() {
		return Disk{}, fmt.Errorf("%s is not a regular file", path)
	}
	d := Disk{Path: path, Size: fi.Size()}
	if (d.Size+BlockSize-1)/BlockSize > maxBlocks {
		return Disk{}, fmt.Errorf("%s is %d bytes, too big for a snapshot", path, d.Size)
	}
	buf := make([]byte, BlockSize)
	for _, r := range dataRanges(f, d.Size) {
		for off := r[0] / BlockSize * BlockSize; off < r[1]; off += BlockSize {
			n, err := f.ReadAt(buf, off)
			if err != nil && !errors.Is(err, io.EOF) {
				return Disk{}, fmt.Errorf("read %s at %d: %w", path, off, err)
			}
			clear(buf[n:])
			if allZero(buf) {
				continue
			}
			d.Blocks = append(d.Blocks, Block{Index: int32(off / BlockSize), Sum: sha256.Sum256(buf), Length: n})
		}
	}
	return d, nil
}

// dataRanges returns the byte ranges of f that may hold data, in order,
// without overlap: [start, end). Where the filesystem cannot say, all of f.
func dataRanges(f *os.File, size int64) [][2]int64 {
	fd := int(f.Fd())
	var out [][2]int64
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, unix.ENXIO) { // no data after off
				return out
			}
			return append(out, [2]int64{off, size})
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		// Block-align, merging ranges that share a block.
		start, end := data/BlockSize*BlockSize, min((hole+BlockSize-1)/BlockSize*BlockSize, size)
		if n := len(out); n > 0 && start <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], end)
		} else {
			out = append(out, [2]int64{start, end})
		}
		off = hole
	}
	return out
}

var zeroBlock = make([]byte, BlockSize)

func allZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// readBlock reads block b of the disk into buf (BlockSize bytes), padded
// with zeros. Its digest is not taken again: EBS checks each block against
// the digest Scan took, so a disk that changed since is refused there.
func readBlock(f *os.File, b Block, buf []byte) error {
	n, err := f.ReadAt(buf, int64(b.Index)*BlockSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	clear(buf[n:])
	return nil
}
