package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// scanRecords reads the records of ids, or every record when ids is nil.
// Absent records are left out. It takes no lock: records are replaced by
// rename, so each read sees a whole record (see the package comment). The
// records are shared with the cache: callers must not modify them.
func (r *region) scanRecords(ctx context.Context, ids []string) ([]*imageRecord, error) {
	all := ids == nil
	if all {
		var err error
		if ids, err = r.recordIDs(); err != nil {
			return nil, err
		}
	}
	recs := make([]*imageRecord, len(ids))
	errs := make([]error, len(ids))
	read := func(i int) {
		recs[i], errs[i] = r.readRecordShared(ids[i])
	}
	// Reading and decoding thousands of small files is CPU-bound; a few
	// workers divide the time.
	workers := min(runtime.GOMAXPROCS(0), 8, len(ids)/64+1)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				read(i)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err // the first is enough to act on
		}
	}
	if all {
		seen := make(map[string]bool, len(ids))
		for _, id := range ids {
			seen[r.recordPath(id)] = true
		}
		r.cache.retain(seen)
	}
	out := recs[:0]
	for _, rec := range recs {
		if rec != nil {
			out = append(out, rec)
		}
	}
	return out, nil
}

// recordIDs lists the ids of the records in the region with one directory
// read. Files that are not records are ignored.
func (r *region) recordIDs() ([]string, error) {
	d, err := os.Open(r.imagesDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing written to the region yet
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	ids := names[:0]
	for _, n := range names {
		if id, ok := strings.CutSuffix(n, ".json"); ok && isImageID(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
