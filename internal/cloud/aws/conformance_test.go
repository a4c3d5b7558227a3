package aws

import (
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/cloudtest"
)

// TestConformance runs the suite every backend passes against this one on
// moto.
func TestConformance(t *testing.T) {
	h := cloudtest.Harness{
		New: func(t *testing.T) (cloudtest.Backend, []string) {
			r := newRig(t)
			return r.b, testRegions
		},
		Seed: func(t *testing.T, _ cloudtest.Backend, region, name string, tags map[string]string) cloud.Image {
			r := &rig{t: t}
			im := seedImage(t, r.ec2(region), name, tags)
			return toImage(region, im)
		},
	}
	t.Run("Images", func(t *testing.T) { cloudtest.TestImages(t, h) })
	t.Run("Inventory", func(t *testing.T) { cloudtest.TestInventory(t, h) })
}
