package ebsupload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/smithy-go"
)

// fakeEBS is one region's EBS direct APIs for the engine's unit tests: it
// checks each block against its checksum, as EBS does, and keeps what it
// got. The aws package tests the engine against moto and the stub.
type fakeEBS struct {
	mu        sync.Mutex
	blocks    map[int32][]byte
	notFound  int           // answer this many puts with ResourceNotFoundException first
	failAt    int32         // answer a put of this block with an error (-1: none)
	inFlight  *atomic.Int32 // shared by the fakes of one upload
	maxFlight *atomic.Int32
	completed *ebs.CompleteSnapshotInput
	delay     time.Duration
}

func newFake() *fakeEBS {
	return &fakeEBS{blocks: map[int32][]byte{}, failAt: -1, inFlight: new(atomic.Int32), maxFlight: new(atomic.Int32)}
}

func (f *fakeEBS) PutSnapshotBlock(ctx context.Context, in *ebs.PutSnapshotBlockInput, _ ...func(*ebs.Options)) (*ebs.PutSnapshotBlockOutput, error) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxFlight.Load()
		if n <= m || f.maxFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.notFound > 0 {
		f.notFound--
		return nil, &notFoundError{}
	}
	if aws.ToInt32(in.BlockIndex) == f.failAt {
		return nil, errors.New("validation: broken")
	}
	data, _ := io.ReadAll(in.BlockData)
	sum := sha256.Sum256(data)
	if base64.StdEncoding.EncodeToString(sum[:]) != aws.ToString(in.Checksum) || len(data) != int(aws.ToInt32(in.DataLength)) {
		return nil, errors.New("ValidationException: checksum does not match the data")
	}
	f.blocks[aws.ToInt32(in.BlockIndex)] = data
	return &ebs.PutSnapshotBlockOutput{Checksum: in.Checksum, ChecksumAlgorithm: in.ChecksumAlgorithm}, nil
}

func (f *fakeEBS) CompleteSnapshot(ctx context.Context, in *ebs.CompleteSnapshotInput, _ ...func(*ebs.Options)) (*ebs.CompleteSnapshotOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.completed = in
	return &ebs.CompleteSnapshotOutput{Status: ebstypes.StatusCompleted}, nil
}

type notFoundError struct{}

func (notFoundError) Error() string                 { return "ResourceNotFoundException: the snapshot does not exist" }
func (notFoundError) ErrorCode() string             { return "ResourceNotFoundException" }
func (notFoundError) ErrorMessage() string          { return "the snapshot does not exist" }
func (notFoundError) ErrorFault() smithy.ErrorFault { return smithy.FaultUnknown }

// disk writes a sparse test disk: data at the given block indexes (the
// last one partial when short), holes elsewhere, one block of zeros
// written as data.
func disk(t *testing.T, size int64, data map[int64][]byte, zeroAt int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range data {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	if zeroAt >= 0 {
		if _, err := f.WriteAt(make([]byte, BlockSize), zeroAt); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestScanAndUpload(t *testing.T) {
	size := int64(40*BlockSize + 123) // not a whole block: the last block is padded
	data := map[int64][]byte{
		0:                bytes.Repeat([]byte("a"), 4096),         // block 0, partly
		BlockSize + 100:  []byte("b"),                             // block 1
		10*BlockSize - 3: []byte("crossing"),                      // blocks 9 and 10
		size - 50:        bytes.Repeat([]byte("z"), 50),           // the last, partial block
		3 * BlockSize:    bytes.Repeat([]byte{0xff}, BlockSize*2), // blocks 3 and 4
	}
	path := disk(t, size, data, 6*BlockSize)
	d, err := Scan(path)
	if err != nil {
		t.Fatal(err)
	}
	var idx []int32
	for _, b := range d.Blocks {
		idx = append(idx, b.Index)
	}
	last := int32((size - 1) / BlockSize)
	if want := []int32{0, 1, 3, 4, 9, 10, last}; !slices.Equal(idx, want) {
		t.Fatalf("blocks %v, want %v (block 6 is zeros written as data)", idx, want)
	}
	if d.VolumeSize() != 1 || (Disk{Size: 5 * GiB / 2}).VolumeSize() != 3 {
		t.Errorf("volume sizes %d, %d GiB; want 1 and 3", d.VolumeSize(), (Disk{Size: 5 * GiB / 2}).VolumeSize())
	}

	fakes := []*fakeEBS{newFake(), newFake(), newFake()}
	for _, f := range fakes[1:] {
		f.inFlight, f.maxFlight = fakes[0].inFlight, fakes[0].maxFlight
	}
	fakes[1].notFound = 3 // a snapshot not yet visible to the first puts
	var targets []Target
	for i, f := range fakes {
		f.delay = time.Millisecond
		targets = append(targets, Target{Region: []string{"a", "b", "c"}[i], SnapshotID: "snap-" + string(rune('a'+i)), API: f})
	}
	var progress sync.Map
	res := Upload(t.Context(), d, targets, Options{Concurrency: 4, Progress: func(region string, done, total int) {
		progress.Store(region, [2]int{done, total})
	}})

	whole, _ := os.ReadFile(path)
	whole = append(whole, make([]byte, int(last+1)*BlockSize-len(whole))...)
	for i, r := range res {
		if r.Err != nil || r.Blocks != len(d.Blocks) || r.Bytes != d.DataBytes() {
			t.Fatalf("%s: %+v", r.Region, r)
		}
		f := fakes[i]
		if len(f.blocks) != len(d.Blocks) {
			t.Errorf("%s holds %d blocks, want %d", r.Region, len(f.blocks), len(d.Blocks))
		}
		for _, b := range d.Blocks {
			if !bytes.Equal(f.blocks[b.Index], whole[int(b.Index)*BlockSize:int(b.Index+1)*BlockSize]) {
				t.Errorf("%s: block %d differs from the disk", r.Region, b.Index)
			}
		}
		c := f.completed
		if c == nil || aws.ToInt32(c.ChangedBlocksCount) != int32(len(d.Blocks)) || aws.ToString(c.Checksum) != d.Checksum() ||
			c.ChecksumAggregationMethod != ebstypes.ChecksumAggregationMethodChecksumAggregationLinear {
			t.Errorf("%s: CompleteSnapshot %+v", r.Region, c)
		}
		if p, _ := progress.Load(r.Region); p != [2]int{len(d.Blocks), len(d.Blocks)} {
			t.Errorf("%s: last progress %v", r.Region, p)
		}
	}
	// The aggregate is the hash of the block hashes in order.
	h := sha256.New()
	for _, b := range d.Blocks {
		s := sha256.Sum256(whole[int(b.Index)*BlockSize : int(b.Index+1)*BlockSize])
		h.Write(s[:])
	}
	if base64.StdEncoding.EncodeToString(h.Sum(nil)) != d.Checksum() {
		t.Error("aggregate checksum is not the LINEAR one")
	}
	if most := fakes[0].maxFlight.Load(); most > 4 || most < 2 {
		t.Errorf("%d requests in flight at once over all regions, bound 4", most)
	}
}

// A region that fails stops alone; its snapshot is not completed.
func TestUploadRegionFails(t *testing.T) {
	path := disk(t, 8*BlockSize, map[int64][]byte{0: []byte("x"), 5 * BlockSize: []byte("y")}, -1)
	d, err := Scan(path)
	if err != nil {
		t.Fatal(err)
	}
	good, bad := newFake(), newFake()
	bad.failAt = 5
	res := Upload(context.Background(), d, []Target{{Region: "good", SnapshotID: "s1", API: good}, {Region: "bad", SnapshotID: "s2", API: bad}}, Options{})
	if res[0].Err != nil || good.completed == nil {
		t.Errorf("good region: %+v", res[0])
	}
	if res[1].Err == nil || bad.completed != nil {
		t.Errorf("bad region: %+v, completed %v", res[1], bad.completed)
	}
	// Not visible for longer than allowed: an error.
	late := newFake()
	late.notFound = 1000
	res = Upload(context.Background(), d, []Target{{Region: "late", SnapshotID: "s3", API: late}}, Options{NotFoundFor: time.Millisecond})
	if res[0].Err == nil || !notFound(res[0].Err) || late.completed != nil {
		t.Errorf("late region: %+v", res[0])
	}
}

func TestScanEmptyAndMissing(t *testing.T) {
	d, err := Scan(disk(t, 3*BlockSize, nil, -1))
	if err != nil || len(d.Blocks) != 0 || d.VolumeSize() != 1 {
		t.Errorf("empty disk: %+v, %v", d, err)
	}
	if _, err := Scan(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("no error for a missing disk")
	}
	if _, err := Scan(t.TempDir()); err == nil {
		t.Error("no error for a directory")
	}
}
