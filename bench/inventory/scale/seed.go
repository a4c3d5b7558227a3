package scale

import (
	"context"
	"sync"
	"time"

	"github.com/kiln-images/kiln/internal/fanout"
)

// ImageSpec is what one seeded image looks like.
type ImageSpec struct {
	Name    string
	Tags    map[string]string
	Created time.Time // local only: moto stamps its own time
	Public  bool
}

// seedRegions runs seed for every region, a few regions at a time, and
// returns the image ids each seeded, by region. Its error is that of the
// first region, in regions' order, that failed.
func seedRegions(ctx context.Context, regions []string, seed func(ctx context.Context, region string) ([]string, error)) (map[string][]string, error) {
	var mu sync.Mutex
	ids := make(map[string][]string, len(regions))
	errs := fanout.Each(ctx, regions, 4, func(ctx context.Context, region string) error {
		out, err := seed(ctx, region)
		mu.Lock()
		ids[region] = out
		mu.Unlock()
		return err
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}
