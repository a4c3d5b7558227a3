// Package fanout runs one function per item (usually per region) with
// bounded concurrency and returns a result for every item, so that one
// region failing neither hides nor stops the others.
package fanout

import (
	"context"
	"sync"
)

// Each calls fn for every item, at most limit at a time (limit < 1 means
// no limit), and returns fn's error for each item at the item's index. It
// waits for all calls to return. Items not yet started when ctx is done get
// ctx's error.
func Each[T any](ctx context.Context, items []T, limit int, fn func(context.Context, T) error) []error {
	errs := make([]error, len(items))
	if limit < 1 || limit > len(items) {
		limit = len(items)
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, item := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(ctx, item)
		}()
	}
	wg.Wait()
	return errs
}

// Range is Each over the indices 0 to n-1: for callers that fill a slice
// of results by index, keeping their order.
func Range(ctx context.Context, n, limit int, fn func(context.Context, int) error) []error {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return Each(ctx, idx, limit, fn)
}
