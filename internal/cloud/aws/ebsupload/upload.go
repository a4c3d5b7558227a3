package ebsupload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/smithy-go"
)

// API is what an upload needs of the EBS direct APIs in one region. The
// client retries throttling and server errors itself.
type API interface {
	PutSnapshotBlock(ctx context.Context, in *ebs.PutSnapshotBlockInput, opts ...func(*ebs.Options)) (*ebs.PutSnapshotBlockOutput, error)
	CompleteSnapshot(ctx context.Context, in *ebs.CompleteSnapshotInput, opts ...func(*ebs.Options)) (*ebs.CompleteSnapshotOutput, error)
}

// Target is a started (pending) snapshot to write the disk into.
type Target struct {
	Region     string
	SnapshotID string
	API        API
}

// Options tune an upload.
type Options struct {
	// Concurrency bounds the PutSnapshotBlock requests in flight, over
	// all targets together; default 64. Each holds one block in memory.
	Concurrency int
	// NotFoundFor is how long a snapshot that was just started may answer
	// ResourceNotFound before that counts as an error (the EBS direct APIs
	// learn of a new snapshot a moment after StartSnapshot returns);
	// default 2 minutes.
	NotFoundFor time.Duration
	// Progress, when set, is told how many of a target's blocks have
	// landed, now and then and when all have.
	Progress func(region string, done, total int)
}

// Result is the outcome of one target.
type Result struct {
	Region     string
	SnapshotID string
	Blocks     int   // blocks written
	Bytes      int64 // bytes sent
	Duration   time.Duration
	Err        error // nil: every block landed and the snapshot is completed
}

const (
	defaultConcurrency = 64
	defaultNotFoundFor = 2 * time.Minute
)

// Upload writes d's blocks into every target at once and completes each
// target all of whose blocks landed, with the block count and the
// aggregate checksum. It returns a result per target, in order; one
// target's failure stops only that target.
func Upload(ctx context.Context, d Disk, targets []Target, o Options) []Result {
	if o.Concurrency < 1 {
		o.Concurrency = defaultConcurrency
	}
	if o.NotFoundFor <= 0 {
		o.NotFoundFor = defaultNotFoundFor
	}
	results := make([]Result, len(targets))
	f, err := os.Open(d.Path)
	if err != nil {
		for i, t := range targets {
			results[i] = Result{Region: t.Region, SnapshotID: t.SnapshotID, Err: err}
		}
		return results
	}
	defer f.Close()
	u := &uploader{
		d:    d,
		f:    f,
		o:    o,
		sem:  make(chan struct{}, o.Concurrency),
		pool: sync.Pool{New: func() any { b := make([]byte, BlockSize); return &b }},
	}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { results[i] = u.target(ctx, t) })
	}
	wg.Wait()
	return results
}

type uploader struct {
	d    Disk
	f    *os.File
	o    Options
	sem  chan struct{} // one token per request in flight
	pool sync.Pool     // *[]byte of BlockSize
}

// target writes every block into one snapshot and completes it.
func (u *uploader) target(ctx context.Context, t Target) Result {
	start := time.Now()
	res := Result{Region: t.Region, SnapshotID: t.SnapshotID}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		done  atomic.Int64
		total = len(u.d.Blocks)
		step  = max(total/20, 1) // progress every 5%
	)
	started := time.Now()
feed:
	for _, b := range u.d.Blocks {
		select {
		case u.sem <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
		wg.Go(func() {
			defer func() { <-u.sem }()
			if err := u.put(ctx, t, b, started); err != nil {
				cancel(err)
				return
			}
			if n := done.Add(1); u.o.Progress != nil && (n%int64(step) == 0 || n == int64(total)) {
				u.o.Progress(t.Region, int(n), total)
			}
		})
	}
	wg.Wait()
	res.Blocks = int(done.Load())
	res.Bytes = int64(res.Blocks) * BlockSize
	if err := context.Cause(ctx); err != nil {
		res.Err = fmt.Errorf("upload to snapshot %s in %s: %d of %d blocks written: %w", t.SnapshotID, t.Region, res.Blocks, total, err)
		res.Duration = time.Since(start)
		return res
	}
	_, err := t.API.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{
		SnapshotId:                aws.String(t.SnapshotID),
		ChangedBlocksCount:        aws.Int32(int32(total)),
		Checksum:                  aws.String(u.d.Checksum()),
		ChecksumAlgorithm:         ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
		ChecksumAggregationMethod: ebstypes.ChecksumAggregationMethodChecksumAggregationLinear,
	})
	if err != nil {
		res.Err = fmt.Errorf("complete snapshot %s in %s: %w", t.SnapshotID, t.Region, err)
	}
	res.Duration = time.Since(start)
	return res
}

// put writes one block, retrying while the snapshot is not yet visible.
func (u *uploader) put(ctx context.Context, t Target, b Block, started time.Time) error {
	bp := u.pool.Get().(*[]byte)
	defer u.pool.Put(bp)
	buf := *bp
	if err := readBlock(u.f, b, buf); err != nil {
		return fmt.Errorf("read block %d of %s: %w", b.Index, u.d.Path, err)
	}
	sum := b.Checksum()
	for attempt := 1; ; attempt++ {
		out, err := t.API.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{
			SnapshotId:        aws.String(t.SnapshotID),
			BlockIndex:        aws.Int32(b.Index),
			BlockData:         bytes.NewReader(buf),
			DataLength:        aws.Int32(BlockSize),
			Checksum:          aws.String(sum),
			ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
		})
		if err == nil {
			if got := aws.ToString(out.Checksum); got != "" && got != sum {
				return fmt.Errorf("block %d: EBS computed checksum %s, kiln %s", b.Index, got, sum)
			}
			return nil
		}
		if !notFound(err) || time.Since(started) > u.o.NotFoundFor {
			return fmt.Errorf("block %d: %w", b.Index, err)
		}
		pause := time.Duration(attempt) * time.Second
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(pause):
		}
	}
}

// notFound reports whether err says the snapshot does not exist (yet).
func notFound(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException"
}
