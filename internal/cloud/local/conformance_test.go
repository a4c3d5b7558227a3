package local

import (
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/cloudtest"
	"github.com/kiln-images/kiln/internal/config"
)

func harness() cloudtest.Harness {
	return cloudtest.Harness{
		New: func(t *testing.T) (cloudtest.Backend, []string) {
			b := newBackend(t, config.LocalBackend{}, "home-1", "home-2")
			return b, b.Regions()
		},
		Seed: func(t *testing.T, b cloudtest.Backend, region, name string, tags map[string]string) cloud.Image {
			return seed(t, b.(*Backend), region, name, tags, 64<<10)
		},
		// Copies here are synchronous; a pending one is a bug, not slowness.
		WaitTimeout: 10 * time.Second,
	}
}

func TestImagesConformance(t *testing.T) { cloudtest.TestImages(t, harness()) }

func TestInventoryConformance(t *testing.T) { cloudtest.TestInventory(t, harness()) }
