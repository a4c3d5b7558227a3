package local

import (
	"context"
	"fmt"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// DefaultWaitTimeout bounds WaitImage unless WithWaitTimeout says otherwise.
const DefaultWaitTimeout = 10 * time.Minute

// WithWaitTimeout bounds how long WaitImage waits for a pending image.
func WithWaitTimeout(d time.Duration) Option {
	return func(b *Backend) { b.waitTimeout = d }
}

// WaitImage waits until the image is available and returns it. Copies and
// imports here return available images, so waiting matters only for a copy
// another process is still making; a copy whose process died stays pending
// until a rerun with its token completes it, and the wait times out. A
// failed image is an error with its reason.
func (b *Backend) WaitImage(ctx context.Context, region, id string) (cloud.Image, error) {
	var img cloud.Image
	what := fmt.Sprintf("image %s in region %s to become available", id, region)
	err := cloud.Poll(ctx, what, 200*time.Millisecond, b.waitTimeout, func(ctx context.Context) (bool, error) {
		r, rec, err := b.lookup(region, id)
		if err != nil {
			return false, err
		}
		switch rec.State {
		case cloud.StateAvailable:
			img = rec.image(r.name)
			return true, nil
		case cloud.StateFailed:
			return false, fmt.Errorf("image %s in region %s failed: %s", id, region, rec.Error)
		}
		return false, nil
	})
	if err != nil {
		return cloud.Image{}, fmt.Errorf("local: %w", err)
	}
	return img, nil
}
