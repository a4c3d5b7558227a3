package local

import (
	"context"
	"errors"

	"github.com/kiln-images/kiln/internal/cloud"
)

// TestImage will boot-test an image under qemu (package qemuboot).
func (b *Backend) TestImage(ctx context.Context, in cloud.TestInput) (cloud.TestResult, error) {
	return cloud.TestResult{}, errors.New("local: test not wired yet")
}
