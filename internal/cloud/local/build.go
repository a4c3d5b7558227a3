package local

import (
	"context"
	"errors"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Build will build an image with mmdebstrap (package debimage).
func (b *Backend) Build(ctx context.Context, in cloud.BuildInput) (cloud.Image, error) {
	return cloud.Image{}, errors.New("local: build not wired yet")
}
