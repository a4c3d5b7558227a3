package fanout

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestEachReturnsEveryResult(t *testing.T) {
	items := []string{"a", "b", "c", "d"}
	errs := Each(context.Background(), items, 2, func(_ context.Context, s string) error {
		if s == "b" || s == "d" {
			return fmt.Errorf("fail %s", s)
		}
		return nil
	})
	want := []string{"", "fail b", "", "fail d"}
	for i, err := range errs {
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want[i] {
			t.Errorf("item %d: got %q, want %q", i, got, want[i])
		}
	}
}

func TestEachBoundsConcurrency(t *testing.T) {
	for _, limit := range []int{1, 3, 0} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var running, peak atomic.Int32
			items := make([]int, 12)
			Each(context.Background(), items, limit, func(context.Context, int) error {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
				running.Add(-1)
				return nil
			})
			max := int32(limit)
			if limit < 1 {
				max = int32(len(items))
			}
			if peak.Load() > max {
				t.Errorf("peak concurrency %d, limit %d", peak.Load(), max)
			}
			if limit == 1 && peak.Load() != 1 {
				t.Errorf("limit 1 ran %d at once", peak.Load())
			}
		})
	}
}

func TestEachCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errs := Each(ctx, []int{1, 2, 3}, 1, func(context.Context, int) error { return nil })
	for i, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("item %d: %v", i, err)
		}
	}
}

func TestRangeCallsEveryIndexOnce(t *testing.T) {
	seen := make([]atomic.Int32, 5)
	errs := Range(context.Background(), len(seen), 2, func(_ context.Context, i int) error {
		if seen[i].Add(1) > 1 {
			return fmt.Errorf("index %d twice", i)
		}
		if i == 3 {
			return errors.New("three")
		}
		return nil
	})
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Errorf("index %d: %d calls", i, n)
		}
		if (errs[i] != nil) != (i == 3) {
			t.Errorf("index %d: error %v", i, errs[i])
		}
	}
}
